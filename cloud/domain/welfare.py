"""Welfare alarms: the missed "I'm OK" check-in, inactivity, the watch not worn,
and the low battery told to the family.

The watch observes and reports (docs/protocol.md, "Welfare in the status"): the
seconds since it last felt the wearer move (``still_s``), whether its PPG sensor
saw skin (``worn``, ``worn_s``) and the wearer's answer to its daily "Are you
OK?" (``checkin``). The cloud judges, with the wearer's settings (``Wearer.welfare``:
check-in time and window, night hours, inactivity and not-worn limits), on its own
clock (``WelfareMonitor.tick``), so a watch that is dead or offline cannot hide
a missing answer:

- check-in: no answer by ``checkin_at`` + ``checkin_window_min`` (the wearer's
  time zone) opens a "checkin" case, whatever the watch's state;
- inactivity: ``inactivity_h`` daytime hours (night hours do not count) since
  the last movement the watch reported opens an "inactivity" case with the last
  position, and asks the watch for a fresh one. Only while the watch is heard
  (its last message within 1.5 heartbeats): a silent watch proves no stillness,
  and the presence monitor gives "Watch offline" instead;
- not worn: ``not_worn_min`` daytime minutes off the skin opens a "not_worn" case
  ("Watch not worn since 10:40"), on the same condition;
- low battery: the watch's own ``low_battery`` alert (once per discharge, on its
  flash) opens the case as before; the first contact is told at once, once per
  discharge here too (a latch on the device, cleared when a report shows the cell
  charged again), however often the watch says it.

Each alarm is raised once for the stillness, the removal or the check-in it is about."""
from __future__ import annotations

import functools
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain import commands
from cloud.domain.casefile import open_case_of, open_system_case, publish_case
from cloud.domain.geo import zone
from cloud.domain.ingest_ids import new_cid
from cloud.domain.notify import record_outcome
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.store.models import AlertCase, CaseEvent, Contact, Device, LocationPoint, Wearer

if TYPE_CHECKING:
    from cloud.domain.notify import Notifier

log = logging.getLogger("pers.welfare")

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ANSWER_EARLY_S = 12 * 3600  # an answer this long before the check-in's time is for it (a watch clock ahead)
HEARD_BEATS = 1.5           # a watch heard within this many heartbeats is alive: its stillness counts
CHARGED_ABOVE = 10          # the battery latch opens again this many points above the level it closed at


class WelfareSettings(BaseModel):
    """A wearer's welfare settings (the admin page, ``PUT /api/admin/wearers/{id}/welfare``)."""
    model_config = ConfigDict(extra="forbid")
    checkin_at: str | None = Field(default=None, pattern=HHMM)      # local time; None: no check-in
    checkin_window_min: int = Field(default=30, ge=1, le=720)
    night_from: str = Field(default="22:00", pattern=HHMM)
    night_to: str = Field(default="07:00", pattern=HHMM)
    inactivity_h: float | None = Field(default=None, ge=0.25, le=24)  # None: no inactivity alarm
    not_worn_min: int | None = Field(default=None, ge=10, le=1440)    # None: no not-worn alarm

    @model_validator(mode="after")
    def _night(self) -> WelfareSettings:
        if self.night_from == self.night_to:
            raise ValueError("night_from and night_to must differ (no night: 00:00 to 00:01)")
        return self


def _hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def _local(now: datetime, tz: str | None) -> datetime:
    return now.replace(tzinfo=UTC).astimezone(zone(tz))


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def is_night(at: datetime, tz: str | None, night_from: str, night_to: str) -> bool:
    local = _local(at, tz)
    minute, start, end = local.hour * 60 + local.minute, _hm(night_from), _hm(night_to)
    return start <= minute < end if start < end else (minute >= start or minute < end)


