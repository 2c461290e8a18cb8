"""Per-device limits on the up messages that are not alarms.

A token bucket per (device, kind) for ``loc``, ``status``, ``presence`` and ``ack``:
``per_min`` tokens a minute, at most ``burst`` saved up. A message over the limit is
dropped: not stored, counted (``pers_ingest_rate_limited_total{kind}``), and
acknowledged all the same, so the watch does not re-send it for ever. A last will
(``presence`` offline) is never dropped (``Ingestor._over_limit``). A watch that
reports its position every second then costs the database one row in five at the
default (tracking reports every 5 s at the fastest), and other watches nothing.

Alerts are never limited here: a new alarm is always stored, its case opened and
acked; a stuck button's presses are coalesced into its case (alarm.PressBudget).

In memory, per process: with several workers sharing the ingest, each sees a share
of a watch's messages and the limit is that many times higher. A bucket that has
filled up again is forgotten, so memory follows the devices that are sending."""
from __future__ import annotations

import logging
import threading

from cloud import metrics

log = logging.getLogger("pers.ingest")

LIMITED_KINDS = ("loc", "status", "presence", "ack")


class DeviceLimits:
    def __init__(self, per_min: dict[str, float], burst: int, *, log_every_s: float = 60.0) -> None:
        # A kind with no rate, or a rate of 0, has no limit.
        self.rate = {kind: r / 60.0 for kind, r in per_min.items() if kind in LIMITED_KINDS and r > 0}
        self.burst = float(burst)
        self.log_every_s = log_every_s
        # The counters' children, looked up once: labels() costs more than the bucket itself.
        self._dropped = {kind: metrics.RATE_LIMITED_MESSAGES.labels(kind) for kind in self.rate}
        self._buckets: dict[tuple[str, str], list[float]] = {}  # -> [tokens, at, last logged]
        self._lock = threading.Lock()
        self._sweep_at = 4096

    def allow(self, device_id: str, kind: str, now: float) -> bool:
        """May this message of ``device_id`` (at ``now``, seconds) be stored? False
        counts it and, at most once a minute per device and kind, logs it."""
        rate = self.rate.get(kind)
        if rate is None:
            return True
        key = (device_id, kind)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._sweep_at:
                    self._sweep(now)
                bucket = self._buckets[key] = [self.burst, now, float("-inf")]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            due = now - bucket[2] >= self.log_every_s
            if due:
                bucket[2] = now
        self._dropped[kind].inc()
        if due:
            log.warning("device over its rate limit: excess dropped (acknowledged, not stored)",
                        extra={"device_id": device_id, "kind": kind, "per_min": rate * 60, "burst": self.burst})
        return False

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full again (under the lock); if most are not,
        let the table grow before the next sweep."""
        full = [key for key, (tokens, at, _) in self._buckets.items()
                if tokens + (now - at) * self.rate[key[1]] >= self.burst]
        for key in full:
            del self._buckets[key]
        self._sweep_at = max(4096, 2 * len(self._buckets))
