"""No alarm is lost, stalled or refused for one bad device or one bad message,
on SQLite and on PostgreSQL (the ``world`` fixture runs each test on both).

The failures are real: a reset watch re-using its message ids, poison values sent
as a watch would send them, and store failures raised by the database itself (a
trigger that refuses a row, an unreachable server), not by a stand-in."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, func, select, text

from cloud import metrics, protocol
from cloud.domain.quarantine import listing
from cloud.store.db import make_sessionmaker
from cloud.store.errors import is_transient
from cloud.store.models import Alert, AlertCase, DeadLetter, Operator
from tests.conftest import free_port


def sos(world, mid, ts="now", **extra) -> bytes:
    body = {"v": 1, "mid": mid, "ts": world.clock.unix() if ts == "now" else ts, "kind": "sos",
            "trigger": "button", "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.0, "src": "gnss"},
            "batt": {"pct": 64, "mv": 3850}, **extra}
    return json.dumps(body).encode()


def send(world, payload: bytes, kind="alert", device=None):
    return world.svc.ingestor.accept(f"pers/v1/{device or world.seed.device_id}/{kind}", payload)


def acks(world, stage="received"):
    return [c["ref"] for d, c in world.sender.sent if c["type"] == "alert_ack" and c.get("stage") == stage]


def operator(world) -> Operator:
    with world.svc.sm() as s:
        return s.scalar(select(Operator).where(Operator.username == "operator"))


def open_cases_seen_by_operator(world) -> list[dict]:
    return world.svc.cases.list_cases(operator(world), open_only=True)


def resolve(world, case_id):
    op = operator(world)
    world.svc.cases.claim(op, case_id)
    world.svc.cases.resolve(op, case_id, "wearer_ok", None)


def install_poison_trigger(world):
    """The database itself refuses any row whose mid starts with "poison": what a
    value out of a column's range did on PostgreSQL before the contract bounded it
    (SQLSTATE 22003, "integer out of range"), and a constraint failure on SQLite."""
    engine = create_engine(world.url)
    with engine.begin() as db:
        if engine.dialect.name == "postgresql":
            db.execute(text("""CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN
                IF NEW.mid LIKE 'poison%' THEN RAISE EXCEPTION 'integer out of range' USING ERRCODE = '22003';
                END IF; RETURN NEW; END $$ LANGUAGE plpgsql"""))
            for table in ("alerts", "location_points"):
                db.execute(text(f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table} "
                                "FOR EACH ROW EXECUTE FUNCTION poison()"))
        else:
            for table in ("alerts", "location_points"):
                db.execute(text(f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table} "
                                "WHEN NEW.mid LIKE 'poison%' BEGIN SELECT RAISE(ABORT, 'poison'); END"))
    engine.dispose()


def test_a_watch_reset_re_using_its_ids_opens_a_new_case_and_retransmissions_still_merge(world):
    first = sos(world, "1.1")
    out = send(world, first)
    assert out.accepted and not out.duplicate and acks(world) == ["1.1"]
    # The watch missed the ack and sends the same bytes again: merged, acked again.
    again = send(world, first)
    assert again.duplicate and again.case_id == out.case_id and acks(world) == ["1.1", "1.1"]
    resolve(world, out.case_id)

    # Wiped and rebooted: its ids start again at "1.1", with other content.
    world.clock.advance(3600)
    after_reset = send(world, sos(world, "1.1", batt={"pct": 90, "mv": 4100}))
    assert after_reset.accepted and not after_reset.duplicate
    assert after_reset.case_id not in (None, out.case_id)
    cases = open_cases_seen_by_operator(world)
    assert [c["id"] for c in cases] == [after_reset.case_id]
    assert "Watch probably reset: it re-used a message id" in cases[0]["warnings"]
    assert acks(world) == ["1.1", "1.1", "1.1"]
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 2

    # A late redelivery of the first alarm: merged into its own (closed) case, and not
    # told "closed", since "1.1" now names the alarm that is open.
    closed_before = acks(world, "closed")
    late = send(world, first)
    assert late.duplicate and late.case_id == out.case_id
    assert acks(world, "closed") == closed_before


def test_a_retransmission_after_the_case_was_closed_is_told_it_is_over(world):
    first = sos(world, "1.1")
    out = send(world, first)
    resolve(world, out.case_id)
    assert acks(world, "closed") == ["1.1"]  # the operator's resolve
    world.sender.sent.clear()
    again = send(world, first)  # the watch missed both acks
    assert again.duplicate and acks(world) == ["1.1"] and acks(world, "closed") == ["1.1"]


def test_identical_content_after_the_retry_window_is_a_new_alarm(world):
    payload = sos(world, "2.1", ts=None)  # no clock: nothing in the content tells two presses apart
    first = send(world, payload)
    resolve(world, first.case_id)
    world.clock.advance(world.svc.ingestor.dedupe_window_s + 1)
    later = send(world, payload)
    assert not later.duplicate and later.case_id != first.case_id
    assert send(world, payload).duplicate  # and that one is merged in its turn
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 2


@pytest.mark.parametrize("payload,flag", [
    ('{"v":1,"mid":"3.1","ts":1180591620717411303424,"kind":"sos"}', "Watch clock wrong: its times are not used"),
    ('{"v":1,"mid":"3.2","ts":2147483648,"kind":"sos","loc":{"lat":45,"lon":4,"src":"gnss","ts":10000000000000}}',
     "Watch clock wrong: its times are not used"),
    ('{"v":1,"mid":"3.3","ts":null,"kind":"fall","vitals":{"hr":80},"batt":{"pct":Infinity}}',
     "Battery reading unusable"),
    ('{"v":1,"mid":"3.4","ts":null,"kind":"sos","loc":{"lat":45.76,"lon":4.83,"src":"cell","acc":900}}', None),
    ('{"v":1,"mid":"3.5","ts":null,"kind":"sos","loc":{"lat":95,"lon":4.83,"src":"gnss"}}', "Position unknown"),
    ('{"v":1,"mid":"3.6","ts":null,"kind":"sos","fw":"\\u0000"}', "Watch sent an unusable 'fw': ignored"),
    ('{"v":1,"mid":"3.7","ts":null,"kind":"intruder"}', "Alarm type 'intruder' not understood: handled as SOS"),
])
def test_an_alarm_is_never_refused_for_a_bad_field(world, payload, flag):
    out = send(world, payload.encode())
    assert out.accepted and out.case_id
    mid = json.loads(payload.replace("Infinity", "0"))["mid"]
    assert acks(world) == [mid]
    [case] = open_cases_seen_by_operator(world)
    if flag:
        assert flag in case["warnings"]
    # What the console gets is plain JSON: no NaN or Infinity, times it can show.
    json.dumps(case, allow_nan=False)
    loc = case["location"]
    assert loc is None or loc["ts"] is None or protocol.TS_MIN <= loc["ts"] <= protocol.TS_MAX


def test_a_cell_position_without_its_cell_opens_the_case(world):
    payload = json.dumps(json.load(open("tests/fixtures/protocol/alert_sos_cell_position.json"))["payload"])
    out = send(world, payload.encode())
    assert out.accepted and out.case_id and acks(world)
    with world.svc.sm() as s:
        assert s.get(AlertCase, out.case_id).loc_src == "cell"


def test_a_message_the_database_refuses_is_quarantined_and_nothing_waits_behind_it(world):
    install_poison_trigger(world)
    before = metrics.QUARANTINED.labels("data_error")._value.get() + metrics.QUARANTINED.labels(
        "constraint")._value.get()
    # A location report the store refuses: quarantined, counted, acknowledged (no retry for ever).
    loc = {"v": 1, "mid": "poison-loc", "ts": world.clock.unix(),
           "loc": {"lat": 45.7, "lon": 4.8, "acc": 5, "src": "gnss"}, "reason": "periodic"}
    out = send(world, json.dumps(loc).encode(), kind="loc")
    assert not out.accepted and out.reason == "quarantined"
    # An SOS the store refuses: quarantined too, and stored bare under a mid of its bytes,
    # so an operator still sees the alarm.
    alarm = send(world, sos(world, "poison-sos"))
    assert alarm.reason == "quarantined" and alarm.case_id is not None
    [case] = open_cases_seen_by_operator(world)
    assert case["id"] == alarm.case_id
    assert "Alarm without a readable message id" in case["warnings"] or case["flags"]
    # The other messages go through at once.
    assert send(world, sos(world, "4.1")).case_id == alarm.case_id
    after = metrics.QUARANTINED.labels("data_error")._value.get() + metrics.QUARANTINED.labels(
        "constraint")._value.get()
    assert after == before + 2
    letters = listing(world.svc.sm, world.seed.tenant_id)
    assert {(d["topic"].rsplit("/", 1)[1], d["case_id"]) for d in letters} == {("loc", None),
                                                                              ("alert", alarm.case_id)}
    assert all(d["reason"] in ("data_error", "constraint") and d["detail"] for d in letters)
    # The other tenant sees none of them.
    assert listing(world.svc.sm, world.seed.other_tenant_id) == []
    # A repeat of the same poison is counted on its dead letter, not a new row.
    send(world, json.dumps(loc).encode(), kind="loc")
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 2
        assert s.scalar(select(DeadLetter.count).where(DeadLetter.topic.like("%/loc"))) == 2


def test_a_batch_with_a_poison_report_is_stored_but_for_that_report(world):
    install_poison_trigger(world)
    dev = world.seed.device_id
    items = [(f"pers/v1/{dev}/loc", json.dumps({"v": 1, "mid": mid, "ts": world.clock.unix(), "reason": "periodic",
                                                 "loc": {"lat": 45.7, "lon": 4.8, "src": "gnss"}}).encode())
             for mid in ("5.1", "poison-5.2", "5.3")]
    with pytest.raises(Exception) as info:
        world.svc.ingestor.handle_batch(items)
    assert not is_transient(info.value)  # so the adapter takes the batch one by one:
    outs = [world.svc.ingestor.accept(t, p) for t, p in items]
    assert [o.accepted for o in outs] == [True, False, True]
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 1


def test_an_unreachable_database_is_transient_and_nothing_is_acked(world):
    """The server is not there (a port nobody listens on, on loopback): the failure is
    the driver's own, it is retried by the adapter, and the watch gets no ack."""
    ingestor = world.svc.ingestor
    real = ingestor.sm
    if world.url.startswith("postgresql"):
        down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/pers?connect_timeout=2"
    else:
        down = "sqlite:////nonexistent-dir/pers.db"
    ingestor.sm = make_sessionmaker(create_engine(down))
    try:
        with pytest.raises(Exception) as info:
            send(world, sos(world, "6.1"))
        assert is_transient(info.value)
    finally:
        ingestor.sm = real
    assert acks(world) == [] and open_cases_seen_by_operator(world) == []
    assert send(world, sos(world, "6.1")).case_id  # the retry, once the database is back
    assert acks(world) == ["6.1"]


