"""Alerts (SOS, fall, low battery, cancel) and their case: a retransmission is acked
again, a new alarm joins the device's open case or opens one (through ``casefile``,
which alone opens cases), and a stuck button is coalesced.

A stuck or bouncing SOS button: beyond ``press_budget`` presses in
``press_window_s`` while a case is open, presses are still stored (dedupe by mid
keeps working), counted in ``press_count`` and acked to the watch, but coalesced:
no case event, no live event, no command history on the case per press; one
``rate_limited`` case event when it starts, a metric and a log line."""
from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud import metrics, protocol
from cloud.domain import casefile, welfare
from cloud.domain.dedupe import classify, digest_of
from cloud.domain.geo import country_of_mcc, distance_m
from cloud.domain.ingest.outcome import Outcome
from cloud.domain.ingest.outgoing import ack_alert, publish_case
from cloud.domain.ingest.reports import cell_fix, side_effects
from cloud.domain.ingest.validate import AlarmCheck, check_alarm
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY
from cloud.domain.uow import Tx
from cloud.store.models import Alert, AlertCase, CaseEvent, Device

if TYPE_CHECKING:
    from cloud.domain.ingest.ingestor import Ingestor

log = logging.getLogger("pers.ingest")


def alert_doc(alert: protocol.Alert) -> dict[str, Any]:
    """The alert as stored, and as de-duplication hashes it."""
    return alert.model_dump(mode="json", exclude_none=True)


def store_alert(ing: Ingestor, tx: Tx, device: Device, alert: protocol.Alert) -> Outcome:
    s, now = tx.session, ing.clock.now()
    doc = alert_doc(alert)
    seen, key, reused = classify(s, device.id, alert.mid, digest_of(doc),
                                 now - timedelta(seconds=ing.dedupe_window_s))
    if seen is not None:
        return _retransmission(ing, tx, device, alert, seen)
    check = check_alarm(ing, device.id, alert, reused)
    over_budget = alert.kind != "cancel" and ing.press.over_budget(device.id, now)
    case = casefile.open_case_of(s, device.id)
    if case is not None and over_budget:
        return _coalesced_press(ing, tx, device, alert, case, check, now, key)
    if alert.kind == "cancel":
        case = casefile.case_of_alert(s, device.id, alert.ref) or case
        if case is not None:
            case.wearer_cancelled = True
            _event(ing, s, case, f"device:{device.id}", "wearer_cancelled", {"mid": alert.mid, "ref": alert.ref})
    elif case is not None:
        _join(ing, s, device, alert, case, check)
    else:
        case = _open(ing, s, device, alert, check, now)

    s.add(Alert(case_id=case.id if case else None, device_id=device.id, mid=alert.mid, digest=key,
                kind=alert.kind, trigger=alert.trigger, device_ts=alert.ts, received_at=now, payload=doc))
    s.flush()  # the unique (device, mid, digest) constraint speaks here, before any effect is queued
    metrics.ALERTS.labels(alert.kind).inc()
    ack_alert(tx, ing.sender, ing.clock, device.id, alert, case)
    if alert.batt and alert.batt.pct is not None:  # the device's figure too: one truth for every view
        device.batt_pct, device.batt_at = alert.batt.pct, now
    side_effects(ing, tx, device, alert.mid, alert.loc, alert.cell, alert.net, alarm=True)
    if alert.kind == "low_battery":  # the family is told, once per discharge
        welfare.on_low_battery(tx, device, alert.batt.pct if alert.batt else None, case, now, ing.notifier)
    if case is not None:
        publish_case(tx, ing.events, case, now)
    return Outcome(True, case_id=case.id if case else None)


def _join(ing: Ingestor, s: Session, device: Device, alert: protocol.Alert, case: AlertCase, check: AlarmCheck) -> None:
    case.press_count += 1
    if PRIORITY.get(alert.kind, 9) < case.priority:
        case.priority, case.kind = PRIORITY[alert.kind], alert.kind
    _apply_alert_details(ing, case, alert)
    case.late = case.late or check.late
    _event(ing, s, case, f"device:{device.id}", "alert_joined",
           {"mid": alert.mid, "kind": alert.kind, "press_count": case.press_count,
            **({"clock_skew_s": check.skew_s} if check.skewed else {})})
    _flag(ing, s, case, alert.mid, check.flags)


