"""Commands to watches, tracked sent -> acked (or failed) -> expired.

A command stays "sent" until the watch acks it; the ticker marks it "expired"
after its time to live (the broker may still deliver it later, since the
watch's session is persistent: a late ack still moves it to "acked")."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain.ports import Clock, CommandSender
from cloud.domain.uow import Tx, transaction
from cloud.store.models import CaseEvent, Command

log = logging.getLogger("pers.commands")

# A call-back not dialled within two minutes is stale: the operator should know and act.
TTL_BY_TYPE = {"call": 120, "locate": 300, "ring": 300}


def send(tx: Tx, sender: CommandSender, clock: Clock, device_id: str, cmd: protocol.Command,
         case_id: int | None = None) -> dict[str, Any]:
    """Record a protocol command model as sent and publish it after commit."""
    body = cmd.model_dump(mode="json", exclude_none=True)
    tx.session.add(Command(cid=cmd.cid, device_id=device_id, case_id=case_id, type=cmd.type, payload=body,
                           status="sent", created_at=clock.now()))
    tx.after_commit(lambda: sender.send_command(device_id, body))
    return body


def expire(sm: sessionmaker[Session], now: datetime, default_ttl_s: int = 600,
           clock: Clock | None = None) -> list[str]:
    expired: list[str] = []
    oldest = now - timedelta(seconds=min([default_ttl_s, *TTL_BY_TYPE.values()]))
    with transaction(sm) as tx:
        s = tx.session
        for cmd in s.scalars(select(Command).where(Command.status == "sent", Command.created_at < oldest)
                             .order_by(Command.created_at).limit(1000)):
            ttl = TTL_BY_TYPE.get(cmd.type, default_ttl_s)
            if (now - cmd.created_at).total_seconds() < ttl:
                continue
            cmd.status, cmd.expired_at = "expired", now
            s.flush()  # holds the write lock from here: the event's time is read under it
            metrics.COMMANDS_EXPIRED.labels(cmd.type).inc()
            expired.append(cmd.cid)
            if cmd.case_id is not None:
                s.add(CaseEvent(case_id=cmd.case_id, at=clock.now() if clock else now, actor="system",
                                action="command_expired", detail={"cid": cmd.cid, "type": cmd.type, "ttl_s": ttl}))
    if expired:
        log.info("commands expired", extra={"count": len(expired)})
    return expired
