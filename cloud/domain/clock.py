"""Time is injected so that timers (late flags, sessions, escalation) are testable."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        """UTC, naive (the database stores naive UTC)."""
        return datetime.now(UTC).replace(tzinfo=None)

    def unix(self) -> int:
        return int(datetime.now(UTC).timestamp())


class FakeClock:
    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 11, 22, 8, 0, 0)

    def now(self) -> datetime:
        return self._now

    def unix(self) -> int:
        return int(self._now.replace(tzinfo=UTC).timestamp())

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
