"""Retention of location history: points older than the retention period are
deleted, a few thousand per transaction so that an alert's commit never waits
long behind it. Cases, alerts and the positions stored on them are kept for ever."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain.ports import Clock
from cloud.domain.uow import transaction
from cloud.store.models import LocationPoint

log = logging.getLogger("pers.retention")


class LocationRetention:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, keep_days: int, every_s: float = 3600.0,
                 chunk: int = 5000, max_chunks_per_run: int = 200) -> None:
        self.sm, self.clock = sm, clock
        self.keep_days, self.every_s, self.chunk = keep_days, every_s, chunk
        self.max_chunks_per_run = max_chunks_per_run
        self._last_run: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self.keep_days > 0 and (self._last_run is None
                                       or (now - self._last_run).total_seconds() >= self.every_s)

    def run(self, now: datetime | None = None) -> int:
        """Delete the points older than ``keep_days``; returns how many. A run stops
        after ``max_chunks_per_run`` chunks (a million points by default) and the next
        one carries on, so a first run on a years-old history does not hog the store."""
        now = now or self.clock.now()
        self._last_run = now
        cutoff = now - timedelta(days=self.keep_days)
        deleted = 0
        for _ in range(self.max_chunks_per_run):
            with transaction(self.sm) as tx:
                s = tx.session
                oldest = s.execute(select(LocationPoint.id, LocationPoint.received_at)
                                   .order_by(LocationPoint.id).limit(1)).first()
                if oldest is None or oldest.received_at >= cutoff:
                    break
                # Ids grow with received_at (the server's clock at insert), so the old points
                # have the lowest ids: bounding the id range keeps a chunk's cost the same
                # whatever the size of the table (no scan of it by received_at).
                done = s.execute(delete(LocationPoint).where(LocationPoint.id < oldest.id + self.chunk,
                                                             LocationPoint.received_at < cutoff))
                # Session.execute is typed to return Result, but a DELETE runs to a CursorResult (rowcount).
                n: int = done.rowcount  # type: ignore[attr-defined]
            deleted += n
        if deleted:
            metrics.LOCATIONS_PRUNED.inc(deleted)
            log.info("location history pruned", extra={"deleted": deleted, "older_than": cutoff.isoformat()})
        return deleted
