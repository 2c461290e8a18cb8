"""Operator sessions: how long one lives, and how all of a user's end at once.

A session dies at whichever comes first: its absolute end (``expires_at``, set
at login) or ``idle_s`` without use. Use is any authenticated request and an
open live feed, which re-checks its session every few seconds: a console on
screen keeps its operator logged in through a quiet night, a forgotten tab or a
copied cookie does not.

Revoking deletes the rows (the cookie is refused from the next request on) and,
after the commit, announces ``SESSIONS_REVOKED`` on the tenant's live feed, so
that the open WebSockets of that operator re-check at once and close
(cloud/api/ws.py). The announcement goes through the same sink as every live
event, so it reaches the other API replicas too; a lost one is caught by the
sockets' periodic re-check."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_
from sqlalchemy.orm import Session

from cloud import metrics
from cloud.domain.ports import EventSink
from cloud.domain.uow import Tx
from cloud.store.models import OperatorSession

SESSIONS_REVOKED = "sessions_revoked"  # a live event for the API's sockets, never forwarded to a console


@dataclass(frozen=True)
class SessionPolicy:
    idle_s: int = 2 * 3600
    absolute_s: int = 12 * 3600
    # The idle clock is written at most this often per session: one write a minute,
    # not one per request.
    touch_every_s: int = 60

    def alive(self, sess: OperatorSession, now: datetime) -> bool:
        last = sess.last_seen_at or sess.created_at
        return now < sess.expires_at and now - last < timedelta(seconds=self.idle_s)

    def touch(self, sess: OperatorSession, now: datetime) -> bool:
        """Record use; True if the row changed (the caller commits)."""
        last = sess.last_seen_at or sess.created_at
        if now - last < timedelta(seconds=self.touch_every_s):
            return False
        sess.last_seen_at = now
        return True


def revoke(tx: Tx, events: EventSink | None, tenant_id: int, operator_id: int, reason: str, *,
           keep_token_hash: str | None = None) -> int:
    """Delete every session of the operator (but ``keep_token_hash``, the caller's own
    on a password change) and, once committed, tell the open sockets. Returns how
    many sessions ended."""
    stmt = delete(OperatorSession).where(OperatorSession.operator_id == operator_id)
    if keep_token_hash is not None:
        stmt = stmt.where(OperatorSession.token_hash != keep_token_hash)
    ended = cast("CursorResult[Any]", tx.session.execute(stmt)).rowcount or 0
    announce(tx, events, tenant_id, operator_id)
    tx.after_commit(lambda: metrics.SESSIONS_REVOKED.labels(reason).inc(ended))
    return ended


def announce(tx: Tx, events: EventSink | None, tenant_id: int, operator_id: int) -> None:
    if events is not None:
        tx.after_commit(lambda: events.publish(tenant_id, {"type": SESSIONS_REVOKED, "operator_id": operator_id}))


def purge_expired(s: Session, operator_id: int, now: datetime, policy: SessionPolicy) -> None:
    """Dead sessions of one operator, deleted at their next login (they are refused anyway)."""
    last_use = func.coalesce(OperatorSession.last_seen_at, OperatorSession.created_at)
    s.execute(delete(OperatorSession).where(
        OperatorSession.operator_id == operator_id,
        or_(OperatorSession.expires_at <= now, last_use <= now - timedelta(seconds=policy.idle_s))))
