"""A stateful property test of the real ingest on SQLite and PostgreSQL.

Hypothesis drives watches through sequences of alarms, retransmissions, resets
(a wiped watch counts its ids from "1.1" again), poison values, floods, database
outages (a real driver error from a server that is not there) and operators
closing cases, and after every step checks the alarm invariants:

1. every alarm the cloud took is in an open case the tenant's operator sees,
   until an operator closes it; ``alert_ack`` ``received`` is sent only for an
   alert stored in a case;
2. a retransmission (the same bytes, within the retry window) is merged, never
   counted as a new alarm, and a new alarm is never mistaken for one;
3. an alarm is never refused for a bad field;
4. nothing the console receives holds NaN, Infinity or a time it cannot show;
5. during an outage nothing is acked, and nothing is lost once it is over.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import create_engine, func, select

from cloud import protocol
from cloud.domain.accounts import provision_device
from cloud.store.db import make_sessionmaker
from cloud.store.errors import is_transient
from cloud.store.models import Alert, AlertCase, Operator
from tests.conftest import free_port

POISON = [  # alarms as a broken or hostile watch sends them
    '"ts":1180591620717411303424', '"ts":2147483648', '"ts":-1', '"ts":1e300',
    '"loc":{"lat":45.7,"lon":4.8,"src":"cell","acc":900}',
    '"loc":{"lat":45.7,"lon":4.8,"acc":Infinity,"src":"gnss","ts":10000000000000}',
    '"loc":{"lat":NaN,"lon":4.8,"src":"gnss"}', '"batt":{"pct":-Infinity,"mv":99999999}',
    '"vitals":{"hr":1e308}', '"cell":{"mcc":208,"mnc":1,"lac":-5,"cid":99999999999999,"rssi":99}',
    '"fw":"\\u0000"', '"net":{"op":"\\ud800"}', '"kind":"panic"', '"mid":""', '"v":2', '"kind":["sos"]',
]
NON_ALARM_POISON = [  # refused, by reason; nothing changes
    ("loc", '{"v":1,"mid":"p.1","ts":1e13,"loc":{"lat":45,"lon":4,"src":"gnss"}}'),
    ("status", '{"v":1,"mid":"p.2","ts":null,"batt":{"pct":Infinity}}'),
    ("alert", '{"v":1,"mid":"p.3","ts":null,"kind":"cancel","ref":"\\u0000"}'),
]


def check_console_json(view: dict) -> None:
    json.dumps(view, allow_nan=False)
    loc = view["location"]
    if loc is not None and loc["ts"] is not None:
        assert protocol.TS_MIN <= loc["ts"] <= protocol.TS_MAX


class Watches(RuleBasedStateMachine):
    """``svc`` and ``sender`` come from the test (one database per test); each example
    gets watches of its own, so examples never see each other's cases."""
    svc = sender = seed = url = None
    example = 0

    @initialize()
    def setup(self):
        Watches.example += 1
        self.clock = self.svc.clock
        self.devices = []
        for n in range(2):
            dev = provision_device(self.svc.sm, self.clock, self.seed.tenant_id,
                                   device_id=f"w{Watches.example}-{n}", wearer_id=self.seed.wearer_id)
            # boot/seq as a watch counts them; sent: mid -> bytes the watch may re-send. Watch 0
            # runs this firmware (an installation id a wipe renews); watch 1 an older one that
            # counts "boot.seq" from 1 again after a wipe, and always has the network's time.
            self.devices.append({"id": dev.device_id, "boot": 1, "seq": 0, "sent": {}, "expect_open": False,
                                 "install": f"i{Watches.example}a" if n == 0 else None})
        self.down = False
        self.refused_during_outage: list[tuple[dict, bytes]] = []

    # --- helpers -------------------------------------------------------------------
    def _operator(self):
        with self.svc.sm() as s:
            return s.scalar(select(Operator).where(Operator.username == "operator"))

    def _deliver(self, dev, kind: str, payload: bytes):
        n = len(self.sender.sent)
        try:
            out = self.svc.ingestor.accept(f"pers/v1/{dev['id']}/{kind}", payload)
        except Exception as exc:  # noqa: BLE001
            assert self.down and is_transient(exc), exc
            assert len(self.sender.sent) == n, "acked during an outage"
            self.refused_during_outage.append((dev, kind, payload))
            return None
        # During an outage only what needs no database gets an answer: a message the
        # contract refuses.
        assert not self.down or (not out.accepted and out.reason == "invalid"), out
        self._check_acks(dev, self.sender.sent[n:])
        return out

    def _check_acks(self, dev, new):
        with self.svc.sm() as s:
            for device_id, cmd in new:
                if cmd["type"] != "alert_ack" or cmd["stage"] != "received":
                    continue
                assert device_id == dev["id"]
                stored = s.scalars(select(Alert).where(Alert.device_id == device_id,
                                                       Alert.mid == cmd["ref"])).all()
                assert stored and all(a.case_id is not None for a in stored), cmd

    def _new_alarm(self, dev, body_extra: str = "", kind: str = "sos", ts=True):
        dev["seq"] += 1
        mid = f"{dev['boot']}.{dev['seq']}"
        if dev["install"]:
            mid = f"{dev['install']}.{mid}"
        else:
            ts = True  # without an installation id, only its clock tells a new alarm from an old one
        body = (f'{{"v":1,"mid":"{mid}","ts":{self.clock.unix() if ts else "null"},"kind":"{kind}",'
                f'"trigger":"button","batt":{{"pct":{50 + dev["seq"] % 50},"mv":3800}}')
        if body_extra:
            body += "," + body_extra
        payload = (body + "}").encode()
        dev["sent"][mid] = payload
        out = self._deliver(dev, "alert", payload)
        if out is not None:
            # Invariant 3: never refused for a bad field.
            assert out.case_id is not None and (out.accepted or out.reason == "quarantined"), out
            assert not out.duplicate, "a new alarm mistaken for a retransmission"
            dev["expect_open"] = True
        return out

    # --- rules -----------------------------------------------------------------------
    @rule(d=st.integers(0, 1), kind=st.sampled_from(["sos", "fall"]), ts=st.booleans())
    def press(self, d, kind, ts):
        self._new_alarm(self.devices[d], kind=kind, ts=ts)

    @rule(d=st.integers(0, 1), data=st.data())
    def retransmit(self, d, data):
        dev = self.devices[d]
        if not dev["sent"]:
            return
        mid = data.draw(st.sampled_from(sorted(dev["sent"])))
        with self.svc.sm() as s:
            before = s.scalar(select(func.count()).select_from(Alert).where(Alert.device_id == dev["id"]))
        out = self._deliver(dev, "alert", dev["sent"][mid])
        if out is not None and out.accepted:
            with self.svc.sm() as s:
                after = s.scalar(select(func.count()).select_from(Alert).where(Alert.device_id == dev["id"]))
            # Within the retry window the same bytes are merged: one alert row, whatever the state.
            assert out.duplicate and after == before

    @rule(d=st.integers(0, 1))
    def reset_watch(self, d):
        """Storage wiped: the ids start again, the outbox is gone, a new installation id
        is drawn (this firmware), and the watch takes at least its modem's boot to be back."""
        dev = self.devices[d]
        dev["boot"], dev["seq"], dev["sent"] = 1, 0, {}
        if dev["install"]:
            dev["install"] += "x"
        self.clock.advance(15)

    @rule(d=st.integers(0, 1), poison=st.sampled_from(POISON), kind=st.sampled_from(["sos", "fall"]))
    def poison_alarm(self, d, poison, kind):
        self._new_alarm(self.devices[d], poison, kind=kind)

    @rule(d=st.integers(0, 1), which=st.sampled_from(NON_ALARM_POISON))
    def poison_other(self, d, which):
        kind, payload = which
        out = self._deliver(self.devices[d], kind, payload.encode())
        if out is not None:
            assert not out.accepted and out.reason == "invalid"

    @rule(d=st.integers(0, 1), n=st.integers(5, 15))
    def flood(self, d, n):
        for _ in range(n):
            self._new_alarm(self.devices[d])
            self.clock.advance(0.05)

    @rule(seconds=st.sampled_from([1, 30, 600, 3600]))
    def time_passes(self, seconds):
        self.clock.advance(seconds)

    @precondition(lambda self: not self.down)
    @rule(d=st.integers(0, 1))
    def operator_closes(self, d):
        dev = self.devices[d]
        op = self._operator()
        for c in self.svc.cases.list_cases(op, open_only=True, limit=500):
            if c["device_id"] == dev["id"]:
                if c["claimed_by"] is None:
                    self.svc.cases.claim(op, c["id"])
                self.svc.cases.resolve(op, c["id"], "wearer_ok", None)
        dev["expect_open"] = False

    @precondition(lambda self: not self.down)
    @rule()
    def database_goes_away(self):
        if self.url.startswith("postgresql"):
            gone = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/pers?connect_timeout=2"
        else:
            gone = "sqlite:////nonexistent-dir/pers.db"
        self.real_sm, self.svc.ingestor.sm = self.svc.ingestor.sm, make_sessionmaker(create_engine(gone))
        self.down = True

    @precondition(lambda self: self.down)
    @rule()
    def database_comes_back(self):
        self.svc.ingestor.sm.kw["bind"].dispose()
        self.svc.ingestor.sm = self.real_sm
        self.down = False
        # The adapter retries what was refused: nothing is lost.
        pending, self.refused_during_outage = self.refused_during_outage, []
        for dev, kind, payload in pending:
            out = self._deliver(dev, kind, payload)
            if kind == "alert" and out is not None and json.loads(payload.replace(b"Infinity", b"0").replace(
                    b"NaN", b"0")).get("kind") != "cancel":
                assert out.case_id is not None
                dev["expect_open"] = True

    def teardown(self):
        if getattr(self, "down", False):  # the next example shares the services: give them their database back
            self.svc.ingestor.sm = self.real_sm

    # --- invariants --------------------------------------------------------------------
    @invariant()
    def every_alarm_taken_is_in_an_open_case_the_operator_sees(self):
        if self.down or not hasattr(self, "devices"):
            return
        cases = self.svc.cases.list_cases(self._operator(), open_only=True, limit=500)
        for dev in self.devices:
            mine = [c for c in cases if c["device_id"] == dev["id"]]
            if dev["expect_open"]:
                assert len(mine) == 1, f"{dev['id']}: {len(mine)} open cases seen by the operator"
            for c in mine:
                check_console_json(c)
        with self.real_sm() if self.down else self.svc.sm() as s:
            orphans = s.scalar(select(func.count()).select_from(Alert).join(AlertCase, isouter=True)
                               .where(Alert.device_id.in_([d["id"] for d in self.devices]),
                                      Alert.kind.in_(["sos", "fall"]), AlertCase.id.is_(None)))
            assert orphans == 0, "an alarm stored outside any case"


@pytest.fixture
def machine(world):
    Watches.svc, Watches.sender, Watches.seed, Watches.url = world.svc, world.sender, world.seed, world.url
    yield Watches
    Watches.svc = Watches.sender = Watches.seed = None


def test_alarm_invariants_hold_through_resets_poison_floods_and_outages(machine):
    run_state_machine_as_test(machine, settings=settings(
        max_examples=12, stateful_step_count=25, deadline=None, derandomize=True,
        # No "explain" phase: it traces every line, and on a failure takes minutes.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=list(HealthCheck)))
