"""Per-device limits on the up topics (cloud/domain/ingest/limits.py), through the
Ingestor as the service wires it (default settings), with a fake clock.

A watch that floods location reports gets its burst and then its rate stored; the
rest is dropped (acknowledged, not stored), counted by kind and logged once. Another
watch is not slowed: its SOS in the middle of the flood is committed and acked, its
own reports are stored. The flooding watch's own alarms are never limited."""
from __future__ import annotations

import json
import logging

from sqlalchemy import func, select

from cloud import metrics
from cloud.domain.accounts import provision_device
from cloud.domain.clock import FakeClock
from cloud.settings import Settings
from cloud.store.models import Alert, AlertCase, Device, LocationPoint
from tests.cloud_helpers import seeded

DEFAULTS = Settings()
BURST = DEFAULTS.device_burst
LOC_PER_MIN = DEFAULTS.device_loc_per_min


def loc(mid: str, ts: int) -> bytes:
    return json.dumps({"v": 1, "mid": mid, "ts": ts, "reason": "periodic",
                       "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss", "ts": ts}}).encode()


def sos(mid: str, ts: int) -> bytes:
    return json.dumps({"v": 1, "mid": mid, "ts": ts, "kind": "sos", "trigger": "button"}).encode()


def status(mid: str, ts: int) -> bytes:
    return json.dumps({"v": 1, "mid": mid, "ts": ts, "batt": {"pct": 60}, "fw": "t", "uptime": 1, "cfg": 0}).encode()


def stored_points(sm, device_id: str) -> int:
    with sm() as s:
        return s.scalar(select(func.count()).select_from(LocationPoint).where(LocationPoint.device_id == device_id))


def acked(sender, device_id: str, mid: str) -> bool:
    return any(d == device_id and c["type"] == "alert_ack" and c["ref"] == mid and c["stage"] == "received"
               for d, c in sender.sent)


def test_a_location_flood_is_cut_to_its_limit_and_no_alarm_is_ever_limited(tmp_path, database_url, caplog):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    flooder = seed.device_id
    other = provision_device(svc.sm, clock, seed.tenant_id, device_id="quiet-watch", wearer_id=seed.wearer_id)
    dropped_before = metrics.RATE_LIMITED_MESSAGES.labels("loc")._value.get()
    outcomes = []
    with caplog.at_level(logging.WARNING, logger="pers.ingest"):
        # 400 reports in one second, in batches of 50 as the bulk lane takes them; another
        # watch's SOS and reports, and the flooder's own SOS, in the middle of it.
        for batch in range(8):
            items = [(f"pers/v1/{flooder}/loc", loc(f"1.{batch * 50 + i}", clock.unix())) for i in range(50)]
            outcomes += svc.ingestor.handle_batch(items)
            if batch == 4:
                mine = svc.ingestor.handle(f"pers/v1/{flooder}/alert", sos("1.sos", clock.unix()))
                theirs = svc.ingestor.handle(f"pers/v1/{other.device_id}/alert", sos("2.sos", clock.unix()))
                quiet = svc.ingestor.handle_batch([(f"pers/v1/{other.device_id}/loc", loc(f"2.{i}", clock.unix()))
                                                   for i in range(5)])
            clock.advance(0.125)

    # The burst and what the rate adds in that second are stored; the rest is dropped.
    allowed = BURST + int(1.0 * LOC_PER_MIN / 60)
    assert [o.accepted for o in outcomes] == [True] * allowed + [False] * (400 - allowed)
    assert {o.reason for o in outcomes if not o.accepted} == {"rate_limited"}
    assert stored_points(svc.sm, flooder) == allowed
    assert metrics.RATE_LIMITED_MESSAGES.labels("loc")._value.get() == dropped_before + 400 - allowed
    assert sum("over its rate limit" in r.getMessage() for r in caplog.records) == 1  # once, not 280 times

    # Neither alarm was limited: both committed, each with its case, both acked.
    assert mine.accepted and mine.case_id and acked(sender, flooder, "1.sos")
    assert theirs.accepted and theirs.case_id and acked(sender, other.device_id, "2.sos")
    # The quiet watch's own reports are its own budget.
    assert all(o.accepted for o in quiet) and stored_points(svc.sm, other.device_id) == 5

    # A minute later the flooder has a minute's worth again, no more.
    clock.advance(60)
    later = svc.ingestor.handle_batch([(f"pers/v1/{flooder}/loc", loc(f"3.{i}", clock.unix())) for i in range(20)])
    assert sum(o.accepted for o in later) == int(LOC_PER_MIN)


def test_a_stuck_button_during_a_flood_is_stored_and_acked_press_by_press(tmp_path, database_url):
    """The flooding watch's alarms: 50 presses while its reports are being dropped are
    all stored and acked (the press budget coalesces them into one case, as always)."""
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    device = seed.device_id
    svc.ingestor.handle_batch([(f"pers/v1/{device}/loc", loc(f"1.{i}", clock.unix())) for i in range(BURST + 50)])
    outs = [svc.ingestor.handle(f"pers/v1/{device}/alert", sos(f"9.{i}", clock.unix())) for i in range(50)]
    assert all(o.accepted and not o.duplicate for o in outs)
    assert all(acked(sender, device, f"9.{i}") for i in range(50))
    with svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.device_id == device)) == 50
        assert [c.press_count for c in s.scalars(select(AlertCase).where(AlertCase.device_id == device))] == [50]


def test_every_other_up_kind_has_its_own_limit(tmp_path, database_url):
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    device = seed.device_id
    before = metrics.RATE_LIMITED_MESSAGES.labels("status")._value.get()
    outs = svc.ingestor.handle_batch([(f"pers/v1/{device}/status", status(f"5.{i}", clock.unix()))
                                      for i in range(BURST + 30)])
    assert sum(o.accepted for o in outs) == BURST
    assert metrics.RATE_LIMITED_MESSAGES.labels("status")._value.get() == before + 30
    # Status being over its limit takes nothing from the same watch's location reports.
    assert svc.ingestor.handle(f"pers/v1/{device}/loc", loc("6.1", clock.unix())).accepted


def test_a_last_will_is_never_dropped(tmp_path, database_url):
    """Presence over its limit: "online" is dropped, but the last will is stored, so
    the console does not show a watch online that has gone."""
    clock = FakeClock()
    svc, sender, seed = seeded(tmp_path, clock, database_url=database_url)
    device = seed.device_id
    online = json.dumps({"v": 1, "online": True, "ts": clock.unix()}).encode()
    outs = svc.ingestor.handle_batch([(f"pers/v1/{device}/presence", online)] * (BURST + 10))
    assert sum(o.accepted for o in outs) == BURST
    will = svc.ingestor.handle(f"pers/v1/{device}/presence", b'{"online":false}')
    assert will.accepted
    with svc.sm() as s:
        assert s.get(Device, device).presence == "suspect"
