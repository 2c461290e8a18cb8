"""Escalation timers and the SLA report. Driven by ``tick(now)``: the app's
background thread calls it every ``tick_s``; tests call it with a FakeClock.

- Unclaimed for ``escalate_unclaimed_s``: the case moves to the next centre of
  its routing path (the backup in the contract) and the supervisors are
  alerted (timeline event + live event). With no centre left, the supervisors
  are alerted again at doubling intervals.
- Claimed (or in a call) with no operator action for ``remind_idle_s``: the
  operator is reminded, then again every ``remind_idle_s``.
- Alarms (SOS, fall, geofence) and welfare alarms (missed check-in, inactivity)
  still open and idle for ``cascade_after_s``: the next contact in cascade order
  is notified, one per ``cascade_after_s``.
Every step is a CaseEvent (the audit trail of the case) and an AuditEntry.
"""
from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain.casefile import publish_case, route_case
from cloud.domain.lifecycle import ALARM_KINDS, WELFARE_KINDS, move
from cloud.domain.ports import Clock, EventSink
from cloud.domain.routing import contracted_centres, decide_for_case
from cloud.domain.uow import Tx, transaction
from cloud.store.models import AlertCase, AuditEntry, CallCentre, CaseEvent, Contact, Operator, Wearer

if TYPE_CHECKING:
    from cloud.domain.notify import Notifier
    from cloud.settings import Settings

log = logging.getLogger("pers.escalation")


@dataclass
class EscalationPolicy:
    escalate_unclaimed_s: int = 30
    remind_idle_s: int = 120
    cascade_after_s: int = 300
    present_window_s: int = 120

    @classmethod
    def from_settings(cls, st: Settings) -> EscalationPolicy:
        return cls(st.escalate_unclaimed_s, st.remind_idle_s, st.cascade_after_s, st.operator_present_s)


@dataclass
class TickReport:
    escalated: list[int] = field(default_factory=list)
    supervisors_alerted: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)
    cascaded: list[tuple[int, int]] = field(default_factory=list)  # (case, contact)
    routed: list[int] = field(default_factory=list)


def _last_operator_action(s: Session, case: AlertCase) -> datetime | None:
    last = s.scalar(select(func.max(CaseEvent.at)).where(CaseEvent.case_id == case.id,
                                                         CaseEvent.actor.like("operator:%")))
    stamps = [t for t in (last, case.claimed_at, case.in_call_at) if t is not None]
    return max(stamps) if stamps else None


def _supervisors(s: Session, tenant_id: int, centre_ids: set[int | None]) -> list[Operator]:
    """The supervisors of the centres involved and the tenant-wide ones (no centre);
    the tenant's admins only when there is no supervisor at all: someone must know."""
    def find(roles: tuple[str, ...]) -> list[Operator]:
        q = select(Operator).where(Operator.tenant_id == tenant_id, Operator.active.is_(True),
                                   Operator.role.in_(roles),
                                   or_(Operator.centre_id.is_(None),
                                       Operator.centre_id.in_([c for c in centre_ids if c])))
        return list(s.scalars(q.order_by(Operator.id)))
    return find(("supervisor",)) or find(("admin",))


