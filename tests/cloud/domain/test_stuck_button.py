"""A stuck or bouncing SOS button. Hundreds of presses a minute from one
watch make ONE case with a press count; the device is rate limited (one
``rate_limited`` case event, a metric, a log line); every press is still stored
and acked (the watch re-sends until it has ``alert_ack`` ``received``); and the
service still takes another watch's SOS at once."""
import json
import logging
import queue
import time

from sqlalchemy import func, select

from cloud import metrics
from cloud.domain.accounts import provision_device
from cloud.domain.clock import FakeClock
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.migrate import upgrade
from cloud.store.models import Alert, AlertCase, CaseEvent, Command
from cloud.wiring import build_services
from tests.cloud.mqtt.test_mqtt_ingest import device_client, wait_for
from tests.cloud_helpers import seeded


def press(mid: str, ts: int | None = None) -> bytes:
    return json.dumps({"v": 1, "mid": mid, "ts": ts, "kind": "sos", "trigger": "button",
                       "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"}}).encode()


class Events:
    def __init__(self):
        self.published: list[dict] = []

    def publish(self, tenant_id, event):
        self.published.append(event)


def count(sm, model, *where):
    with sm() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_600_presses_in_a_minute_make_one_rate_limited_case(tmp_path, database_url, caplog):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    events = Events()
    svc.ingestor.events = events
    other = provision_device(svc.sm, clock, seed.tenant_id, device_id="other-watch", wearer_id=seed.wearer_id)
    limited_before = metrics.RATE_LIMITED.labels("sos")._value.get()
    coalesced_before = metrics.PRESSES_COALESCED.labels("sos")._value.get()
    topic = f"pers/v1/{seed.device_id}/alert"
    other_out = None
    with caplog.at_level(logging.WARNING, logger="pers.ingest"):
        sent_bytes = {}
        for i in range(600):
            sent_bytes[i] = press(f"9.{i}", clock.unix())
            out = svc.ingestor.handle(topic, sent_bytes[i])
            assert out.accepted and not out.duplicate
            if i == 300:  # another watch's SOS in the middle of the flood
                other_out = svc.ingestor.handle(f"pers/v1/{other.device_id}/alert", press("1.1", clock.unix()))
            clock.advance(0.1)

    with svc.sm() as s:
        cases = s.scalars(select(AlertCase).where(AlertCase.device_id == seed.device_id)).all()
        assert len(cases) == 1
        case = cases[0]
        assert case.press_count == 600
        actions = [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    # Every press is recorded (so a redelivery is a duplicate) and acked to the watch.
    assert count(svc.sm, Alert, Alert.device_id == seed.device_id) == 600
    acks = [c for d, c in sender.sent if d == seed.device_id and c["type"] == "alert_ack"]
    assert sorted(c["ref"] for c in acks) == sorted(f"9.{i}" for i in range(600))
    assert {c["stage"] for c in acks} == {"received"}
    # But not 600 timeline entries and live events: one rate_limited event, joins up to the budget.
    assert actions.count("rate_limited") == 1
    assert actions.count("alert_joined") == svc.ingestor.press_budget - 1
    assert len(actions) < 20
    case_events = [e for e in events.published if e.get("type") == "case" and e["case"]["id"] == case.id]
    assert len(case_events) <= 1 + svc.ingestor.press_budget + 60 / svc.ingestor.coalesced_publish_s + 1
    assert metrics.RATE_LIMITED.labels("sos")._value.get() == limited_before + 1
    assert metrics.PRESSES_COALESCED.labels("sos")._value.get() == coalesced_before + 600 - svc.ingestor.press_budget
    assert sum("press budget" in r.getMessage() for r in caplog.records) == 1
    # The coalesced acks are not on the case: the watch's command acks add nothing to its timeline.
    assert count(svc.sm, Command, Command.case_id == case.id) == svc.ingestor.press_budget

    # The other watch got its own case and its ack, in the middle of the flood.
    assert other_out.accepted and other_out.case_id not in (None, case.id)
    assert any(d == other.device_id and c["ref"] == "1.1" for d, c in sender.sent)

    # A redelivered coalesced press (the same bytes) changes nothing, and is acked again.
    sent = len(sender.sent)
    again = svc.ingestor.handle(topic, sent_bytes[599])
    assert again.duplicate and again.case_id == case.id
    assert len(sender.sent) == sent + 1
    with svc.sm() as s:
        assert s.get(AlertCase, case.id).press_count == 600


def test_presses_within_the_budget_are_ordinary_joins(tmp_path, database_url):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    topic = f"pers/v1/{seed.device_id}/alert"
    for i in range(30):  # one press every 10 s: 6 a minute, under the budget of 10
        svc.ingestor.handle(topic, press(f"2.{i}", clock.unix()))
        clock.advance(10)
    with svc.sm() as s:
        case = s.scalar(select(AlertCase))
        actions = [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert case.press_count == 30
    assert "rate_limited" not in actions and actions.count("alert_joined") == 29


def test_stuck_button_through_the_broker_while_another_watch_calls_for_help(tmp_path, mosquitto, database_url):
    """The same through a real Mosquitto and the cloud's MQTT bridge: the flood is
    acked, stored once, coalesced into one case, and the other watch's SOS is
    acked while the flood is still being worked off (the urgent lane is FIFO)."""
    settings = Settings(data_dir=tmp_path, database_url=database_url, log_json=False)
    upgrade(settings.db_url)
    probe = build_services(settings, with_mqtt=False)
    seed = seed_demo(probe.sm, probe.clock, tmp_path)
    other = provision_device(probe.sm, probe.clock, seed.tenant_id, device_id="other-watch", wearer_id=seed.wearer_id)
    broker = mosquitto({seed.device_id: seed.device_secret, other.device_id: other.secret})
    settings = settings.model_copy(update={"mqtt_port": broker.port, "mqtt_password": "cloudpw"})
    svc = build_services(settings)
    svc.bridge.start()
    try:
        assert svc.bridge.connected.wait(5)
        stuck_inbox, other_inbox = queue.Queue(), queue.Queue()
        stuck = device_client(broker, seed.device_id, seed.device_secret, stuck_inbox)
        caller = device_client(broker, other.device_id, other.secret, other_inbox)
        topic = f"pers/v1/{seed.device_id}/alert"
        infos = [stuck.publish(topic, press(f"7.{i}", int(time.time())), qos=1) for i in range(600)]
        infos[300].wait_for_publish(10)
        t0 = time.monotonic()
        caller.publish(f"pers/v1/{other.device_id}/alert", press("1.1", int(time.time())), qos=1)
        _, cmd = other_inbox.get(timeout=60)
        assert (cmd["type"], cmd["ref"], cmd["stage"]) == ("alert_ack", "1.1", "received")
        for info in infos:
            info.wait_for_publish(30)
        assert wait_for(lambda: count(svc.sm, Alert, Alert.device_id == seed.device_id) == 600, timeout=120), \
            count(svc.sm, Alert, Alert.device_id == seed.device_id)
        refs = set()
        assert wait_for(lambda: (refs.update(c["ref"] for _, c in _drain(stuck_inbox)) or len(refs)) >= 600, 60)
        assert refs == {f"7.{i}" for i in range(600)}
        with svc.sm() as s:
            cases = s.scalars(select(AlertCase).where(AlertCase.device_id == seed.device_id)).all()
            assert [c.press_count for c in cases] == [600]
            actions = [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == cases[0].id))]
            assert actions.count("rate_limited") == 1
            assert s.scalar(select(func.count()).select_from(AlertCase)
                            .where(AlertCase.device_id == other.device_id)) == 1
        assert svc.bridge.connected.is_set()
        logging.getLogger(__name__).info("other SOS acked after %.2f s", time.monotonic() - t0)
        stuck.loop_stop()
        caller.loop_stop()
    finally:
        svc.bridge.stop()


