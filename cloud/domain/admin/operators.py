"""Operators, and who of them is on duty."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from cloud.domain import audit
from cloud.domain.admin.base import ROLES, AdminBase, page
from cloud.domain.errors import Conflict, Invalid
from cloud.domain.lifecycle import OPEN_STATUSES
from cloud.domain.security import hash_secret
from cloud.domain.sessions import revoke
from cloud.domain.uow import Tx, transaction
from cloud.domain.views import iso, operator_view
from cloud.store.models import AlertCase, CallCentre, Operator

USERNAME_MAX = 64


def tenant_username(username: str, tenant_id: int) -> str:
    """The login name of an operator a tenant's admin creates: "<name>@t<tenant id>".
    Login names are one namespace (the login form asks for no tenant); without this, "taken"
    would tell a tenant that another tenant has an operator of that name. In its own
    namespace a tenant can only collide with itself. Accounts made by the platform
    (pers operator add, the demo seed) keep the names they were given."""
    suffix = f"@t{tenant_id}"
    qualified = username if username.endswith(suffix) else username + suffix
    if len(qualified) > USERNAME_MAX:
        raise Invalid(f"username too long: at most {USERNAME_MAX - len(suffix)} characters before {suffix}")
    return qualified


class OperatorsAdmin(AdminBase):
    # --- operators ------------------------------------------------------------------------------
    def list_operators(self, op: Operator, *, centre_id: int | None = None, limit: int = 100,
                       offset: int = 0) -> dict[str, Any]:
        with self.sm() as s:
            stmt = select(Operator).where(Operator.tenant_id == op.tenant_id)
            if centre_id is not None:
                stmt = stmt.where(Operator.centre_id == centre_id)
            return page(s, stmt.order_by(Operator.username), limit, offset, operator_view)

    def create_operator(self, op: Operator, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("role", "operator") not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        with transaction(self.sm) as tx:
            s = tx.session
            if data.get("centre_id") is not None:
                self._own_centre(s, op, data["centre_id"])
            username = tenant_username(data["username"], op.tenant_id)
            # Taken here means taken in this tenant's own namespace, which its admin can list anyway.
            if s.scalar(select(Operator.id).where(Operator.username == username)) is not None:
                raise Conflict("username taken")
            o = Operator(tenant_id=op.tenant_id, username=username,
                         display_name=data.get("display_name") or data["username"],
                         password_hash=hash_secret(data["password"]), role=data.get("role", "operator"),
                         centre_id=data.get("centre_id"), active=True)
            s.add(o)
            s.flush()
            self._audit(s, op, "operator.created", f"operator:{o.id}",
                        {"username": o.username, "role": o.role, "centre_id": o.centre_id})
            return operator_view(o)

    def update_operator(self, op: Operator, operator_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            o = self._own(s, Operator, operator_id, op, "operator")
            if "role" in data and data["role"] not in ROLES:
                raise Invalid(f"role must be one of {', '.join(ROLES)}")
            if data.get("centre_id") is not None:
                self._own_centre(s, op, data["centre_id"])
            if o.id == op.id and (data.get("active") is False or data.get("role", o.role) != o.role):
                raise Conflict("you cannot demote or deactivate yourself")
            before = (o.role, o.active)
            for k in ("display_name", "role", "centre_id", "active"):
                if k in data:
                    setattr(o, k, data[k])
            if data.get("password"):
                o.password_hash = hash_secret(data["password"])
            self._audit(s, op, "operator.updated", f"operator:{o.id}",
                        {k: v for k, v in data.items() if k != "password"} | ({"password": "changed"}
                                                                              if data.get("password") else {}))
            self._end_sessions_on_change(tx, op, o, before, bool(data.get("password")))
            return operator_view(o)

    def _end_sessions_on_change(self, tx: Tx, op: Operator, o: Operator, before: tuple[str, bool],
                                password_reset: bool) -> None:
        """A deactivation, a role change or a password reset ends every session of that
        operator at once, open live feeds included: what they could do before is not
        what they may do now."""
        role, active = before
        reasons = []
        if active and not o.active:
            reasons.append(audit.DEACTIVATED)
        if not active and o.active:
            self._audit(tx.session, op, audit.REACTIVATED, f"operator:{o.id}")
        if role != o.role:
            reasons.append(audit.ROLE_CHANGED)
        if password_reset:
            reasons.append(audit.PASSWORD_RESET)
        for action in reasons:
            detail = {"from": role, "to": o.role} if action == audit.ROLE_CHANGED else None
            self._audit(tx.session, op, action, f"operator:{o.id}", detail)
        if reasons:
            ended = revoke(tx, self.events, o.tenant_id, o.id, reasons[0])
            self._audit(tx.session, op, audit.SESSION_REVOKED, f"operator:{o.id}",
                        {"reason": ", ".join(reasons), "sessions": ended})

    def operator_presence(self, op: Operator, *, present_window_s: int = 120) -> list[dict[str, Any]]:
        """Who is on duty: last authenticated activity (throttled to 15 s), present
        within ``present_window_s``, and the open cases each one holds."""
        now = self.clock.now()
        with self.sm() as s:
            held = dict(s.execute(select(AlertCase.claimed_by, func.count())
                                  .where(AlertCase.tenant_id == op.tenant_id, AlertCase.claimed_by.is_not(None),
                                         AlertCase.status.in_(OPEN_STATUSES))
                                  .group_by(AlertCase.claimed_by)).all())
            centres = dict(s.execute(select(CallCentre.id, CallCentre.name)).all())
            out = []
            for o in s.scalars(select(Operator).where(Operator.tenant_id == op.tenant_id)
                               .order_by(Operator.display_name, Operator.id)):
                seen = o.last_seen_at
                out.append({"id": o.id, "username": o.username, "display_name": o.display_name, "role": o.role,
                            "active": o.active, "centre": centres.get(o.centre_id) if o.centre_id else None,
                            "last_seen_at": iso(seen),
                            "present": bool(o.active and seen is not None
                                            and now - seen <= timedelta(seconds=present_window_s)),
                            "open_cases": held.get(o.id, 0)})
            return out