def daytime_seconds(since: datetime, now: datetime, tz: str | None, night_from: str, night_to: str) -> float:
    """Seconds from ``since`` to ``now`` (naive UTC) outside the night hours (local time):
    a wearer still from 21:00 to 09:00 with nights 22:00-07:00 has been still 3 daytime hours."""
    if now <= since:
        return 0.0
    total, t = 0.0, since
    while t < now:
        local = _local(t, tz)
        night = is_night(t, tz, night_from, night_to)
        # The next boundary: the next night_from or night_to in local time, or now.
        edges = []
        for hm in (night_from, night_to):
            edge = local.replace(hour=_hm(hm) // 60, minute=_hm(hm) % 60, second=0, microsecond=0)
            if edge <= local:
                edge += timedelta(days=1)
            edges.append(_utc(edge))
        step_end = min([now, *edges])
        if not night:
            total += (step_end - t).total_seconds()
        t = step_end
    return total


def due_checkin(at: str, window_min: int, tz: str | None, now: datetime) -> datetime:
    """The latest check-in (naive UTC) whose window has closed by ``now``."""
    closed = _local(now - timedelta(minutes=window_min), tz)
    due = closed.replace(hour=_hm(at) // 60, minute=_hm(at) % 60, second=0, microsecond=0)
    if due > closed:
        due -= timedelta(days=1)
    return _utc(due)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.rstrip("Z")) if text else None


def settings_of(wearer: Wearer | None) -> WelfareSettings | None:
    if wearer is None or not wearer.welfare:
        return None
    return WelfareSettings.model_validate({k: v for k, v in wearer.welfare.items() if k != "set_at"})


# --- what the watch reports (the ingest calls these in the message's transaction) ----------

def on_status(tx: Tx, device: Device, st: protocol.Status, now: datetime, events: EventSink) -> None:
    """Keep what the watch said of its wearer; an open welfare case hears the good news."""
    state = dict(device.welfare_state or {})
    said: list[tuple[str, str, dict[str, Any]]] = []  # (case kind, event, detail)
    if st.still_s is not None:
        moved = now - timedelta(seconds=st.still_s)
        prev = _parse(state.get("moved_at"))
        if prev is None or moved > prev + timedelta(seconds=60):
            state["moved_at"] = _iso(moved)
            if prev is not None and state.get("inactivity_for") == _iso(prev):
                said.append(("inactivity", "moving_again", {"at": _iso(moved)}))
    if st.worn is not None:
        if st.worn:
            if state.get("off_since") and state.get("not_worn_for") == state["off_since"]:
                said.append(("not_worn", "worn_again", {"at": _iso(now)}))
            state.pop("off_since", None)
        elif not state.get("off_since"):
            state["off_since"] = _iso(now - timedelta(seconds=st.worn_s or 0))
        state["worn"] = st.worn
    if st.checkin is not None and st.checkin.ok:
        state["checkin_ok_at"], state["checkin_ok_for"] = _iso(now), st.checkin.at
        said.append(("checkin", "checkin_answered", {"at": _iso(now), "checkin_at": st.checkin.at}))
    if st.batt and st.batt.pct is not None and "batt_low_at" in state \
            and st.batt.pct >= state["batt_low_at"] + CHARGED_ABOVE:
        state.pop("batt_low_at")  # charged: the next discharge is told again
    if state != (device.welfare_state or {}):
        device.welfare_state = state
    if said:
        case = open_case_of(tx.session, device.id)
        for kind, action, detail in said:
            if case is not None and _is_about(tx.session, case, kind):
                tx.session.add(CaseEvent(case_id=case.id, at=now, actor=f"device:{device.id}", action=action,
                                         detail=detail))
                publish_case(tx, events, case, now)


def _is_about(s: Session, case: AlertCase, kind: str) -> bool:
    if case.kind == kind:
        return True
    return s.scalar(select(CaseEvent.id).where(CaseEvent.case_id == case.id,
                                               CaseEvent.action == f"{kind}_joined").limit(1)) is not None


def on_low_battery(tx: Tx, device: Device, pct: int | None, case: AlertCase | None, now: datetime,
                   notifier: Notifier | None) -> None:
    """The watch's low-battery alert: the first contact is told, once per discharge."""
    state = dict(device.welfare_state or {})
    if pct is None or case is None or "batt_low_at" in state:
        return
    state["batt_low_at"] = pct
    device.welfare_state = state
    tx.session.add(CaseEvent(case_id=case.id, at=now, actor="system", action="battery_low",
                             detail={"pct": pct}))
    wearer = tx.session.get(Wearer, device.wearer_id) if device.wearer_id else None
    if notifier is not None and wearer is not None:
        notify_first_contact(tx, notifier, case, wearer,
                             f"{wearer.name}'s alarm watch has {pct} % battery left: please see that it is "
                             f"charged today, so that it can still call for help.")


def notify_first_contact(tx: Tx, notifier: Notifier, case: AlertCase, wearer: Wearer, message: str) -> None:
    """The first contact of the cascade hears of it after the commit, on a thread of its
    own: a slow web hook never holds up the ingest of the next message."""
    s = tx.session
    contact = s.scalar(select(Contact).where(Contact.wearer_id == wearer.id)
                       .order_by(Contact.rank, Contact.id).limit(1))
    if contact is None:
        return
    if not notifier.routes_for(s, case, contact):
        record_outcome(s, case, contact, {}, "system", case.opened_at)
        return
    case_id, contact_id = case.id, contact.id

    def send() -> None:
        try:
            notifier.notify_contact(None, case_id, contact_id, message)
        except Exception:
            log.exception("welfare notification failed", extra={"case_id": case_id, "contact_id": contact_id})

    tx.after_commit(lambda: threading.Thread(target=send, name="welfare-notify", daemon=True).start())


# --- the cloud's own clock -------------------------------------------------------------------------

class WelfareMonitor:
    """Raises the welfare alarms that are due (the ticker calls ``tick`` every ``every_s``)."""

    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, *,
                 sender: CommandSender | None = None, notifier: Notifier | None = None,
                 default_heartbeat_s: int = 3600, present_window_s: int = 120, every_s: float = 10.0) -> None:
        self.sm, self.clock, self.events, self.sender, self.notifier = sm, clock, events, sender, notifier
        self.default_heartbeat_s, self.present_window_s, self.every_s = default_heartbeat_s, present_window_s, every_s
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or (now - self._last).total_seconds() >= self.every_s

    def tick(self, now: datetime | None = None) -> list[int]:
        """The cases opened (ids). One transaction per device: one bad row holds up no other."""
        now = now or self.clock.now()
        self._last = now
        with self.sm() as s:
            pairs = list(s.execute(select(Device.id, Wearer.id).join(Wearer, Device.wearer_id == Wearer.id)
                                   .where(Wearer.welfare.is_not(None))).all())
        opened: list[int] = []
        for device_id, _ in pairs:
            try:
                opened += self._device(device_id, now)
            except Exception:
                log.exception("welfare check failed", extra={"device_id": device_id})
        return opened

    def _device(self, device_id: str, now: datetime) -> list[int]:
        with self.sm() as s:
            plan = self._plan(s, s.get_one(Device, device_id), now)
        if not plan:
            return []
        opened = []
        with transaction(self.sm) as tx:
            s = tx.session
            device = s.get_one(Device, device_id)
            if self._plan(s, device, now) != plan:
                return []  # a message came meanwhile
            for kind, key, detail in plan:
                opened.append(self._raise(tx, device, kind, key, detail, now))
        return opened

    def _plan(self, s: Session, device: Device, now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
        wearer = s.get(Wearer, device.wearer_id) if device.wearer_id else None
        cfg = settings_of(wearer)
        if cfg is None or wearer is None:
            return []
        state, tz = device.welfare_state or {}, wearer.timezone
        plan: list[tuple[str, str, dict[str, Any]]] = []
        set_at = _parse((wearer.welfare or {}).get("set_at"))
        if cfg.checkin_at:
            due = due_checkin(cfg.checkin_at, cfg.checkin_window_min, tz, now)
            # An answer counts for the check-in of its own time: one to 10:00 says nothing of 16:00.
            answered = _parse(state.get("checkin_ok_at")) if state.get("checkin_ok_for") == cfg.checkin_at else None
            if ((set_at is None or due >= set_at) and state.get("checkin_for") != _iso(due)
                    and not (answered and answered >= due - timedelta(seconds=ANSWER_EARLY_S))):
                plan.append(("checkin", _iso(due) or "", {
                    "checkin_at": cfg.checkin_at, "window_min": cfg.checkin_window_min,
                    "watch": device.presence}))
        heard = (device.last_seen is not None and device.presence == "online" and
                 (now - device.last_seen).total_seconds() <= (device.heartbeat_s or self.default_heartbeat_s)
                 * HEARD_BEATS)
        if not heard:
            return plan  # a silent watch proves nothing of its wearer: presence says "offline"
        moved = _parse(state.get("moved_at"))
        if cfg.inactivity_h and moved is not None and state.get("inactivity_for") != _iso(moved):
            still = daytime_seconds(moved, now, tz, cfg.night_from, cfg.night_to)
            if still >= cfg.inactivity_h * 3600:
                plan.append(("inactivity", _iso(moved) or "", {
                    "since": _iso(moved), "since_local": _local(moved, tz).strftime("%H:%M"),
                    "daytime_h": round(still / 3600, 2), "limit_h": cfg.inactivity_h}))
        off = _parse(state.get("off_since"))
        if cfg.not_worn_min and off is not None and state.get("not_worn_for") != _iso(off):
            gone = daytime_seconds(off, now, tz, cfg.night_from, cfg.night_to)
            if gone >= cfg.not_worn_min * 60:
                plan.append(("not_worn", _iso(off) or "", {
                    "since": _iso(off), "since_local": _local(off, tz).strftime("%H:%M"),
                    "limit_min": cfg.not_worn_min}))
        return plan

    def _raise(self, tx: Tx, device: Device, kind: str, key: str, detail: dict[str, Any], now: datetime) -> int:
        s = tx.session
        state = dict(device.welfare_state or {})
        state[f"{kind}_for"] = key
        device.welfare_state = state
        last = s.scalar(select(LocationPoint).where(LocationPoint.device_id == device.id)
                        .order_by(LocationPoint.id.desc()).limit(1)) if kind == "inactivity" else None
        if last is not None:
            detail = {**detail, "last_position": {"lat": last.lat, "lon": last.lon, "acc": last.acc,
                                                  "at": _iso(last.received_at)}}
        stamp = int((now - datetime(1970, 1, 1)).total_seconds())
        case, opened = open_system_case(s, device, kind, f"sys:{kind}:{stamp}", now, detail=detail,
                                        lat=last.lat if last else None, lon=last.lon if last else None,
                                        present_window_s=self.present_window_s)
        if opened and last is not None:
            case.acc, case.loc_src, case.loc_ts = last.acc, last.src, last.device_ts
        log.warning("welfare alarm", extra={"device_id": device.id, "kind": kind, "case_id": case.id})
        if kind == "inactivity" and self.sender is not None:
            # The last position may be hours old: the watch is asked where it is now.
            commands.send(tx, self.sender, self.clock, device.id,
                          protocol.LocateCmd(cid=new_cid(), ts=self.clock.unix()), case_id=case.id)
        publish_case(tx, self.events, case, now)
        tenant_id = device.tenant_id
        tx.after_commit(functools.partial(self.events.publish, tenant_id,
                                          {"type": "welfare", "kind": kind, "device_id": device.id,
                                           "case_id": case.id}))
        return case.id
