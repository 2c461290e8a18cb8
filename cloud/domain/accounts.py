"""Operators, their sessions, and device provisioning."""
from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain.errors import Conflict, Invalid, NotAuthenticated, NotFound, RateLimited
from cloud.domain.ports import Clock
from cloud.domain.security import hash_secret, mosquitto_hash, new_device_secret, new_token, token_digest, verify_secret
from cloud.domain.uow import transaction
from cloud.store.models import AuditEntry, Device, Operator, OperatorSession

log = logging.getLogger("pers.auth")

# A fixed hash to verify against when the username is unknown, so that a
# failed login takes the same time whether or not the user exists.
_DUMMY_HASH = hash_secret("not-a-real-password")


class DeviceExists(Conflict, ValueError):
    """Also a ValueError: the CLI reports every refusal of provision_device as one."""


@dataclass
class LoginResult:
    operator: Operator
    token: str
    csrf_token: str


class LoginLimiter:
    """Failed logins per (username) and per client address in a sliding window."""

    def __init__(self, max_failures: int, window_s: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.monotonic = max_failures, window_s, monotonic
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        q, now = self._failures[key], self.monotonic()
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.max_failures for k in keys)

    def fail(self, *keys: str) -> None:
        for k in keys:
            self._recent(k).append(self.monotonic())

    def clear(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)


class AccountService:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, limiter: LoginLimiter,
                 session_hours: int = 12) -> None:
        self.sm, self.clock, self.limiter, self.session_hours = sm, clock, limiter, session_hours
        self._touched: dict[int, datetime] = {}  # operator id -> when this process last wrote its presence

    def login(self, username: str, password: str, client: str) -> LoginResult:
        keys = (f"user:{username.lower()}", f"addr:{client}")
        if self.limiter.blocked(*keys):
            self._audit(None, f"anonymous@{client}", "login.rate_limited", {"username": username[:64]})
            raise RateLimited("too many failed logins; wait and try again")
        result: LoginResult | None = None
        with transaction(self.sm) as tx:
            op = tx.session.scalar(select(Operator).where(Operator.username == username))
            ok = verify_secret(op.password_hash if op else _DUMMY_HASH, password) and op is not None
            if not ok or op is None:
                self.limiter.fail(*keys)
                tx.session.add(AuditEntry(at=self.clock.now(), actor=f"anonymous@{client}", action="login.failed",
                                          detail={"username": username[:64]}))
            else:
                self.limiter.clear(*keys)
                token, csrf = new_token(), new_token()
                now = self.clock.now()
                tx.session.add(OperatorSession(token_hash=token_digest(token), operator_id=op.id, csrf_token=csrf,
                                               created_at=now, expires_at=now + timedelta(hours=self.session_hours)))
                tx.session.add(AuditEntry(at=now, actor=f"operator:{op.username}", action="login",
                                          tenant_id=op.tenant_id, detail={"client": client}))
                result = LoginResult(op, token, csrf)
        if result is None:
            raise NotAuthenticated("wrong username or password")
        return result

    def session_operator(self, token: str | None) -> tuple[Operator, str] | None:
        if not token:
            return None
        with self.sm() as s:
            sess = s.get(OperatorSession, token_digest(token))
            if sess is None or sess.expires_at < self.clock.now():
                return None
            op = s.get(Operator, sess.operator_id)
            return (op, sess.csrf_token) if op else None

    def touch(self, operator_id: int) -> bool:
        """Operator presence for routing and the supervisor board: called on every
        authenticated request and WebSocket connection/keep-alive. Throttled twice:
        this process skips the database entirely within SEEN_WRITE_EVERY_S of its
        last write for that operator (a busy console costs no write lock per
        request), and record_operator_seen itself writes at most that often.
        Never raises: presence is best effort and must not fail a request."""
        from cloud.domain.routing import SEEN_WRITE_EVERY_S, record_operator_seen
        now = self.clock.now()
        last = self._touched.get(operator_id)
        if last is not None and (now - last).total_seconds() < SEEN_WRITE_EVERY_S:
            return False
        self._touched[operator_id] = now
        try:
            return record_operator_seen(self.sm, self.clock, operator_id)
        except Exception:  # e.g. the database is locked for a moment: try again next time
            self._touched.pop(operator_id, None)
            log.warning("could not record operator presence", extra={"operator_id": operator_id})
            return False

    def colleagues(self, op: Operator) -> list[dict[str, Any]]:
        """The operators of one's own tenant (id, display name, role), so the console
        can say who took a case; nothing more about them."""
        with self.sm() as s:
            rows = s.scalars(select(Operator).where(Operator.tenant_id == op.tenant_id).order_by(Operator.id))
            return [{"id": o.id, "display_name": o.display_name, "role": o.role} for o in rows]

    def logout(self, token: str, op: Operator) -> None:
        with transaction(self.sm) as tx:
            tx.session.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_digest(token)))
            tx.session.add(AuditEntry(at=self.clock.now(), actor=f"operator:{op.username}", action="logout",
                                      tenant_id=op.tenant_id))

    def create_operator(self, tenant_id: int, username: str, password: str, *, display_name: str | None = None,
                        role: str = "operator", centre_id: int | None = None) -> Operator:
        with transaction(self.sm) as tx:
            op = Operator(tenant_id=tenant_id, username=username, display_name=display_name or username,
                          password_hash=hash_secret(password), role=role, centre_id=centre_id)
            tx.session.add(op)
        return op

    def _audit(self, tenant_id: int | None, actor: str, action: str, detail: dict[str, Any] | None = None) -> None:
        with transaction(self.sm) as tx:
            tx.session.add(AuditEntry(at=self.clock.now(), actor=actor, action=action, tenant_id=tenant_id,
                                      detail=detail))


