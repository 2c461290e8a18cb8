"""Alarms forwarded to an independent SIA DC-09 receiver: pysiaalarm's threaded
TCP/UDP server on loopback (github.com/eavanvalkenburg/pysiaalarm), with its own
account and AES key, its own CRC and timestamp-window checks (it NAKs a message
stamped outside -40/+20 s of its clock) and its own DUH for a code it does not
know. The forwarder is driven round by round (``run_once``), as its thread would."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pysiaalarm import CommunicationsProtocol, SIAAccount, SIAClient
from sqlalchemy import select

from cloud.domain.clock import FakeClock, SystemClock
from cloud.domain.forwarding import codes
from cloud.domain.forwarding.outbox import enqueue
from cloud.domain.uow import transaction
from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR, seed_demo
from cloud.settings import Settings
from cloud.store.migrate import upgrade
from cloud.store.models import AlarmReceiver, AuditEntry, CaseEvent, ForwardOutbox, Operator
from cloud.wiring import Services, build_services
from tests.conftest import new_database_url

ACCOUNT = "5A17"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """pysiaalarm's receiver, stoppable and restartable on the same port."""

    def __init__(self, port: int, key: str | None = None, protocol: str = "tcp") -> None:
        self.port, self.key, self.protocol = port, key, protocol
        self.events: list = []
        self.client: SIAClient | None = None

    def start(self) -> Receiver:
        proto = CommunicationsProtocol.UDP if self.protocol == "udp" else CommunicationsProtocol.TCP
        self.client = SIAClient("127.0.0.1", self.port, [SIAAccount(ACCOUNT, self.key)], self.events.append,
                                protocol=proto)
        self.client.start()
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()
            self.client = None

    def alarms(self) -> list[tuple]:
        """(account, type, qualifier-or-code, zone) of each event but the supervision polls."""
        out = []
        for e in self.events:
            if e.message_type.value == "ADM-CID":
                out.append((e.account, e.event_type, e.event_qualifier, e.ri))
            elif e.message_type.value == "SIA-DCS":
                out.append((e.account, e.code, None, e.message))
        return out


def services(tmp_path, db_url: str | None, clock) -> tuple[Services, list[dict]]:
    settings = Settings(data_dir=tmp_path, database_url=db_url, log_json=False, outbound_allow_loopback=True,
                        forward_timeout_s=2.0, forward_tries=2, forward_retry_base_s=0.02,
                        forward_retry_max_s=0.1)
    upgrade(settings.db_url)
    svc = build_services(settings, clock=clock, with_mqtt=False)
    published: list[dict] = []
    svc.live.publish = lambda tenant, ev: published.append(ev)  # type: ignore[method-assign]
    return svc, published


def operator(svc: Services, username: str) -> Operator:
    with svc.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == username))
        assert op is not None
        s.expunge(op)
        return op


