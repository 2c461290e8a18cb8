"""Medication reminders, from the console to the watch and back.

- The schedule: an admin sets a wearer's reminders (times, days, text, whether a
  confirmation is needed, how long the wearer has); they go to each of the
  wearer's watches in its config (``configs.push_config``), which keeps the plan
  the cloud judges doses by (``reminder_plan.py``).
- The watch's word: a status with a ``reminder`` part (docs/protocol.md) says a
  dose was confirmed (the press) or missed (its window closed). ``record_report``
  stores it, once per dose: a redelivered status changes nothing, and a
  confirmation that comes after the cloud had called the dose missed (the watch
  was offline, its outbox drains later) turns that same dose confirmed, marked
  ``late_report``: a dose is never counted twice.
- The cloud's inference: the watch may be off or out of coverage, so the cloud does
  not wait for its word. ``ReminderSweep`` (run by the ticker) calls a dose missed
  when nothing came by its window's end plus a grace (the report in flight).
- Who hears of a missed dose, as the tenant chose (``Tenant.missed_dose_to``):
  ``family``, the first contact, through the notifier's channels; ``centre``, a
  low-priority ``missed_dose`` case in the operators' queue. A dose nobody could
  be told of by the family channels goes to the centre: a miss is never silent.
- Adherence (``adherence``): doses due, confirmed and missed over the last days,
  counted from the stored doses only."""
from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain.casefile import open_system_case, publish_case
from cloud.domain.errors import Invalid, NotFound
from cloud.domain.geo import zone
from cloud.domain.ports import Clock, EventSink
from cloud.domain.reminder_plan import DEFAULT_WINDOW_MIN, doses, local_day, reminder_id
from cloud.domain.uow import transaction
from cloud.store.models import (
    AuditEntry,
    CaseEvent,
    Contact,
    Device,
    Operator,
    ReminderDose,
    ReminderPlan,
    Tenant,
    Wearer,
)

log = logging.getLogger("pers.reminders")

SAME_DOSE = timedelta(hours=12)  # a report's due time this close to a dose's is that dose (a zone change)
LOOKBACK_DAYS = 2                # the cloud judges doses of the last days only (after an outage: these)
MAX_REMINDERS = 10               # the config stays well under the 4 KiB of a message


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _tz_of(s: Session, wearer_id: int | None) -> ZoneInfo:
    w = s.get(Wearer, wearer_id) if wearer_id is not None else None
    return zone(w.timezone if w else None)


def _text_of(s: Session, device_id: str, rid: str) -> str | None:
    plan = s.get(ReminderPlan, device_id)
    for r in plan.reminders if plan else []:
        if reminder_id(r) == rid:
            text = r.get("text")
            return str(text) if text is not None else None
    return None


