"""Positions for the geofences: a watch reports its position only when asked
(an alarm, ``locate``, ``track``). While one of its wearer's alerting geofences
is in its schedule (or has none), the cloud keeps a ``track`` command in force
on the watch (protocol.md, ``track``), renewed before it lapses; outside the
schedule it asks nothing, which spares the battery.

Run from the ticker every ``every_s``, for the watches online: a ``track`` the
watch acknowledged stays in force until shortly before its ``duration_s``; one
still unacknowledged is given a minute before it is sent again (the watch may
have been reconnecting)."""
from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain import commands
from cloud.domain.geo import within_windows
from cloud.domain.ports import Clock, CommandSender
from cloud.domain.uow import transaction
from cloud.store.models import Command, Device, Geofence, Wearer

log = logging.getLogger("pers.geofence")


class FenceTracking:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, sender: CommandSender, *,
                 interval_s: int = 60, duration_s: int = 3600, every_s: float = 30.0) -> None:
        self.sm, self.clock, self.sender = sm, clock, sender
        self.interval_s, self.duration_s, self.every_s = interval_s, duration_s, every_s
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or (now - self._last).total_seconds() >= self.every_s

    def run(self, now: datetime) -> list[str]:
        """Send ``track`` to each watch that needs it now; returns their ids."""
        self._last = now
        sent: list[str] = []
        in_force = now - timedelta(seconds=max(0.0, self.duration_s - 2 * self.every_s))
        in_flight = now - timedelta(seconds=max(60.0, 2 * self.every_s))
        with transaction(self.sm) as tx:
            s = tx.session
            fences = s.execute(select(Geofence, Wearer.timezone).join(Wearer, Wearer.id == Geofence.wearer_id)
                               .where(Geofence.active.is_(True),
                                      or_(Geofence.alert_on_exit.is_(True), Geofence.alert_on_enter.is_(True))))
            wearers = {g.wearer_id for g, tz in fences if within_windows(g.schedule, tz, now)}
            if not wearers:
                return sent
            for device in s.scalars(select(Device).where(Device.wearer_id.in_(wearers), Device.online.is_(True))
                                    .order_by(Device.id)):
                recent = s.scalar(select(Command.cid).where(
                    Command.device_id == device.id, Command.type == "track",
                    or_(and_(Command.status == "acked", Command.created_at >= in_force),
                        and_(Command.status == "sent", Command.created_at >= in_flight))).limit(1))
                if recent is not None:
                    continue
                cmd = protocol.TrackCmd(cid=f"fence-{secrets.token_hex(6)}",
                                        ts=int(now.replace(tzinfo=UTC).timestamp()),
                                        interval_s=self.interval_s, duration_s=self.duration_s)
                commands.send(tx, self.sender, self.clock, device.id, cmd)
                sent.append(device.id)
        if sent:
            log.info("geofence tracking asked", extra={"devices": len(sent)})
        return sent
