"""What every part of the tenant administration shares: the service's wiring, the
audit trail, and the rule that another tenant's object does not exist."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain import configs
from cloud.domain.accounts import BrokerAuth
from cloud.domain.errors import Forbidden, NotFound
from cloud.domain.outbound import OutboundHttp
from cloud.domain.ports import Clock, EventSink
from cloud.store.models import AuditEntry, CallCentre, Contract, Operator

ROLES = ("operator", "supervisor", "admin")

_T = TypeVar("_T")


def page(s: Session, q: Select[_T], limit: int, offset: int, view: Callable[[_T], dict[str, Any]]) -> dict[str, Any]:
    total = s.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    items = [view(x) for x in s.scalars(q.limit(limit).offset(offset))]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def actor(op: Operator) -> str:
    return f"operator:{op.username}"


class AdminBase:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, *, broker: BrokerAuth | None = None,
                 publisher: configs.ConfigPublisher | None = None, default_heartbeat_s: int = 3600,
                 default_number: str | None = None, phone_region: str | None = None,
                 outbound: OutboundHttp | None = None, events: EventSink | None = None) -> None:
        self.sm, self.clock, self.broker, self.publisher = sm, clock, broker, publisher
        self.phone_region = phone_region  # how numbers without a country code are read
        self.outbound = outbound or OutboundHttp()  # checks the URLs a tenant configures
        self.events = events  # the live feed: revoked sessions close their sockets
        self.default_heartbeat_s, self.default_number = default_heartbeat_s, default_number

    def _audit(self, s: Session, op: Operator, action: str, target: str,
               detail: dict[str, Any] | None = None) -> None:
        s.add(AuditEntry(at=self.clock.now(), actor=actor(op), action=action, tenant_id=op.tenant_id,
                         target=target, detail=detail))

    def _own(self, s: Session, model: type[_T], key: object, op: Operator, what: str) -> _T:
        obj = s.get(model, key)
        if obj is None or getattr(obj, "tenant_id", None) != op.tenant_id:
            raise NotFound(f"no such {what}")
        return obj

    def _own_centre(self, s: Session, op: Operator, centre_id: int, *, write: bool = False) -> CallCentre:
        c = s.get(CallCentre, centre_id)
        contracted = c is not None and s.get(Contract, (op.tenant_id, c.id)) is not None
        if c is None or not (contracted or c.owner_tenant_id == op.tenant_id):
            raise NotFound("no such call centre")
        if write and c.owner_tenant_id != op.tenant_id:
            # A centre belongs to whoever created it. One without an owner (created by the
            # platform) is the tenant's to edit only while no other tenant contracts it.
            shared = s.scalar(select(func.count()).select_from(Contract).where(
                Contract.centre_id == c.id, Contract.tenant_id != op.tenant_id))
            if c.owner_tenant_id is not None or shared:
                raise Forbidden("this call centre is managed by another party")
        return c