# --- the watch's word -------------------------------------------------------------------------
def record_report(s: Session, device: Device, st: protocol.Status, now: datetime) -> ReminderDose | None:
    """The dose a status's ``reminder`` part reports, recorded once; the dose, or None
    when nothing changed (a redelivery, or a word on a dose already settled)."""
    rep = st.reminder
    assert rep is not None  # the caller checks
    due = _utc(rep.due)
    dose = s.scalar(select(ReminderDose).where(
        ReminderDose.device_id == device.id, ReminderDose.reminder_id == rep.id,
        ReminderDose.due_at > due - SAME_DOSE, ReminderDose.due_at < due + SAME_DOSE)
        .order_by(ReminderDose.id.desc()).limit(1))
    day = local_day(due, _tz_of(s, device.wearer_id))
    if dose is None:
        dose = s.scalar(select(ReminderDose).where(ReminderDose.device_id == device.id,
                                                   ReminderDose.reminder_id == rep.id, ReminderDose.day == day))
    pressed = _utc(rep.at) if rep.state == "confirmed" and rep.at is not None else None
    if dose is None:
        dose = ReminderDose(tenant_id=device.tenant_id, device_id=device.id, wearer_id=device.wearer_id,
                            reminder_id=rep.id, day=day, due_at=due, status=rep.state, source="watch",
                            text=_text_of(s, device.id, rep.id), confirmed_at=pressed, mid=st.mid,
                            late_report=False, recorded_at=now)
        try:
            with s.begin_nested():  # the sweep may have judged it this very moment
                s.add(dose)
        except IntegrityError:
            return None  # the sweep's row stands; the watch re-sends nothing, but a late word is rare
        return dose
    if dose.mid == st.mid or dose.status == "confirmed" or rep.state == "missed":
        return None  # a redelivery, or the first word stands
    # Confirmed on the watch after it (or the cloud, for want of word) said missed:
    # the same dose, now confirmed; whoever was told of the miss stays told.
    dose.status, dose.confirmed_at, dose.mid, dose.late_report = "confirmed", pressed, st.mid, True
    if dose.case_id is not None:
        s.add(CaseEvent(case_id=dose.case_id, at=now, actor=f"device:{device.id}", action="dose_confirmed_late",
                        detail={"reminder": dose.reminder_id, "due": dose.due_at.isoformat() + "Z"}))
    return dose