def _open(ing: Ingestor, s: Session, device: Device, alert: protocol.Alert, check: AlarmCheck,
          now: datetime) -> AlertCase:
    case = casefile.new_case(device, alert.kind, alert.mid, now, late=check.late)
    _apply_alert_details(ing, case, alert)
    casefile.open_case(s, case, actor=f"device:{device.id}", at=ing.clock.now(),
                       detail={"mid": alert.mid, "kind": alert.kind, "trigger": alert.trigger, "late": check.late,
                               **({"clock_skew_s": check.skew_s} if check.skewed else {})})
    if check.skewed:
        _event(ing, s, case, "system", "clock_skew", {"mid": alert.mid, "device_ts": alert.ts,
                                                      "server_ts": ing.clock.unix(), "skew_s": check.skew_s})
    _flag(ing, s, case, alert.mid, check.flags)
    if case.loc_src == "cell":
        # The watch may send a cell position without the cell it came from.
        _event(ing, s, case, "system", "located_by_cell",
               {"lat": case.lat, "lon": case.lon, "acc": case.acc,
                "cell": alert.cell.model_dump() if alert.cell is not None else None})
    # A fresh reading of the clock: the timeline must never go back in time.
    casefile.route_new_case(s, case, ing.clock.now(), present_window_s=ing.present_window_s,
                            country=country_of_mcc(alert.cell.mcc) if alert.cell else None)
    return case


def _retransmission(ing: Ingestor, tx: Tx, device: Device, alert: protocol.Alert, seen: Alert) -> Outcome:
    """The watch did not get our ack: ack again. If its case has been closed since,
    say that too, so the watch is not left believing help is still on its way."""
    s = tx.session
    case = s.get(AlertCase, seen.case_id) if seen.case_id is not None else None
    ack_alert(tx, ing.sender, ing.clock, device.id, alert)
    newest = s.scalar(select(func.max(Alert.id)).where(Alert.device_id == device.id, Alert.mid == alert.mid))
    # Not if the watch has since re-used the id (reset) for an alarm still open: "closed"
    # would name that one.
    if case is not None and case.status not in OPEN_STATUSES and newest == seen.id:
        ack_alert(tx, ing.sender, ing.clock, device.id, alert, stage="closed")
    return Outcome(True, duplicate=True, case_id=seen.case_id)


def _coalesced_press(ing: Ingestor, tx: Tx, device: Device, alert: protocol.Alert, case: AlertCase, check: AlarmCheck,
                     now: datetime, key: str) -> Outcome:
    """A press beyond the budget while a case is open: stored (so a redelivery is a
    duplicate), counted, acked to the watch (or it re-sends), and nothing more, except
    one ``rate_limited`` event per case and a live update at most every
    ``coalesced_publish_s``."""
    s = tx.session
    case.press_count += 1
    if PRIORITY.get(alert.kind, 9) < case.priority:
        case.priority, case.kind = PRIORITY[alert.kind], alert.kind
    case.late = case.late or check.late
    first, publish = ing.press.coalesce(device.id, case.id, now, ing.coalesced_publish_s)
    if first:
        _event(ing, s, case, "system", "rate_limited",
               {"mid": alert.mid, "kind": alert.kind, "press_count": case.press_count,
                "budget": ing.press_budget, "window_s": ing.press_window_s})
        metrics.RATE_LIMITED.labels(alert.kind).inc()
        log.warning("device over its alert press budget: further presses coalesced into the case",
                    extra={"device_id": device.id, "case_id": case.id, "press_count": case.press_count,
                           "budget": ing.press_budget, "window_s": ing.press_window_s})
    metrics.PRESSES_COALESCED.labels(alert.kind).inc()
    flags = check.flags
    if flags and not {f["field"] for f in flags} <= {f["field"] for f in case.flags or []}:
        _flag(ing, s, case, alert.mid, flags)
    s.add(Alert(case_id=case.id, device_id=device.id, mid=alert.mid, digest=key, kind=alert.kind,
                trigger=alert.trigger, device_ts=alert.ts, received_at=now, payload=alert_doc(alert)))
    s.flush()  # the unique (device, mid) constraint speaks before the ack is queued
    metrics.ALERTS.labels(alert.kind).inc()
    # The ack is not attached to the case: its command ack would be one case event per press.
    ack_alert(tx, ing.sender, ing.clock, device.id, alert)
    if publish:
        publish_case(tx, ing.events, case, now)
    return Outcome(True, case_id=case.id)