def drain(svc: Services, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Forwarding rounds until ``done`` (waits on a condition, never a fixed sleep)."""
    deadline = datetime.now() + timedelta(seconds=timeout_s)
    pause = threading.Event()
    while not done():
        assert datetime.now() < deadline, "forwarding did not finish in time"
        svc.forwarder.run_once()
        pause.wait(0.02)


def outbox(svc: Services) -> list[ForwardOutbox]:
    with svc.sm() as s:
        return list(s.scalars(select(ForwardOutbox).order_by(ForwardOutbox.id)))


def all_acked(svc: Services) -> bool:
    rows = outbox(svc)
    return bool(rows) and all(r.status == "acked" for r in rows)


def alert(svc: Services, device_id: str, mid: str, kind: str) -> int:
    trigger = {"sos": "button", "fall": "fall_detector", "low_battery": "battery"}[kind]
    out = svc.ingestor.handle(f"pers/v1/{device_id}/alert",
                              f'{{"v":1,"mid":"{mid}","kind":"{kind}","trigger":"{trigger}"}}'.encode())
    assert out.accepted and out.case_id is not None
    return out.case_id


def timeline(svc: Services, case_id: int) -> list[str]:
    with svc.sm() as s:
        return [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                            .order_by(CaseEvent.id)) if e.action.startswith("forward_")]


# fmt, protocol, (key as configured, its encoding, the same key as pysiaalarm takes it)
LINKS = [
    ("ADM-CID", "tcp", None),
    ("SIA-DCS", "tcp", ("K7pW2xQ9vL4mN8rT6yB3cF5hJ1dG0sZa", "ascii", "K7pW2xQ9vL4mN8rT6yB3cF5hJ1dG0sZa")),
    ("ADM-CID", "udp", ("30313233343536373839414243444546", "hex", "0123456789ABCDEF")),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One seeded service for the three links (seeding hashes passwords: seconds each)."""
    tmp = tmp_path_factory.mktemp("fwd")
    svc, _ = services(tmp, None, SystemClock())
    seed = seed_demo(svc.sm, svc.clock, tmp)
    yield svc, seed
    svc.sm.kw["bind"].dispose()


@pytest.mark.parametrize("fmt,protocol,key", LINKS, ids=["cid-tcp", "sia-tcp-aes256", "cid-udp-aes128"])
def test_every_event_arrives_once_with_account_code_and_zone(shared, fmt, protocol, key):
    svc, seed = shared
    admin, op = operator(svc, DEMO_ADMIN[0]), operator(svc, DEMO_OPERATOR[0])
    rcv = Receiver(free_port(), key[2] if key else None, protocol).start()
    made = svc.admin.create_receiver(admin, {
        "name": f"ARC {fmt} {protocol}", "host": "127.0.0.1", "port": rcv.port, "protocol": protocol, "fmt": fmt,
        "account": ACCOUNT, "receiver_no": "1", "line_no": "2", "poll_s": 3600,
        **({"aes_key": key[0], "key_encoding": key[1]} if key else {})})
    try:
        assert made["encrypted"] is bool(key) and "aes_key" not in made
        svc.admin.set_receiver_zone(admin, seed.device_id, 7)
        sos = alert(svc, seed.device_id, f"{protocol}{fmt}.1", "sos")
        svc.cases.resolve(op, sos, "wearer_ok", None)
        fall = alert(svc, seed.device_id, f"{protocol}{fmt}.2", "fall")
        svc.cases.resolve(op, fall, "wearer_ok", None)
        low = alert(svc, seed.device_id, f"{protocol}{fmt}.3", "low_battery")
        svc.cases.resolve(op, low, "wearer_ok", None)
        svc.admin.test_receiver(admin, made["id"])
        drain(svc, lambda: all_acked(svc) and len(rcv.events) >= 8)
        svc.forwarder.run_once()  # one more round: nothing is sent twice
        if fmt == "ADM-CID":
            expected = [(ACCOUNT, e, q, "007") for e in ("101", "100", "384") for q in ("1", "3")]
            expected.append((ACCOUNT, "602", "1", "000"))
        else:
            expected = [(ACCOUNT, c, None, "007") for c in ("QA", "QH", "MA", "MH", "XT", "XR")]
            expected.append((ACCOUNT, "RP", None, "000"))
        assert rcv.alarms() == expected
        assert [e.message_type.value for e in rcv.events].count("NULL") == 1  # the supervision poll
        assert {(e.receiver, e.line) for e in rcv.events} == {("R1", "L2")}
        assert len({e.sequence for e in rcv.events}) == len(rcv.events)
        assert timeline(svc, sos) == ["forward_sent", "forward_acked", "forward_sent", "forward_acked"]
    finally:
        svc.admin.update_receiver(admin, made["id"], {"enabled": False})  # the next link's run is its own
        rcv.stop()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_outage_backup_and_restart_lose_nothing(tmp_path, request, database):
    db_url = new_database_url(request, database)
    svc, published = services(tmp_path, db_url, SystemClock())
    seed = seed_demo(svc.sm, svc.clock, tmp_path)
    admin = operator(svc, DEMO_ADMIN[0])
    primary, backup = Receiver(free_port()), Receiver(free_port())
    svc.admin.create_receiver(admin, {"name": "ARC", "host": "127.0.0.1", "port": primary.port,
                                      "backup_host": "127.0.0.1", "backup_port": backup.port, "account": ACCOUNT})
    try:
        # Both down: two tries on the primary, one on the backup, then the supervisors are told.
        sos = alert(svc, seed.device_id, "o.1", "sos")
        drain(svc, lambda: outbox(svc)[0].alerted_at is not None)
        row = outbox(svc)[0]
        assert row.status == "pending" and row.attempts == 3 and row.last_error
        assert timeline(svc, sos) == ["forward_sent", "forward_sent", "forward_failed"]
        failed = [e for e in published if e.get("type") == "forward_failed"]
        assert len(failed) == 1 and failed[0]["case_id"] == sos and failed[0]["retrying"] is True
        with svc.sm() as s:
            assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "forward.failed")) is not None
        # Closed meanwhile: the restore is due at once, but waits behind its alarm.
        svc.cases.resolve(operator(svc, DEMO_OPERATOR[0]), sos, "wearer_ok", None)
        # The cloud restarts (new services on the same database); the primary comes back.
        svc.sm.kw["bind"].dispose()
        svc, published = services(tmp_path, db_url, SystemClock())
        primary.start()
        drain(svc, lambda: all_acked(svc))
        assert primary.alarms() == [(ACCOUNT, "101", "1", "000"), (ACCOUNT, "101", "3", "000")]
        assert outbox(svc)[0].via == "primary"
        assert timeline(svc, sos)[-1] == "forward_acked"
        # The primary goes down again; an alarm raised meanwhile reaches the backup.
        primary.stop()
        backup.start()
        fall = alert(svc, seed.device_id, "o.2", "fall")
        drain(svc, lambda: all_acked(svc))
        assert backup.alarms() == [(ACCOUNT, "100", "1", "000")]
        assert outbox(svc)[-1].via == "backup" and "forward_failed" not in timeline(svc, fall)
        svc.forwarder.run_once()
        assert len(primary.alarms()) == 2 and len(backup.alarms()) == 1
    finally:
        primary.stop()
        backup.stop()
        svc.sm.kw["bind"].dispose()