# --- the cloud's inference and who hears of a miss -------------------------------------------
class ReminderSweep:
    """Run by the ticker every ``every_s``: judge the plans whose next window has
    closed, then tell family or centre of every missed dose not told yet."""

    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, notifier: Any,
                 *, every_s: float = 30.0, grace_s: int = 120, present_window_s: int = 120) -> None:
        self.sm, self.clock, self.events, self.notifier = sm, clock, events, notifier
        self.every_s, self.grace = every_s, timedelta(seconds=grace_s)
        self.present_window_s = present_window_s
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or (now - self._last).total_seconds() >= self.every_s

    def run(self, now: datetime) -> dict[str, int]:
        self._last = now
        judged = missed = told = 0
        with self.sm() as s:
            plans = list(s.scalars(select(ReminderPlan.device_id).where(ReminderPlan.next_check_at <= now)))
        for device_id in plans:
            try:
                with transaction(self.sm) as tx:
                    missed += self._judge(tx.session, device_id, now)
                judged += 1
            except IntegrityError:  # a watch's report took the dose meanwhile: judged again next time
                log.info("dose reported while judged; next sweep", extra={"device_id": device_id})
            except Exception:  # one bad plan must not stop the others
                log.exception("plan not judged; next sweep", extra={"device_id": device_id})
        with self.sm() as s:
            pending = list(s.scalars(select(ReminderDose.id).where(ReminderDose.status == "missed",
                                                                   ReminderDose.notified_at.is_(None))))
        for dose_id in pending:
            try:
                with transaction(self.sm) as tx:
                    told += self._tell(tx, dose_id, now)
            except Exception:
                log.exception("missed dose not told; next sweep", extra={"dose_id": dose_id})
        return {"plans": judged, "missed": missed, "told": told}

    def _judge(self, s: Session, device_id: str, now: datetime) -> int:
        plan = s.get(ReminderPlan, device_id)
        device = s.get(Device, device_id)
        if plan is None or device is None:
            return 0
        tz = _tz_of(s, device.wearer_id)
        today = local_day(now, tz)
        first = max(local_day(plan.since, tz), today - timedelta(days=LOOKBACK_DAYS))
        found, upcoming = 0, None
        for d in doses(plan.reminders, tz, first - timedelta(days=1), today + timedelta(days=1)):
            if d.due_at < plan.since:
                continue
            closes = d.deadline + self.grace
            if closes > now:
                upcoming = closes if upcoming is None else min(upcoming, closes)
                continue
            if d.due_at < now - timedelta(days=LOOKBACK_DAYS + 1):
                continue
            known = s.scalar(select(func.count()).select_from(ReminderDose).where(
                ReminderDose.device_id == device_id, ReminderDose.reminder_id == d.reminder_id,
                ((ReminderDose.day == d.day)
                 | ((ReminderDose.due_at > d.due_at - SAME_DOSE) & (ReminderDose.due_at < d.due_at + SAME_DOSE)))))
            if known:
                continue
            s.add(ReminderDose(tenant_id=device.tenant_id, device_id=device_id, wearer_id=device.wearer_id,
                               reminder_id=d.reminder_id, day=d.day, due_at=d.due_at, status="missed",
                               source="cloud", text=d.text or None, late_report=False, recorded_at=now))
            found += 1
        plan.next_check_at = upcoming or now + timedelta(days=1)
        return found

    def _tell(self, tx: Any, dose_id: int, now: datetime) -> int:
        s: Session = tx.session
        dose = s.get(ReminderDose, dose_id)
        if dose is None or dose.status != "missed" or dose.notified_at is not None:
            return 0
        tenant = s.get_one(Tenant, dose.tenant_id)
        device = s.get_one(Device, dose.device_id)
        wearer = s.get(Wearer, dose.wearer_id) if dose.wearer_id is not None else None
        tz = _tz_of(s, dose.wearer_id)
        due_local = dose.due_at.replace(tzinfo=UTC).astimezone(tz)
        who = wearer.name if wearer else device.id
        what = f'"{dose.text}"' if dose.text else f"reminder {dose.reminder_id}"
        message = f"{who} did not confirm {what} due at {due_local:%H:%M} on {due_local:%a %d %b}."
        detail = {"dose_id": dose.id, "reminder": dose.reminder_id, "text": dose.text,
                  "due": dose.due_at.isoformat() + "Z", "source": dose.source}
        if tenant.missed_dose_to == "family":
            contact = s.scalar(select(Contact).where(Contact.wearer_id == dose.wearer_id)
                               .order_by(Contact.rank, Contact.id).limit(1)) if dose.wearer_id else None
            if contact is not None and self.notifier is not None:
                results = self.notifier.deliver(
                    s, tenant, contact, subject=f"OpenPERS: missed dose - {who}", message=message,
                    data={"kind": "missed_dose", "wearer": wearer.name if wearer else None,
                          "contact": {"id": contact.id, "name": contact.name, "phone": contact.phone},
                          "dose": detail}, case_id=None, now=now)
                if any(r["ok"] for r in results.values()):
                    dose.notified_at, dose.notified_to = now, "family"
                    s.add(AuditEntry(at=now, actor="system", action="reminder.missed_dose_notified",
                                     tenant_id=dose.tenant_id, target=f"wearer:{dose.wearer_id}",
                                     detail={**detail, "contact": contact.name,
                                             "results": {k: v["ok"] for k, v in results.items()}}))
                    return 1
            log.warning("missed dose: no family contact reached, the centre is told",
                        extra={"dose_id": dose.id, "device_id": device.id})
        case, _ = open_system_case(s, device, "missed_dose", f"dose:{dose.id}", now, detail=detail,
                                   present_window_s=self.present_window_s)
        if case.kind != "missed_dose":  # joined a more urgent open case: say so on its timeline
            s.add(CaseEvent(case_id=case.id, at=now, actor="system", action="missed_dose", detail=detail))
        dose.notified_at, dose.notified_to, dose.case_id = now, "centre", case.id
        publish_case(tx, self.events, case, now)
        return 1


