"""Device presence with hysteresis, so a watch at the edge of coverage does not flap.

  online --(silent for heartbeat_s x tolerance, or its last will)--> suspect
  suspect --(no message at all for offline_grace_s)--> offline
  any state --(any message from the watch)--> online

Only "offline" is reported to people: with ``offline_opens_case`` it opens a
low-priority case of kind "offline" (joined to an open case if there is one),
so someone checks on a wearer whose watch went silent. Coming back online is
written to that case's timeline; the operator closes it. A device never seen
("unknown") is not watched until its first message."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain.casefile import open_case_of, open_system_case, publish_case
from cloud.domain.ports import Clock, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.store.models import AuditEntry, CaseEvent, Device

if TYPE_CHECKING:
    from cloud.settings import Settings

log = logging.getLogger("pers.presence")


@dataclass
class PresencePolicy:
    heartbeat_s: int = 3600
    tolerance: float = 2.5
    grace_s: int = 300
    opens_case: bool = True
    present_window_s: int = 120

    @classmethod
    def from_settings(cls, st: Settings) -> PresencePolicy:
        return cls(st.heartbeat_s, st.heartbeat_tolerance, st.offline_grace_s, st.offline_opens_case,
                   st.operator_present_s)


@dataclass
class PresenceReport:
    suspect: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)


def seen(tx: Tx, device: Device, now: datetime, events: EventSink | None = None) -> None:
    """Any message from the device: it is online now."""
    prev = device.presence
    device.last_seen, device.online, device.presence, device.suspect_since = now, True, "online", None
    if prev == "offline":
        metrics.DEVICE_PRESENCE.labels("online").inc()
        case = open_case_of(tx.session, device.id)
        if case is not None and case.kind == "offline":
            tx.session.add(CaseEvent(case_id=case.id, at=now, actor=f"device:{device.id}", action="back_online",
                                     detail={}))
            if events is not None:
                publish_case(tx, events, case, now)
        log.info("device back online", extra={"device_id": device.id})


def last_will(device: Device, now: datetime) -> None:
    """The broker published the watch's last will: the link dropped. Suspect, not offline yet."""
    device.online = False
    if device.presence in ("online", "unknown"):
        device.presence, device.suspect_since = "suspect", now
        metrics.DEVICE_PRESENCE.labels("suspect").inc()


class PresenceMonitor:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, policy: PresencePolicy) -> None:
        self.sm, self.clock, self.events, self.policy = sm, clock, events, policy

    def tick(self, now: datetime | None = None) -> PresenceReport:
        fixed, now = now, now or self.clock.now()
        p, report = self.policy, PresenceReport()
        with transaction(self.sm) as tx:
            s = tx.session
            # Silent devices become suspect. Heartbeats differ per device (their config),
            # so query once per distinct heartbeat: there are a handful, not one per device.
            beats = set(s.scalars(select(Device.heartbeat_s).where(Device.presence == "online").distinct()))
            for hb in beats:
                limit = now - timedelta(seconds=(hb or p.heartbeat_s) * p.tolerance)
                q = select(Device).where(Device.presence == "online", Device.last_seen < limit,
                                         Device.heartbeat_s.is_(None) if hb is None else Device.heartbeat_s == hb)
                for d in s.scalars(q):
                    d.presence, d.suspect_since = "suspect", now
                    metrics.DEVICE_PRESENCE.labels("suspect").inc()
                    report.suspect.append(d.id)
        with self.sm() as s:
            due = list(s.scalars(select(Device.id).where(Device.presence == "suspect",
                                                         Device.suspect_since <= now - timedelta(seconds=p.grace_s))))
        for device_id in due:
            self._offline(device_id, fixed, report)
        return report

    def _offline(self, device_id: str, fixed: datetime | None, report: PresenceReport) -> None:
        with transaction(self.sm) as tx:
            s = tx.session
            d = s.get(Device, device_id)
            if d is None or d.presence != "suspect":
                return  # a message arrived meanwhile
            d.presence, d.online = "offline", False
            s.flush()  # the write lock is ours: the case events get a time read under it
            now = fixed or self.clock.now()
            metrics.DEVICE_PRESENCE.labels("offline").inc()
            report.offline.append(d.id)
            silent = (now - d.last_seen).total_seconds() if d.last_seen else None
            s.add(AuditEntry(at=now, actor="system", action="device.offline", tenant_id=d.tenant_id,
                             target=f"device:{d.id}", detail={"silent_s": silent}))
            log.warning("device offline", extra={"device_id": d.id, "silent_s": silent})
            if self.policy.opens_case and d.wearer_id is not None:
                stamp = int((now - datetime(1970, 1, 1)).total_seconds())
                case, _ = open_system_case(s, d, "offline", f"sys:offline:{stamp}", now,
                                           detail={"silent_s": silent, "last_seen": d.last_seen.isoformat() + "Z"
                                                   if d.last_seen else None},
                                           present_window_s=self.policy.present_window_s)
                report.cases.append(case.id)
                publish_case(tx, self.events, case, now)
            tenant_id, view = d.tenant_id, {"id": d.id, "presence": "offline"}
            tx.after_commit(lambda: self.events.publish(tenant_id, {"type": "device", "device": view}))