def _flag(ing: Ingestor, s: Session, case: AlertCase, mid: str, flags: list[dict[str, Any]]) -> None:
    """What the watch got wrong in this alarm, on the case (for the operator's eyes)
    and in its timeline."""
    if not flags:
        return
    known = list(case.flags or [])
    fields = {f["field"] for f in known}
    case.flags = known + [f for f in flags if f["field"] not in fields]
    _event(ing, s, case, "system", "alarm_flagged", {"mid": mid, "flags": flags})


def _apply_alert_details(ing: Ingestor, case: AlertCase, alert: protocol.Alert) -> None:
    fix = cell_fix(ing, alert.cell)
    loc = alert.loc
    if loc is not None and loc.src == "last" and fix is not None:
        # A remembered fix the current cell cannot hear is stale: the wearer has moved.
        if distance_m((loc.lat, loc.lon), (fix.lat, fix.lon)) > fix.range_m + (loc.acc or 0):
            loc = None
    if loc is not None:
        case.lat, case.lon, case.acc = loc.lat, loc.lon, loc.acc
        case.loc_src, case.loc_ts = loc.src, loc.ts
    elif fix is not None and (case.lat is None or case.loc_src in ("cell", "last")):
        case.lat, case.lon, case.acc = fix.lat, fix.lon, fix.range_m
        case.loc_src, case.loc_ts = "cell", alert.ts
    if alert.batt and alert.batt.pct is not None:
        case.batt_pct = alert.batt.pct
    if alert.vitals and alert.vitals.hr is not None:
        case.heart_rate, case.heart_rate_at = alert.vitals.hr, ing.clock.now()
    if alert.net and alert.net.profile:
        case.net_profile = alert.net.profile


def _event(ing: Ingestor, s: Session, case: AlertCase, actor: str, action: str, detail: dict[str, Any] | None) -> None:
    s.add(CaseEvent(case_id=case.id, at=ing.clock.now(), actor=actor, action=action, detail=detail))


class PressBudget:
    """Presses per device in the last ``window_s``, and which case was told it is
    rate limited. In memory, per process: a restart or a second worker only lets a
    few more presses through as ordinary joins."""

    def __init__(self, budget: int, window_s: int) -> None:
        self.budget, self.window_s = budget, window_s
        self.presses: dict[str, deque[datetime]] = {}
        self._limited_case: dict[str, int] = {}         # device -> case that got its rate_limited event
        self._published_at: dict[int, datetime] = {}    # case -> last live event while rate limited
        self._lock = threading.Lock()
        self._sweep_at = 1024

    def over_budget(self, device_id: str, now: datetime) -> bool:
        """Is this press one more than ``budget`` within ``window_s``?"""
        window_start = now - timedelta(seconds=self.window_s)
        with self._lock:
            q = self.presses.get(device_id)
            if q is None:
                if len(self.presses) >= self._sweep_at:
                    self._sweep(window_start)
                q = self.presses[device_id] = deque(maxlen=self.budget + 1)
            q.append(now)
            return len(q) > self.budget and q[0] > window_start

    def coalesce(self, device_id: str, case_id: int, now: datetime, publish_every_s: float) -> tuple[bool, bool]:
        """(is this the case's first coalesced press, is a live event due)."""
        with self._lock:
            previous = self._limited_case.get(device_id)
            first = previous != case_id
            if first:
                self._limited_case[device_id] = case_id
                if previous is not None:
                    self._published_at.pop(previous, None)
            last = self._published_at.get(case_id)
            if first or last is None or (now - last).total_seconds() >= publish_every_s:
                self._published_at[case_id] = now
                return first, True
            return first, False

    def _sweep(self, window_start: datetime) -> None:
        """Forget devices with no press in the window (alerts are rare: most of a large
        fleet would otherwise stay in memory for ever). Under _lock."""
        for device_id in [d for d, q in self.presses.items() if q[-1] <= window_start]:
            del self.presses[device_id]
            self._limited_case.pop(device_id, None)
        self._published_at = {c: t for c, t in self._published_at.items() if t > window_start}
        self._sweep_at = max(1024, 2 * len(self.presses))