def test_nak_for_a_skewed_clock_resyncs_and_duh_gives_up(tmp_path, monkeypatch):
    # Our clock ten minutes slow: pysiaalarm NAKs the first message with its own time.
    clock = FakeClock(datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10))
    svc, published = services(tmp_path, None, clock)
    seed = seed_demo(svc.sm, svc.clock, tmp_path)
    admin = operator(svc, DEMO_ADMIN[0])
    rcv = Receiver(free_port(), "0123456789ABCDEF").start()
    try:
        made = svc.admin.create_receiver(admin, {"name": "ARC", "host": "127.0.0.1", "port": rcv.port,
                                                 "fmt": "SIA-DCS", "account": ACCOUNT,
                                                 "aes_key": "0123456789ABCDEF", "key_encoding": "ascii"})
        sos = alert(svc, seed.device_id, "n.1", "sos")
        drain(svc, lambda: all_acked(svc))
        assert rcv.client is not None and rcv.client.counts.get("timestamp") == 1  # its one NAK
        assert rcv.alarms() == [(ACCOUNT, "QA", None, "000")]
        assert outbox(svc)[0].attempts == 1 and timeline(svc, sos) == ["forward_sent", "forward_acked"]
        with svc.sm() as s:
            offset = s.get_one(AlarmReceiver, made["id"]).clock_offset_s
        assert 590 < offset < 610
        # A code this receiver does not know: it answers DUH, and there is no point retrying.
        monkeypatch.setitem(codes.CODES, "unknown", codes.Codes("999", "ZX", "ZX"))
        with transaction(svc.sm) as tx:
            enqueue(tx.session, seed.tenant_id, "unknown", codes.NEW, clock.now(), case_id=sos)
        drain(svc, lambda: outbox(svc)[-1].status != "pending")
        row = outbox(svc)[-1]
        assert row.status == "failed" and row.attempts == 1 and (row.last_error or "").startswith("DUH")
        assert timeline(svc, sos)[-1] == "forward_failed"
        assert [e["reason"][:3] for e in published if e.get("type") == "forward_failed"] == ["DUH"]
        assert len(rcv.alarms()) == 1
    finally:
        rcv.stop()