class Escalator:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, policy: EscalationPolicy,
                 notifier: Notifier | None = None) -> None:
        self.sm, self.clock, self.events, self.policy, self.notifier = sm, clock, events, policy, notifier

    def tick(self, now: datetime | None = None) -> TickReport:
        """``now`` pins the time (tests may); by default each case reads the clock
        when it holds the write lock."""
        report = TickReport()
        with self.sm() as s:
            ids = list(s.scalars(select(AlertCase.id).where(AlertCase.status.in_(("new", "routed", "claimed",
                                                                                  "in_call")))
                                 .order_by(AlertCase.priority, AlertCase.opened_at)))
        for case_id in ids:
            # One transaction per case: a failure on one case never holds up the others.
            try:
                self._tick_case(case_id, now, report)
            except Exception:
                log.exception("escalation tick failed for a case", extra={"case_id": case_id})
        return report

    def _tick_case(self, case_id: int, fixed_now: datetime | None, report: TickReport) -> None:
        # Read-only first: most ticks find nothing due, and must not cost a write (an fsync on SQLite).
        with self.sm() as s:
            case = s.get(AlertCase, case_id)
            if case is None or case.status == "resolved" or not self._plan(s, case, fixed_now or self.clock.now()):
                return
        with transaction(self.sm) as tx:
            s = tx.session
            # Take the write lock first (a no-op UPDATE: SQLite's database lock, PostgreSQL's
            # row lock), then read the clock: the events written here are then stamped in
            # the same order as their ids, whatever the ingest does meanwhile.
            s.execute(update(AlertCase).where(AlertCase.id == case_id)
                      .values(escalation_level=AlertCase.escalation_level))
            now = fixed_now or self.clock.now()
            case = s.get(AlertCase, case_id)
            if case is None or case.status == "resolved":
                return
            plan = self._plan(s, case, now)
            if plan:
                self._apply(tx, case, now, plan, report)

    def _plan(self, s: Session, case: AlertCase, now: datetime) -> dict[str, Any]:
        """What is due for this case now; nothing is written."""
        p = self.policy
        plan: dict[str, Any] = {}
        if case.status == "new" and contracted_centres(s, case.tenant_id):
            plan["route"] = True
            return plan  # a case routed now starts its escalation period now
        if case.status in ("new", "routed"):
            base = case.escalated_at or case.routed_at or case.opened_at
            if now >= base + timedelta(seconds=p.escalate_unclaimed_s):
                tried = list(case.tried_centres or ([case.centre_id] if case.centre_id else []))
                decision = decide_for_case(s, case, now, p.present_window_s, exclude=tuple(tried))
                exhausted = max(0, (case.escalation_level or 0) - len(tried) + 1) if decision.centre_id is None else 0
                if now >= base + timedelta(seconds=p.escalate_unclaimed_s * (2 ** exhausted)):
                    plan["escalate"] = (decision.centre_id, tried)
        elif case.status in ("claimed", "in_call"):
            last = _last_operator_action(s, case) or case.claimed_at or case.opened_at
            since = max(last, case.reminded_at) if case.reminded_at else last
            if (now - since).total_seconds() >= p.remind_idle_s:
                plan["remind"] = last
        contact_id = self._cascade_due(s, case, now)
        if contact_id is not None:
            plan["cascade"] = contact_id
        return plan

    def _apply(self, tx: Tx, case: AlertCase, now: datetime, plan: dict[str, Any], report: TickReport) -> None:
        s = tx.session
        extra: dict[str, Any] | None = None
        if plan.get("route") and route_case(s, case, now, present_window_s=self.policy.present_window_s):
            report.routed.append(case.id)
        if "escalate" in plan:
            next_centre, tried = plan["escalate"]
            extra = self._escalate(s, case, now, next_centre, tried, report)
        if "remind" in plan:
            last = plan["remind"]
            case.reminded_at = now
            idle = (now - last).total_seconds()
            detail = {"operator_id": case.claimed_by, "idle_s": idle}
            s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="reminder", detail=detail))
            s.add(AuditEntry(at=now, actor="system", action="case.reminder", tenant_id=case.tenant_id,
                             target=f"case:{case.id}", detail=detail))
            metrics.ESCALATIONS.labels("reminder").inc()
            report.reminded.append(case.id)
            extra = {"type": "reminder", "case_id": case.id, "operator_id": case.claimed_by, "idle_s": idle}
        if "cascade" in plan:
            contact_id = plan["cascade"]
            case.cascade_at = now
            case.cascade_next = (case.cascade_next or 0) + 1
            s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="cascade",
                            detail={"contact_id": contact_id, "step": case.cascade_next}))
            metrics.ESCALATIONS.labels("cascade").inc()
            report.cascaded.append((case.id, contact_id))
            message = self._cascade_message(s, case)
            notifier = self.notifier
            if notifier is not None:
                cid_ = case.id
                tx.after_commit(lambda: self._notify_safely(notifier, cid_, contact_id, message))
        publish_case(tx, self.events, case, now, extra)

    def _escalate(self, s: Session, case: AlertCase, now: datetime, next_centre: int | None, tried: list[int],
                  report: TickReport) -> dict[str, Any]:
        waited = (now - case.opened_at).total_seconds()
        from_centre = case.centre_id
        case.escalation_level = (case.escalation_level or 0) + 1
        case.escalated_at = now
        detail: dict[str, Any]
        if next_centre is not None:
            case.centre_id = next_centre
            case.tried_centres = tried + [next_centre]
            detail = {"from_centre": from_centre, "to_centre": next_centre, "level": case.escalation_level,
                      "unclaimed_s": waited}
            # Audited once below, with the supervisors alerted.
            move(s, case, "routed", actor="system", now=now, detail=detail, action="escalated", audit=False)
            metrics.ESCALATIONS.labels("centre").inc()
            report.escalated.append(case.id)
        else:
            detail = {"from_centre": from_centre, "to_centre": None, "level": case.escalation_level,
                      "unclaimed_s": waited, "note": "no backup centre left"}
            s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="escalation_exhausted", detail=detail))
        sups = _supervisors(s, case.tenant_id, {from_centre, case.centre_id})
        names = [o.username for o in sups]
        s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="supervisors_alerted",
                        detail={"supervisors": names, "unclaimed_s": waited}))
        s.add(AuditEntry(at=now, actor="system", action="case.escalated", tenant_id=case.tenant_id,
                         target=f"case:{case.id}", detail={**detail, "supervisors": names}))
        metrics.ESCALATIONS.labels("supervisors").inc()
        report.supervisors_alerted.append(case.id)
        log.warning("case unclaimed: escalated", extra={"case_id": case.id, **{k: v for k, v in detail.items()
                                                                             if k != "note"}})
        return {"type": "escalation", "case_id": case.id, "level": case.escalation_level,
                "from_centre": from_centre, "to_centre": next_centre, "unclaimed_s": waited,
                "supervisors": [o.id for o in sups]}

    def _cascade_due(self, s: Session, case: AlertCase, now: datetime) -> int | None:
        if (case.kind not in ALARM_KINDS and case.kind not in WELFARE_KINDS) or case.wearer_id is None:
            return None
        p = self.policy
        last = _last_operator_action(s, case) or case.opened_at
        ref = max(last, case.cascade_at) if case.cascade_at else last
        if (now - ref).total_seconds() < p.cascade_after_s:
            return None
        contacts = list(s.scalars(select(Contact.id).where(Contact.wearer_id == case.wearer_id)
                                  .order_by(Contact.rank, Contact.id)))
        step = case.cascade_next or 0
        return contacts[step] if step < len(contacts) else None

    def _cascade_message(self, s: Session, case: AlertCase) -> str:
        # Only cases with a wearer cascade (_cascade_due); the foreign key keeps the wearer.
        wearer = s.get_one(Wearer, case.wearer_id)
        centre = s.get(CallCentre, case.centre_id) if case.centre_id else None
        what = {"sos": "pressed the alarm button", "fall": "may have fallen",
                "geofence": "left a safe zone", "checkin": "did not answer the daily \"Are you OK?\" on the watch",
                "inactivity": "has not moved for hours"}.get(case.kind, f"raised an alert ({case.kind})")
        where = f" near {case.lat:.5f},{case.lon:.5f}" if case.lat is not None else ""
        call = f" Please call {centre.name} on {centre.phone}." if centre and centre.phone else ""
        return f"{wearer.name} {what}{where}. The alarm is still open (case {case.id}).{call}"

    @staticmethod
    def _notify_safely(notifier: Notifier, case_id: int, contact_id: int, message: str) -> None:
        try:
            notifier.notify_contact(None, case_id, contact_id, message)
        except Exception:
            log.exception("cascade notification failed", extra={"case_id": case_id, "contact_id": contact_id})


