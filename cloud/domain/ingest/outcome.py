"""What the ingest says of each message, and the counters that follow from it."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cloud import metrics


@dataclass
class Outcome:
    accepted: bool
    kind: str | None = None
    device_id: str | None = None
    reason: str | None = None
    duplicate: bool = False
    case_id: int | None = None


def count(kind: str, outcome: Outcome) -> Outcome:
    """One stored message: a duplicate or a new one."""
    if outcome.duplicate:
        metrics.DUPLICATES.labels(kind).inc()
    else:
        metrics.INGESTED.labels(kind).inc()
    return outcome


def count_many(done: Iterable[tuple[str, Outcome]]) -> None:
    """The same counters for a batch, one increment per (kind, duplicate)."""
    counts: dict[tuple[str, bool], int] = {}
    for kind, out in done:
        if out.accepted:
            counts[kind, out.duplicate] = counts.get((kind, out.duplicate), 0) + 1
    for (kind, dup), n in counts.items():
        (metrics.DUPLICATES if dup else metrics.INGESTED).labels(kind).inc(n)
