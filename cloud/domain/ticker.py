"""The periodic work of the domain in one ``tick(now)``: escalation timers,
device presence, command expiry, welfare alarms, and (hourly) the location history's retention.
The app runs it on a background thread every ``tick_s``; tests call ``tick`` directly with a FakeClock (no sleeping)."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain import commands
from cloud.domain.escalation import EscalationPolicy, Escalator, TickReport
from cloud.domain.fence_tracking import FenceTracking
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.presence import PresenceMonitor, PresencePolicy, PresenceReport
from cloud.domain.reminders import ReminderSweep
from cloud.domain.retention import LocationRetention
from cloud.domain.vsim_stock import StockWatch
from cloud.domain.welfare import WelfareMonitor
from cloud.store.models import AlertCase

if TYPE_CHECKING:
    from cloud.domain.notify import Notifier
    from cloud.settings import Settings

log = logging.getLogger("pers.ticker")


@dataclass
class TickResult:
    cases: TickReport
    devices: PresenceReport
    expired: list[str]
    pruned: int = 0


class Ticker:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, settings: Settings,
                 notifier: Notifier | None = None, sender: CommandSender | None = None) -> None:
        self.sm, self.clock = sm, clock
        # Watches report positions only when asked: the geofences ask while their schedules run.
        self.fence_tracking = (FenceTracking(sm, clock, sender, interval_s=settings.geofence_track_s,
                                             every_s=settings.geofence_track_check_s)
                               if sender is not None else None)
        self.command_ttl_s = settings.command_ttl_s
        self.escalator = Escalator(sm, clock, events, EscalationPolicy.from_settings(settings), notifier)
        self.presence = PresenceMonitor(sm, clock, events, PresencePolicy.from_settings(settings))
        self.reminders = ReminderSweep(sm, clock, events, notifier, every_s=settings.reminder_check_s,
                                       grace_s=settings.reminder_grace_s,
                                       present_window_s=settings.operator_present_s)
        self.welfare = WelfareMonitor(sm, clock, events, sender=sender, notifier=notifier,
                                      default_heartbeat_s=settings.heartbeat_s,
                                      present_window_s=settings.operator_present_s, every_s=settings.welfare_check_s)
        self.vsim = StockWatch(sm, clock, events)
        self.retention = LocationRetention(sm, clock, settings.location_retention_days,
                                           every_s=settings.location_retention_every_s)

    def tick(self, now: datetime | None = None) -> TickResult:
        # ``now`` pins the time when given (tests); otherwise each part reads the clock
        # under its write lock, so the timeline's times follow the order of its events.
        with metrics.TICK_SECONDS.time():
            devices = self.presence.tick(now)  # first: an offline case opened now is escalated in this tick
            cases = self.escalator.tick(now)
            expired = commands.expire(self.sm, now or self.clock.now(), self.command_ttl_s,
                                      clock=None if now else self.clock)
            with self.sm() as s:
                counts = dict(s.execute(select(AlertCase.status, func.count()).where(AlertCase.status != "resolved")
                                        .group_by(AlertCase.status)).all())
            for status in ("new", "routed", "claimed", "in_call"):
                metrics.OPEN_CASES.labels(status).set(counts.get(status, 0))
            # Last, after the timers: a tick that prunes a backlog of history is a slow one.
            at = now or self.clock.now()
            pruned = self.retention.run(at) if self.retention.due(at) else 0
            if self.fence_tracking is not None and self.fence_tracking.due(at):
                self.fence_tracking.run(at)
            if self.reminders.due(at):  # missed doses: inferred, then told to family or centre
                self.reminders.run(at)
            if self.welfare.due(at):
                self.welfare.tick(now)
            if self.vsim.due(at):
                self.vsim.run(at)
        return TickResult(cases, devices, expired, pruned)


class BackgroundTicker:
    """Runs ``ticker.tick()`` every ``period_s`` until stopped. A failing tick is
    logged and the next one runs anyway: timers must not die with one bad row."""

    def __init__(self, ticker: Ticker, period_s: float = 1.0):
        self.ticker, self.period_s = ticker, period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.ticker.tick()
            except Exception:
                log.exception("tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
