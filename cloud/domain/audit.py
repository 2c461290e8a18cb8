"""The security audit log: one function to write an entry, one to search it.

Every security-relevant action goes through ``record`` (or ``record_by`` for an
operator's own action) inside the transaction that does the action, so an entry
exists exactly when the action happened. The actions written here and by the
accounts service are listed in ``SECURITY_ACTIONS``; other parts of the domain
add their own (``KEYSAFE_VIEWED``, ``EXPORTED``) with the same functions.

Entries about an operator carry ``target="operator:<id>"`` (or the operator is
the actor, ``"operator:<username>"``), which is how a manager finds everything
about one person. Failed logins for a user name that exists carry its tenant and
target, so that tenant's managers see attacks on their staff; a name that exists
nowhere is audited without a tenant (the platform's log only)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain.views import iso
from cloud.store.models import AuditEntry, Operator

LOGIN = "login"
LOGIN_FAILED = "login.failed"
LOGIN_THROTTLED = "login.throttled"  # a throttle engaged: backoff starts or grows
LOGOUT = "logout"
SESSION_REVOKED = "session.revoked"
PASSWORD_CHANGED = "password.changed"  # by the operator, knowing the old one
PASSWORD_CHANGE_FAILED = "password.change_failed"
PASSWORD_RESET = "password.reset"  # by an administrator
ROLE_CHANGED = "operator.role_changed"
DEACTIVATED = "operator.deactivated"
REACTIVATED = "operator.reactivated"
THROTTLE_CLEARED = "login.throttle_cleared"
# For the other parts of the service to call (record_by): reading a wearer's
# key-safe code, and exporting personal data.
KEYSAFE_VIEWED = "keysafe.viewed"
EXPORTED = "export"

SECURITY_ACTIONS = (LOGIN, LOGIN_FAILED, LOGIN_THROTTLED, LOGOUT, SESSION_REVOKED, PASSWORD_CHANGED,
                    PASSWORD_CHANGE_FAILED, PASSWORD_RESET, ROLE_CHANGED, DEACTIVATED, REACTIVATED,
                    THROTTLE_CLEARED, KEYSAFE_VIEWED, EXPORTED)


def operator_actor(op: Operator) -> str:
    return f"operator:{op.username}"


def operator_target(op: Operator) -> str:
    return f"operator:{op.id}"


def record(s: Session, at: datetime, *, actor: str, action: str, tenant_id: int | None,
           target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Add one entry to the audit log, in the caller's transaction."""
    s.add(AuditEntry(at=at, actor=actor[:100], action=action[:64], tenant_id=tenant_id,
                     target=target[:100] if target else None, detail=detail))


def record_by(s: Session, at: datetime, op: Operator, action: str, target: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
    """An operator's own action (``record_by(s, clock.now(), op, KEYSAFE_VIEWED, f"wearer:{id}")``)."""
    record(s, at, actor=operator_actor(op), action=action, tenant_id=op.tenant_id, target=target, detail=detail)


def entry_view(a: AuditEntry) -> dict[str, Any]:
    return {"id": a.id, "at": iso(a.at), "actor": a.actor, "action": a.action, "target": a.target,
            "detail": a.detail}


def search(sm: sessionmaker[Session], tenant_id: int, *, user: str | None = None, action: str | None = None,
           start: datetime | None = None, end: datetime | None = None, limit: int = 100,
           offset: int = 0) -> dict[str, Any]:
    """A tenant's audit log, newest first. ``user``: a user name of the tenant; its
    entries as actor or as target (none for a name the tenant does not have).
    ``action``: a prefix ("login" finds login, login.failed, login.throttled).
    ``start``/``end``: the half-open range [start, end)."""
    with sm() as s:
        stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
        if user:
            who = s.scalar(select(Operator).where(Operator.username == user, Operator.tenant_id == tenant_id))
            if who is None:
                stmt = stmt.where(AuditEntry.id.is_(None))  # nobody of this tenant: nothing to show
            else:
                stmt = stmt.where(or_(AuditEntry.actor == operator_actor(who),
                                      AuditEntry.target == operator_target(who)))
        if action:
            escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditEntry.action.like(f"{escaped}%", escape="\\"))
        if start is not None:
            stmt = stmt.where(AuditEntry.at >= start)
        if end is not None:
            stmt = stmt.where(AuditEntry.at < end)
        total = s.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = s.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset))
        return {"items": [entry_view(a) for a in rows], "total": total, "limit": limit, "offset": offset}
