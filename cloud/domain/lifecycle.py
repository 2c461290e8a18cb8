"""The case lifecycle: new -> routed -> claimed -> in_call -> resolved.

``cases.py`` (claim, resolve and the operator actions) and the system
(routing, escalation) move cases; this module is the one table of which moves
are legal, and the helpers that stamp and record them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.store.models import AlertCase, AuditEntry, CaseEvent

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("routed", "claimed", "resolved"),
    "routed": ("routed", "claimed", "resolved"),  # routed -> routed: escalated to another centre
    "claimed": ("in_call", "resolved"),
    "in_call": ("claimed", "resolved"),  # a call ends without a resolution: back to claimed
    "resolved": (),
}

# Which kinds an alarm standard counts as "alarms" for the SLA (the others are technical).
ALARM_KINDS = ("sos", "fall", "geofence")


class TransitionError(ValueError):
    pass


def can_move(src: str, dst: str) -> bool:
    return dst in TRANSITIONS.get(src, ())


def move(s: Session, case: AlertCase, dst: str, *, actor: str, now: datetime, detail: dict[str, Any] | None = None,
         action: str | None = None, audit: bool = True) -> None:
    """Change the status, stamp the time, write the timeline event and the audit entry."""
    if not can_move(case.status, dst):
        raise TransitionError(f"case {case.id}: {case.status} -> {dst} is not allowed")
    case.status = dst
    if dst == "routed" and case.routed_at is None:
        case.routed_at = now
    elif dst == "in_call":
        case.in_call_at = now
    elif dst == "resolved":
        case.resolved_at = now
    action = action or dst
    s.add(CaseEvent(case_id=case.id, at=now, actor=actor, action=action, detail=detail))
    if audit:
        s.add(AuditEntry(at=now, actor=actor, action=f"case.{action}", tenant_id=case.tenant_id,
                         target=f"case:{case.id}", detail=detail))


def enter_in_call(s: Session, case: AlertCase, *, actor: str, now: datetime,
                  detail: dict[str, Any] | None = None) -> None:
    """For the call-back action: claimed -> in_call (the watch is dialling)."""
    move(s, case, "in_call", actor=actor, now=now, detail=detail)


def end_call(s: Session, case: AlertCase, *, actor: str, now: datetime, detail: dict[str, Any] | None = None) -> None:
    move(s, case, "claimed", actor=actor, now=now, detail=detail, action="call_ended")

# Priority: lower is more urgent. Fall and SOS first, then geofence and inactivity (someone
# who has not moved for hours may be on the floor), a missed check-in and low battery, then
# the watch offline or not worn, then a missed medication dose.
PRIORITY = {"sos": 0, "fall": 0, "geofence": 1, "inactivity": 1, "checkin": 2, "low_battery": 2, "offline": 3,
            "not_worn": 3, "missed_dose": 4}
# Welfare alarms: no alarm standard counts them in the SLA, but the contacts' cascade
# runs for them as for an alarm (cloud/domain/escalation.py).
WELFARE_KINDS = ("checkin", "inactivity")
OPEN_STATUSES = ("new", "routed", "claimed", "in_call")
