"""Operators, their sessions, and device provisioning."""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain import audit
from cloud.domain.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound, RateLimited
from cloud.domain.ports import Clock, EventSink
from cloud.domain.security import hash_secret, mosquitto_hash, new_device_secret, new_token, token_digest, verify_secret
from cloud.domain.sessions import SessionPolicy, announce, purge_expired, revoke
from cloud.domain.throttle import ThrottlePolicy, Throttles, clean_client, throttle_view
from cloud.domain.uow import Tx, transaction
from cloud.metrics import LOGINS_THROTTLED
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


class AccountService:
    """Logging in and out, the sessions' lifetimes and revocation, one's own password,
    and the login throttles (cloud/domain/throttle.py). Every security-relevant step
    is audited (cloud/domain/audit.py)."""

    def __init__(self, sm: sessionmaker[Session], clock: Clock, *, sessions: SessionPolicy | None = None,
                 throttle: ThrottlePolicy | None = None, events: EventSink | None = None) -> None:
        self.sm, self.clock, self.events = sm, clock, events
        self.sessions = sessions or SessionPolicy()
        self.throttle = Throttles(throttle or ThrottlePolicy())
        self._touched: dict[int, datetime] = {}  # operator id -> when this process last wrote its presence

    def login(self, username: str, password: str, client: str) -> LoginResult:
        client = clean_client(client)
        with transaction(self.sm) as tx:
            s, now = tx.session, self.clock.now()
            op = s.scalar(select(Operator).where(Operator.username == username))
            tenant_id = op.tenant_id if op else None
            wait = self.throttle.wait_s(s, username, client, now)
            if wait:
                # Refused unchecked and uncounted; audited when the throttle engaged, not per attempt.
                self.throttle.refused(s, username, client, tenant_id)
                LOGINS_THROTTLED.inc()
            elif op is not None and op.active and verify_secret(op.password_hash, password):
                return self._open_session(tx, op, username, client, now)
            else:
                if op is None or not op.active:
                    verify_secret(_DUMMY_HASH, password)  # the same time as a wrong password
                self._failed(s, op, username, client, now)
        if wait:
            raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after_s=wait)
        raise NotAuthenticated("wrong username or password")

    def _open_session(self, tx: Tx, op: Operator, username: str, client: str, now: datetime) -> LoginResult:
        s = tx.session
        self.throttle.succeeded(s, username, client)
        purge_expired(s, op.id, now, self.sessions)
        token, csrf = new_token(), new_token()
        s.add(OperatorSession(token_hash=token_digest(token), operator_id=op.id, csrf_token=csrf, created_at=now,
                              last_seen_at=now, expires_at=now + timedelta(seconds=self.sessions.absolute_s)))
        audit.record_by(s, now, op, audit.LOGIN, detail={"client": client})
        return LoginResult(op, token, csrf)

    def _failed(self, s: Session, op: Operator | None, username: str, client: str, now: datetime) -> None:
        tenant_id, target = (op.tenant_id, audit.operator_target(op)) if op else (None, None)
        detail = {"username": username[:64], "client": client} | ({"inactive": True} if op and not op.active else {})
        audit.record(s, now, actor=f"anonymous@{client}", action=audit.LOGIN_FAILED, tenant_id=tenant_id,
                     target=target, detail=detail)
        for e in self.throttle.failed(s, username, client, tenant_id, now):
            audit.record(s, now, actor=f"anonymous@{client}", action=audit.LOGIN_THROTTLED, tenant_id=tenant_id,
                         target=target, detail={"username": username[:64], "client": client, "by": e.kind,
                                                "failures": e.failures, "wait_s": e.wait_s})
            log.warning("login throttle engaged", extra={"by": e.kind, "client": client, "wait_s": e.wait_s})

    def session_operator(self, token: str | None) -> tuple[Operator, str] | None:
        """The operator of a live session and its CSRF token, or None: no such session,
        past its idle or absolute lifetime, or its operator deactivated. Records use
        (the idle clock), at most once a minute."""
        if not token:
            return None
        with self.sm() as s:
            now = self.clock.now()
            sess = s.get(OperatorSession, token_digest(token))
            if sess is None or not self.sessions.alive(sess, now):
                return None
            op = s.get(Operator, sess.operator_id)
            if op is None or not op.active:
                return None
            csrf = sess.csrf_token
            if self.sessions.touch(sess, now):
                try:
                    s.commit()
                except Exception:  # noqa: BLE001  (e.g. the database locked a moment: the next request will)
                    s.rollback()
                    log.warning("could not record session use", extra={"operator_id": op.id})
            return op, csrf

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
        """End this session; its open sockets close (the others of the operator stay)."""
        with transaction(self.sm) as tx:
            tx.session.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_digest(token)))
            audit.record_by(tx.session, self.clock.now(), op, audit.LOGOUT)
            announce(tx, self.events, op.tenant_id, op.id)

    def change_password(self, op: Operator, token: str, current: str, new: str, client: str) -> int:
        """One's own password, knowing the current one. Every other session of the
        operator ends (a thief's included); this one goes on. Returns how many ended.
        A wrong current password counts as a failed login for the throttle."""
        client = clean_client(client)
        with transaction(self.sm) as tx:
            s, now = tx.session, self.clock.now()
            me = s.get(Operator, op.id)
            wait = self.throttle.wait_s(s, op.username, client, now)
            ok = not wait and me is not None and verify_secret(me.password_hash, current)
            if me is None or not ok:
                if not wait:
                    audit.record_by(s, now, op, audit.PASSWORD_CHANGE_FAILED, audit.operator_target(op))
                    self.throttle.failed(s, op.username, client, op.tenant_id, now)
                ended = -1
            else:
                me.password_hash = hash_secret(new)
                ended = revoke(tx, self.events, op.tenant_id, op.id, "password_changed",
                               keep_token_hash=token_digest(token))
                audit.record_by(s, now, op, audit.PASSWORD_CHANGED, audit.operator_target(op))
                audit.record_by(s, now, op, audit.SESSION_REVOKED, audit.operator_target(op),
                                {"reason": "password_changed", "sessions": ended})
        if wait:
            raise RateLimited(f"too many failed attempts; try again in {wait} s", retry_after_s=wait)
        if ended < 0:
            raise Forbidden("the current password is wrong")
        return ended

    def throttles(self, op: Operator) -> list[dict[str, Any]]:
        with self.sm() as s:
            now = self.clock.now()
            return [throttle_view(r, now) for r in self.throttle.visible(s, op.tenant_id, now)]

    def clear_throttle(self, op: Operator, throttle_id: int) -> None:
        """A manager lets an account (or an address its accounts were tried from) try
        again at once. Another tenant's throttle is not found."""
        with transaction(self.sm) as tx:
            s, now = tx.session, self.clock.now()
            row = next((r for r in self.throttle.visible(s, op.tenant_id, now) if r.id == throttle_id), None)
            if row is None:
                raise NotFound("no such throttle")
            audit.record_by(s, now, op, audit.THROTTLE_CLEARED, f"throttle:{row.id}",
                            {"kind": row.kind, "username": row.username, "client": row.client,
                             "failures": row.failures})
            s.delete(row)

    def create_operator(self, tenant_id: int, username: str, password: str, *, display_name: str | None = None,
                        role: str = "operator", centre_id: int | None = None,
                        hasher: Callable[[str], str] = hash_secret) -> Operator:
        """``hasher``: the demo seed hashes its public passwords once a process (cloud/seed.py)."""
        password_hash = hasher(password)  # argon2 is slow by design: not inside the transaction
        with transaction(self.sm) as tx:
            op = Operator(tenant_id=tenant_id, username=username, display_name=display_name or username,
                          password_hash=password_hash, role=role, centre_id=centre_id)
            tx.session.add(op)
        return op


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
                     broker: BrokerAuth | None = None, device_protocol: str = "openpers") -> ProvisionedDevice:
    """``device_protocol``: "openpers" (ours, over MQTT), or "setracker"/"iw" for an
    off-the-shelf watch through the watch gateway (docs/gateway.md): its id is the one
    it sends (its IMEI), and it gets no secret, since its protocol has no password
    (the broker hash is of a secret nobody is given: it cannot log in to MQTT)."""
    check_gateway_id(device_id, device_protocol)
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
                              created_at=clock.now(), protocol=device_protocol))
        tx.session.add(AuditEntry(at=clock.now(), actor=actor, action="device.provisioned", tenant_id=tenant_id,
                                  target=f"device:{device_id}",
                                  detail={"protocol": device_protocol} if device_protocol != "openpers" else None))
        if broker is not None:
            tx.after_commit(broker.sync)
    return ProvisionedDevice(device_id, secret if device_protocol == "openpers" else "")


GATEWAY_ID_RE = re.compile(r"[0-9]{6,20}")


def check_gateway_id(device_id: str | None, device_protocol: str) -> None:
    """A gateway watch is registered by the id it sends, its IMEI (some 3G watches send
    the IMEI's last ten digits): digits only, given, never generated."""
    if device_protocol not in ("openpers", "setracker", "iw"):
        raise Invalid(f"unknown protocol {device_protocol!r}: openpers, setracker or iw")
    if device_protocol != "openpers" and (device_id is None or not GATEWAY_ID_RE.fullmatch(device_id)):
        raise Invalid(f"a {device_protocol} watch is registered by the IMEI it sends (6 to 20 digits), "
                      f"not {device_id!r}")


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