def test_the_service_operator_lists_every_dead_letter_from_the_cli(world, monkeypatch, capsys, tmp_path):
    from cloud.cli import main
    send(world, b"SOS!!!")                                       # a known device: its tenant's
    world.svc.ingestor.accept("pers/v1/nobody/alert", b"\xff")   # no such device: nobody's tenant
    monkeypatch.setenv("PERS_DATABASE_URL", world.url)
    assert main(["quarantine", "list", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not_json pers/v1/demo-watch-1/alert case" in out and "b'SOS!!!'" not in out and "'SOS!!!'" in out
    # An unknown device's bytes are not a case (nobody's alarm) and not a dead letter either:
    # they are rejected, logged and counted as unknown_device.
    assert "nobody" not in out


def test_junk_on_the_alert_topic_is_an_alarm_on_the_batch_path_too(world):
    """Alerts come through the batch path when they share the bulk session
    (PERS_MQTT_ALERT_CONNECTION=false): unreadable bytes are an alarm there too."""
    dev = world.seed.device_id
    outs = world.svc.ingestor.handle_batch([(f"pers/v1/{dev}/alert", b"SOS!!!"),
                                            (f"pers/v1/{dev}/status", b"SOS!!!")])
    assert outs[0].accepted and outs[0].case_id and not outs[1].accepted
    assert [c["id"] for c in open_cases_seen_by_operator(world)] == [outs[0].case_id]


def test_a_dead_letter_stores_whatever_the_failure_quoted(world):
    """The text of a database error may quote the value that failed (NUL, a lone
    surrogate): the dead letter must store on PostgreSQL where the message could not."""
    from cloud.domain.quarantine import quarantine
    row = quarantine(world.svc.sm, world.clock.now(), f"pers/v1/{world.seed.device_id}/loc", b"\x00\xff",
                     "data_error", "DataError: bad value 'a\x00b' and '\ud800'")
    [listed] = listing(world.svc.sm, world.seed.tenant_id)
    assert listed["id"] == row.id and "a\\x00b" in listed["detail"] and "\\ud800" in listed["detail"]