# --- the console: the schedule and adherence ---------------------------------------------------
def clean_schedule(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reminders as the config carries them: ids given to those without one,
    every field checked by the wire contract's model."""
    if len(items) > MAX_REMINDERS:
        raise Invalid(f"at most {MAX_REMINDERS} reminders")
    out, taken = [], {str(i.get("id")) for i in items if i.get("id")}
    n = 0
    for item in items:
        r = dict(item)
        if not r.get("id"):
            n += 1
            while f"r{n}" in taken:
                n += 1
            r["id"] = f"r{n}"
            taken.add(r["id"])
        if r.get("confirm") and not r.get("window_min"):
            r["window_min"] = DEFAULT_WINDOW_MIN
        if r.get("days") is not None:
            r["days"] = sorted(set(r["days"]))
        try:
            out.append(protocol.Reminder.model_validate(r).model_dump(exclude_none=True))
        except ValueError as exc:
            raise Invalid(f"reminder {r.get('id')}: {exc}") from None
    if len({r["id"] for r in out}) != len(out):
        raise Invalid("reminder ids must differ")
    return out


class ReminderAdmin:
    """The admin page's part: a wearer's schedule (to every watch of the wearer) and adherence."""

    def __init__(self, admin: Any) -> None:
        self.admin, self.sm, self.clock = admin, admin.sm, admin.clock

    def _wearer(self, s: Session, op: Operator, wearer_id: int) -> Wearer:
        w = s.get(Wearer, wearer_id)
        if w is None or w.tenant_id != op.tenant_id:
            raise NotFound("no such wearer")
        return w

    def set_schedule(self, op: Operator, wearer_id: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        reminders = clean_schedule(items)
        with self.sm() as s:
            self._wearer(s, op, wearer_id)
            devices = list(s.scalars(select(Device.id).where(Device.wearer_id == wearer_id,
                                                             Device.tenant_id == op.tenant_id)
                                     .order_by(Device.id)))
        if not devices:
            raise Invalid("the wearer has no watch: assign one first")
        sent = [{"device_id": d, "version": self.admin.push_config(op, d, {"reminders": reminders})["version"]}
                for d in devices]
        return {"reminders": reminders, "devices": sent}

    def schedule(self, op: Operator, wearer_id: int) -> dict[str, Any]:
        from cloud.domain.configs import latest_config  # configs imports the plan, not this module
        with self.sm() as s:
            w = self._wearer(s, op, wearer_id)
            device = s.scalar(select(Device.id).where(Device.wearer_id == wearer_id).order_by(Device.id).limit(1))
            cfg = latest_config(s, device) if device else None
            recent = s.scalars(select(ReminderDose).where(ReminderDose.wearer_id == wearer_id)
                               .order_by(ReminderDose.due_at.desc()).limit(20))
            return {"wearer_id": wearer_id, "timezone": w.timezone, "device_id": device,
                    "reminders": (cfg.body.get("reminders") or []) if cfg else [],
                    "adherence": {"7": adherence(s, wearer_id, 7, self.clock.now(), zone(w.timezone)),
                                  "30": adherence(s, wearer_id, 30, self.clock.now(), zone(w.timezone))},
                    "doses": [dose_view(d) for d in recent]}


def adherence(s: Session, wearer_id: int, days: int, now: datetime, tz: Any) -> dict[str, int]:
    """Doses due (judged: confirmed or missed), confirmed and missed over the last
    ``days`` local days, today included, from the stored doses only."""
    since: date = local_day(now, tz) - timedelta(days=days - 1)
    counts = dict(s.execute(select(ReminderDose.status, func.count()).where(
        ReminderDose.wearer_id == wearer_id, ReminderDose.day >= since).group_by(ReminderDose.status)).all())
    confirmed, missed = counts.get("confirmed", 0), counts.get("missed", 0)
    return {"days": days, "due": confirmed + missed, "confirmed": confirmed, "missed": missed}


def dose_view(d: ReminderDose) -> dict[str, Any]:
    return {"id": d.id, "reminder_id": d.reminder_id, "day": d.day.isoformat(), "text": d.text,
            "due_at": d.due_at.isoformat() + "Z", "status": d.status, "source": d.source,
            "confirmed_at": d.confirmed_at.isoformat() + "Z" if d.confirmed_at else None,
            "late_report": d.late_report, "notified_to": d.notified_to, "case_id": d.case_id}
