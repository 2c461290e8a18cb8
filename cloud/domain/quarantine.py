"""Dead letters: a message that cannot be stored, kept instead of retried for ever.

One poison message must never stall the ingest: a deterministic failure (a
constraint, a data error, a bug tripped by its content) puts the raw message, the
device, the reason and the time here, in its own transaction, counts it, and only
then does the adapter acknowledge it to the broker. The tenant's staff see the
list (``GET /api/quarantine``), and ``pers quarantine list`` shows all of it."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain.uow import transaction
from cloud.store.models import DeadLetter, Device

log = logging.getLogger("pers.quarantine")


def _storable(text: str, limit: int) -> str:
    """An exception's text may quote the very value that failed (a NUL, a lone
    surrogate): the dead letter must store where the message could not."""
    return text[:limit].replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def quarantine(sm: sessionmaker[Session], now: datetime, topic: str, payload: bytes, reason: str, detail: str,
               case_id: int | None = None) -> DeadLetter:
    """Store one dead letter (or count a repeat of the same bytes from the same device)
    and commit. Raises only what the store raises: a transient failure is then the
    caller's to retry, with the message still unacknowledged."""
    try:
        device_id, _kind = protocol.split_topic(topic)
    except protocol.Rejected:
        device_id = None
    digest = hashlib.sha256(payload).hexdigest()
    with transaction(sm) as tx:
        s = tx.session
        row = s.scalar(select(DeadLetter).where(DeadLetter.device_id == device_id, DeadLetter.digest == digest,
                                                DeadLetter.reason == reason).order_by(DeadLetter.id.desc()))
        if row is not None:
            row.count += 1
            row.last_at = now
            row.case_id = row.case_id or case_id
        else:
            device = s.get(Device, device_id) if device_id else None
            row = DeadLetter(received_at=now, last_at=now, count=1, device_id=device_id,
                             tenant_id=device.tenant_id if device else None, topic=_storable(topic, 256),
                             payload=payload, digest=digest, reason=reason, detail=_storable(detail, 2000),
                             case_id=case_id)
            s.add(row)
    metrics.QUARANTINED.labels(reason).inc()
    log.error("message quarantined", extra={"reason": reason, "topic": topic[:200], "detail": detail[:300],
                                            "dead_letter": row.id, "count": row.count, "case_id": case_id})
    return row


def listing(sm: sessionmaker[Session], tenant_id: int | None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest dead letters of one tenant (``None``: every tenant's and those of no
    known device, for the service's own operators through the CLI)."""
    with sm() as s:
        q = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
        if tenant_id is not None:
            q = q.where(DeadLetter.tenant_id == tenant_id)
        return [view(d) for d in s.scalars(q)]


def view(d: DeadLetter) -> dict[str, Any]:
    return {"id": d.id, "received_at": d.received_at.isoformat(), "last_at": d.last_at.isoformat(),
            "count": d.count, "device_id": d.device_id, "topic": d.topic, "reason": d.reason, "detail": d.detail,
            "case_id": d.case_id, "payload": d.payload.decode("utf-8", "replace")[:4096]}
