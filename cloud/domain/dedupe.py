"""When is an alert a retransmission, and when a new alarm? (And a location
report a redelivery: the same (device, mid), ``location_stored``.)

The watch re-sends an alert, byte for byte, until the cloud acks it, so a
retransmission is the same (device, mid) with the same content, received within
the retry window. The same mid with other content is a new alarm: a watch that
was wiped, reflashed or factory-reset counts its ids from the start again, and
the cloud must never tell it "Help is coming" for an alarm it did not open a case
for. Identical content after the window is also a new alarm: de-duplication must
not outlive what the watch itself can remember.

The content is the validated message (``model_dump``, so a field the cloud does
not read, or dropped as unusable, does not count), as canonical JSON, hashed."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.store.models import Alert, LocationPoint


def digest_of(doc: dict[str, Any]) -> str:
    """The content digest of a stored or received message (migration 0004 uses the same)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _rekey(digest: str, n: int) -> str:
    """The key a repeat of ``digest`` is stored under once the earlier copies are out
    of the window: unique per (device, mid) without a second column."""
    return hashlib.sha256(f"{digest}@{n}".encode()).hexdigest()


def classify(s: Session, device_id: str, mid: str, digest: str, since: datetime) -> tuple[Alert | None, str, bool]:
    """(the earlier copy if this is a retransmission, the key to store it under
    otherwise, whether the mid was used before for something else)."""
    rows = s.execute(select(Alert.id, Alert.digest, Alert.received_at)
                     .where(Alert.device_id == device_id, Alert.mid == mid).order_by(Alert.id)).all()
    if not rows:
        return None, digest, False
    same = {digest} | {_rekey(digest, k) for k in range(1, len(rows) + 1)}
    for row in reversed(rows):
        if row.digest in same and row.received_at >= since:
            return s.get(Alert, row.id), digest, True
    if any(row.digest in same for row in rows):
        return None, _rekey(digest, len(rows)), True
    return None, digest, True


def is_retransmission(s: Session, device_id: str, mid: str, doc: dict[str, Any], since: datetime) -> bool:
    """Is this alert (its stored form, ``doc``) already stored, by the rule above?"""
    return classify(s, device_id, mid, digest_of(doc), since)[0] is not None


def location_stored(s: Session, device_id: str, mid: str) -> bool:
    """Is a location report with this (device, mid) already stored? Location rows carry
    no content digest: for them the pair alone decides (as the bulk insert's
    ON CONFLICT does)."""
    return s.scalar(select(LocationPoint.id).where(LocationPoint.device_id == device_id,
                                                   LocationPoint.mid == mid)) is not None
