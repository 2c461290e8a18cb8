"""The ingest domain on a real database (SQLite and PostgreSQL): de-duplication, ack after
commit, merging, cancel, rejections that change nothing."""
import json
import logging

from sqlalchemy import func, select

from cloud import metrics
from cloud.domain.clock import FakeClock
from cloud.domain.views import case_view
from cloud.store.models import Alert, AlertCase, CaseEvent, Command, DeadLetter, Device, LocationPoint
from tests.cloud_helpers import seeded
from tests.conftest import golden_examples

GOLDEN = golden_examples()


def alert(mid, kind="sos", **extra):
    body = {"v": 1, "mid": mid, "ts": None, "kind": kind, "trigger": "button",
            "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"}, **extra}
    return json.dumps(body).encode()


def count(svc, model, *where):
    with svc.sm() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_alert_opens_one_case_and_is_acked_after_commit(tmp_path, database_url):
    acked_when_committed = []

    class CheckCommitted:
        def send_command(self, device_id, cmd):
            # The effect runs after commit: a fresh session must already see the alert.
            acked_when_committed.append(count(svc, Alert, Alert.mid == cmd["ref"]) == 1)

    svc, _, seed = seeded(tmp_path, database_url=database_url, sender=CheckCommitted())
    out = svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", alert("1.1"))
    assert out.accepted and not out.duplicate
    assert acked_when_committed == [True]
    with svc.sm() as s:
        case = s.scalar(select(AlertCase))
        assert (case.kind, case.status, case.press_count, case.wearer_id) == ("sos", "routed", 1, seed.wearer_id)
        assert case.lat == 45.764
        assert [e.action for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))] == ["opened", "routed"]


def test_duplicate_delivery_changes_nothing_but_is_acked_again(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    topic = f"pers/v1/{seed.device_id}/alert"
    for _ in range(3):
        svc.ingestor.handle(topic, alert("1.1"))
    assert count(svc, Alert) == 1
    assert count(svc, AlertCase) == 1
    assert [c["stage"] for _, c in sender.sent] == ["received"] * 3
    assert {c["ref"] for _, c in sender.sent} == {"1.1"}


def test_repeated_presses_join_the_open_case(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    topic = f"pers/v1/{seed.device_id}/alert"
    svc.ingestor.handle(topic, alert("1.1"))
    svc.ingestor.handle(topic, alert("1.2"))
    svc.ingestor.handle(topic, alert("1.3", kind="fall"))
    assert count(svc, AlertCase) == 1
    with svc.sm() as s:
        assert s.scalar(select(AlertCase)).press_count == 3


def test_cancel_marks_the_case_but_keeps_it_open(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    topic = f"pers/v1/{seed.device_id}/alert"
    svc.ingestor.handle(topic, alert("1.1"))
    svc.ingestor.handle(topic, json.dumps({"v": 1, "mid": "1.2", "kind": "cancel", "trigger": "user",
                                           "ref": "1.1"}).encode())
    with svc.sm() as s:
        case = s.scalar(select(AlertCase))
        assert case.wearer_cancelled and case.status == "routed" and case.press_count == 1


def test_late_alert_is_flagged(tmp_path, database_url):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", alert("1.1", ts=clock.unix() - 3600))
    with svc.sm() as s:
        assert s.scalar(select(AlertCase)).late


def test_malformed_and_foreign_messages_are_rejected_logged_and_counted(tmp_path, database_url, caplog):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    before = metrics.REJECTED.labels("not_json")._value.get()
    caplog.set_level(logging.WARNING, logger="pers.ingest")
    bad = [
        (f"pers/v1/{seed.device_id}/status", b"{not json", "not_json"),
        (f"pers/v1/{seed.device_id}/loc", b'{"v":1,"mid":"9.9","loc":{"lat":"north","lon":4,"src":"gnss"}}',
         "invalid"),
        (f"pers/v1/{seed.device_id}/alert", b'{"v":1,"mid":"9.8","kind":"cancel","ref":"1.1","ts":12}', "invalid"),
        ("pers/v1/nobody-i-know/alert", alert("1.1"), "unknown_device"),
        (f"pers/v1/{seed.device_id}/ack", b'{"v":1,"mid":"2.2","cid":"c-forged","ok":true}', "unknown_command"),
    ]
    for topic, payload, reason in bad:
        out = svc.ingestor.handle(topic, payload)
        assert not out.accepted and out.reason == reason
    assert metrics.REJECTED.labels("not_json")._value.get() == before + 1
    assert {r.reason for r in caplog.records} >= {"not_json", "invalid", "unknown_device", "unknown_command"}
    assert count(svc, Alert) == 0 and count(svc, AlertCase) == 0 and sender.sent == []
    # ...and the service still works afterwards.
    assert svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", alert("1.1")).accepted


def test_an_alarm_with_bad_fields_or_unreadable_still_opens_a_case_and_says_what_was_wrong(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    dev = seed.device_id
    out = svc.ingestor.handle(f"pers/v1/{dev}/alert",
                              b'{"v":1,"mid":"9.9","kind":"sos","ts":4,"loc":{"lat":"north","lon":4,"src":"gnss"}}')
    assert out.accepted and out.case_id
    assert [(d, c["ref"], c["stage"]) for d, c in sender.sent] == [(dev, "9.9", "received")]
    with svc.sm() as s:
        case = s.get(AlertCase, out.case_id)
        assert {f["field"] for f in case.flags} == {"loc", "ts"}
        view = case_view(s, case, today=case.opened_at.date())
        assert "Watch clock wrong: its times are not used" in view["warnings"]
        assert "Position from the watch unusable" in view["warnings"]
    # Bytes on the alert topic that are not a message: the same case, a dead letter, no ack
    # (the watch knows no mid the cloud could name).
    unreadable = svc.ingestor.handle(f"pers/v1/{dev}/alert", b"SOS!!!")
    assert unreadable.accepted and unreadable.case_id == out.case_id and len(sender.sent) == 1
    with svc.sm() as s:
        letter = s.scalar(select(DeadLetter))
        assert (letter.device_id, letter.reason, letter.payload, letter.case_id) == (dev, "not_json", b"SOS!!!",
                                                                                   out.case_id)
        assert s.get(AlertCase, out.case_id).press_count == 2


def test_location_report_updates_the_open_case_and_history(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", alert("1.1"))
    loc = dict(GOLDEN["loc_fix"]["payload"], ref="1.1")
    for _ in range(2):
        svc.ingestor.handle(f"pers/v1/{seed.device_id}/loc", json.dumps(loc).encode())
    assert count(svc, LocationPoint) == 1
    with svc.sm() as s:
        assert s.scalar(select(AlertCase)).lat == loc["loc"]["lat"]


def test_status_presence_and_command_ack(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    dev = seed.device_id
    svc.ingestor.handle(f"pers/v1/{dev}/status", json.dumps(GOLDEN["status"]["payload"]).encode())
    svc.ingestor.handle(f"pers/v1/{dev}/presence", b'{"online":true,"ts":null}')
    svc.ingestor.handle(f"pers/v1/{dev}/alert", alert("1.1"))
    cid = sender.sent[0][1]["cid"]
    out = svc.ingestor.handle(f"pers/v1/{dev}/ack", json.dumps({"v": 1, "mid": "1.2", "cid": cid, "ok": True}).encode())
    assert out.accepted
    with svc.sm() as s:
        d = s.get(Device, dev)
        assert (d.fw, d.cfg_version, d.batt_pct, d.online) == ("0.1.0", 3, 64, True)
        assert s.get(Command, cid).status == "acked"
        actions = [e.action for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))]
        assert actions[-1] == "command_acked"
