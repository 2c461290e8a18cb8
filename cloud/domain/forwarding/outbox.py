"""The durable outbox: an event to forward is a row written in the same transaction
as the alarm (or the resolution) it reports, so it exists exactly when the alarm
does. The forwarder (forwarder.py) delivers it after the commit and keeps it until
a receiver has acknowledged it: a receiver outage or a cloud restart loses nothing."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.domain.forwarding.codes import NEW
from cloud.store.models import AlarmReceiver, AlertCase, Device, ForwardOutbox


def enqueue(s: Session, tenant_id: int, event: str, qualifier: int, now: datetime, *, case_id: int | None = None,
            zone: int = 0, receiver_id: int | None = None) -> list[ForwardOutbox]:
    """One row per enabled receiver of the tenant (or the one named)."""
    q = select(AlarmReceiver.id).where(AlarmReceiver.tenant_id == tenant_id, AlarmReceiver.enabled.is_(True))
    if receiver_id is not None:
        q = q.where(AlarmReceiver.id == receiver_id)
    rows = [ForwardOutbox(tenant_id=tenant_id, receiver_id=rid, case_id=case_id, event=event, qualifier=qualifier,
                          zone=zone, created_at=now, status="pending", attempts=0, next_at=now)
            for rid in s.scalars(q.order_by(AlarmReceiver.id))]
    s.add_all(rows)
    return rows


def enqueue_case(s: Session, case: AlertCase, now: datetime, qualifier: int = NEW) -> list[ForwardOutbox]:
    """The case's event (its kind) as a new event or a restore, to every receiver."""
    device = s.get(Device, case.device_id)
    zone = device.receiver_zone if device is not None and device.receiver_zone else 0
    return enqueue(s, case.tenant_id, case.kind, qualifier, now, case_id=case.id, zone=zone)