def _drain(q: queue.Queue):
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def test_alert_from_a_clock_far_in_the_future_is_flagged_not_rejected(tmp_path, database_url):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    year_ahead = clock.unix() + 365 * 86400
    out = svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", press("3.1", year_ahead))
    assert out.accepted and out.case_id is not None
    assert [c["ref"] for _, c in sender.sent] == ["3.1"]  # still an SOS: acked, case opened
    with svc.sm() as s:
        case = s.get(AlertCase, out.case_id)
        assert not case.late
        events = {e.action: e.detail for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))}
    assert events["opened"]["clock_skew_s"] == 365 * 86400
    assert events["clock_skew"]["device_ts"] == year_ahead and events["clock_skew"]["skew_s"] == 365 * 86400
    # A clock a few seconds ahead is normal drift: nothing flagged.
    out = svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", press("3.2", clock.unix() + 20))
    with svc.sm() as s:
        joined = s.scalars(select(CaseEvent).where(CaseEvent.action == "alert_joined")).one()
    assert "clock_skew_s" not in joined.detail


def test_the_press_window_forgets_quiet_devices(tmp_path, database_url):
    """Memory: a device that pressed once a month ago is not kept in the window."""
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    ing = svc.ingestor
    for i in range(3000):
        ing._over_press_budget(f"watch-{i}", clock.now())
        if i % 1000 == 999:
            clock.advance(ing.press_window_s + 1)
    assert len(ing._presses) <= 2048
    assert "watch-2999" in ing._presses and "watch-0" not in ing._presses