# --- SLA -----------------------------------------------------------------------------

def sla_report(sm: sessionmaker[Session], tenant_id: int, start: datetime, end: datetime, *,
               targets: Sequence[tuple[float, float]] = ((10, 80.0), (40, 98.5)),
               kinds: tuple[str, ...] | None = ALARM_KINDS, now: datetime | None = None) -> dict[str, Any]:
    """Share of alarms accepted (claimed) within each target, by day and by operator.

    An alarm never claimed counts against the target once its longest target has
    passed (it was not accepted in time); before that it is "pending" and left out."""
    longest = max(t for t, _ in targets)
    with sm() as s:
        q = select(AlertCase.opened_at, AlertCase.claimed_at, AlertCase.claimed_by).where(
            AlertCase.tenant_id == tenant_id, AlertCase.opened_at >= start, AlertCase.opened_at < end)
        if kinds:
            q = q.where(AlertCase.kind.in_(kinds))
        rows = s.execute(q).all()
        names = dict(s.execute(select(Operator.id, Operator.username).where(Operator.tenant_id == tenant_id)).all())

    def bucket() -> dict[str, Any]:
        return {"alarms": 0, "pending": 0, "ttc": [], **{f"within_{int(t)}s": 0 for t, _ in targets}}

    by_day: dict[date, dict[str, Any]] = defaultdict(bucket)
    by_op: dict[int | None, dict[str, Any]] = defaultdict(bucket)
    total = bucket()
    for opened, claimed, who in rows:
        ttc = (claimed - opened).total_seconds() if claimed else None
        if ttc is None and now is not None and (now - opened).total_seconds() < longest:
            for b in (by_day[opened.date()], total):
                b["pending"] += 1
            continue
        for b in (by_day[opened.date()], by_op[who if claimed else None], total):
            b["alarms"] += 1
            if ttc is not None:
                b["ttc"].append(ttc)
            for t, _ in targets:
                if ttc is not None and ttc <= t:
                    b[f"within_{int(t)}s"] += 1

    def finish(b: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"alarms": b["alarms"], "pending": b["pending"]}
        ok = True
        for t, pct in targets:
            n = b[f"within_{int(t)}s"]
            share = round(100.0 * n / b["alarms"], 2) if b["alarms"] else None
            met = share is None or share >= pct
            ok = ok and met
            out[f"within_{int(t)}s"] = {"count": n, "pct": share, "target_pct": pct, "met": met}
        ttc = sorted(b["ttc"])
        # The middle value, or the mean of the two middle ones (19.0 s and 27.2 s -> 23.1 s).
        out["median_time_to_claim_s"] = round(statistics.median(ttc), 3) if ttc else None
        out["max_time_to_claim_s"] = ttc[-1] if ttc else None
        out["met"] = ok
        return out

    return {
        "tenant_id": tenant_id, "from": start.isoformat() + "Z", "to": end.isoformat() + "Z",
        "targets": [{"within_s": t, "pct": p} for t, p in targets],
        "total": finish(total),
        "by_day": [{"day": d.isoformat(), **finish(b)} for d, b in sorted(by_day.items())],
        "by_operator": [{"operator_id": o, "username": names.get(o) if o else None, **finish(b)}
                        for o, b in sorted(by_op.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
    }
