"""When a medication reminder's doses are due, in the wearer's local time, and the
plan the cloud judges them by (``ReminderPlan``), kept beside the device's config.

A reminder is ``{"at": "HH:MM", "text", "id", "days", "confirm", "window_min"}``
(docs/protocol.md, Config). Only those with ``confirm`` make doses: a dose is due
at ``at`` on each of ``days`` (0 Monday .. 6 Sunday; absent: every day) in the
wearer's time zone, and must be confirmed within ``window_min`` (30 by default).
A local time that a daylight-saving change skips or repeats is read as Python's
``fold=0`` does (PEP 495): a skipped 02:30 is 03:30 of the new offset (the hour
that was lost), a repeated 02:30 is its first occurrence; the watch fires at the
first local minute at or after ``at`` and once per local day, so both agree."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cloud.store.models import Device, ReminderPlan

DEFAULT_WINDOW_MIN = 30


@dataclass(frozen=True)
class Dose:
    reminder_id: str
    day: date           # local
    due_at: datetime    # naive UTC
    deadline: datetime  # naive UTC: due + the window
    text: str


def reminder_id(r: dict[str, Any]) -> str:
    """A reminder's id; the first form had none, and its time names it (the watch does the same)."""
    return str(r.get("id") or r["at"])


def due_utc(day: date, at: str, tz: ZoneInfo) -> datetime:
    hours, minutes = (int(x) for x in at.split(":"))
    local = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=tz)  # fold=0
    return local.astimezone(UTC).replace(tzinfo=None)


def doses(reminders: list[dict[str, Any]], tz: ZoneInfo, first: date, last: date) -> Iterator[Dose]:
    """The doses of the reminders that ask for a confirmation, local days first..last."""
    day = first
    while day <= last:
        for r in reminders:
            if not r.get("confirm"):
                continue
            days = r.get("days")
            if days is not None and day.weekday() not in days:
                continue
            due = due_utc(day, r["at"], tz)
            window = timedelta(minutes=r.get("window_min") or DEFAULT_WINDOW_MIN)
            yield Dose(reminder_id(r), day, due, due + window, r.get("text") or "")
        day += timedelta(days=1)


def local_day(at_utc: datetime, tz: ZoneInfo) -> date:
    return at_utc.replace(tzinfo=UTC).astimezone(tz).date()


def plan_from_config(s: Session, device: Device, body: dict[str, Any], now: datetime) -> None:
    """Keep the device's plan in step with the config just stored (configs.push_config):
    only reminders that ask for a confirmation make doses; none, no plan. Doses due
    before a changed plan was set are not judged (nobody was asked for them)."""
    wanted = [r for r in body.get("reminders") or [] if r.get("confirm")]
    plan = s.get(ReminderPlan, device.id)
    if not wanted:
        if plan is not None:
            s.delete(plan)
        return
    if plan is None:
        s.add(ReminderPlan(device_id=device.id, tenant_id=device.tenant_id, reminders=wanted, since=now,
                           next_check_at=now))
    elif plan.reminders != wanted:
        plan.reminders, plan.since, plan.next_check_at = wanted, now, now