@dataclass
class ProvisionedDevice:
    device_id: str
    secret: str  # shown once, never stored in clear


class BrokerAuth(Protocol):
    """Implemented by the runtime: rewrite the broker's password file and ACL from
    the database and make the broker re-read them. Mosquitto (2.0.11 measured, see
    tests/cloud/mqtt/test_broker_rotation.py) re-checks every connected client on that
    reload and disconnects those whose password no longer matches: a rotated
    secret ends the old session at once."""

    def sync(self) -> None: ...


def provision_device(sm: sessionmaker[Session], clock: Clock, tenant_id: int, *, device_id: str | None = None,
                     wearer_id: int | None = None, actor: str = "system",
                     broker: BrokerAuth | None = None) -> ProvisionedDevice:
    device_id = device_id or ("w" + new_token()[:15].replace("-", "x").replace("_", "y"))
    if not protocol.DEVICE_ID_RE.match(device_id) or device_id.startswith("pers-"):
        raise Invalid(f"invalid device id {device_id!r}: [A-Za-z0-9_-]{{1,64}}, not starting with 'pers-'")
    secret = new_device_secret()
    with transaction(sm) as tx:
        if tx.session.get(Device, device_id) is not None:
            raise DeviceExists(f"device {device_id} already exists")
        if wearer_id is not None:
            from cloud.store.models import Wearer
            w = tx.session.get(Wearer, wearer_id)
            if w is None or w.tenant_id != tenant_id:
                raise Invalid(f"no wearer {wearer_id} in this tenant")
        tx.session.add(Device(id=device_id, tenant_id=tenant_id, wearer_id=wearer_id,
                              broker_hash=mosquitto_hash(secret), presence="unknown",
                              created_at=clock.now()))
        tx.session.add(AuditEntry(at=clock.now(), actor=actor, action="device.provisioned", tenant_id=tenant_id,
                                  target=f"device:{device_id}"))
        if broker is not None:
            tx.after_commit(broker.sync)
    return ProvisionedDevice(device_id, secret)


def rotate_device_secret(sm: sessionmaker[Session], clock: Clock, device_id: str, *, actor: str,
                         tenant_id: int | None = None, broker: BrokerAuth | None = None) -> ProvisionedDevice:
    """A new secret; the old one stops working when the broker reloads (and its
    live session is dropped then). The watch must be given the new secret (at
    the service desk or by the installer): until then it cannot connect, which
    is the point when a secret leaked. Raises NotFound (a LookupError) for an
    unknown device or another tenant's."""
    secret = new_device_secret()
    with transaction(sm) as tx:
        d = tx.session.get(Device, device_id)
        if d is None or (tenant_id is not None and d.tenant_id != tenant_id):
            raise NotFound("no such device")
        d.broker_hash, d.secret_rotated_at = mosquitto_hash(secret), clock.now()
        tx.session.add(AuditEntry(at=clock.now(), actor=actor, action="device.secret_rotated",
                                  tenant_id=d.tenant_id, target=f"device:{device_id}"))
        if broker is not None:
            tx.after_commit(broker.sync)
    log.info("device secret rotated", extra={"device_id": device_id, "actor": actor})
    return ProvisionedDevice(device_id, secret)


def broker_credentials(sm: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sm() as s:
        return [(d.id, d.broker_hash) for d in s.scalars(select(Device).order_by(Device.id))]
