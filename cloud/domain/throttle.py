"""Login throttling: backoff, never a lock that a stranger can put on someone else.

Two counters slow password guessing down:

- **account + client address**: the failures of one user name from one address.
  A guesser at address A only ever slows down (that name, A): the operator
  typing the right password at address B is never refused because of A.
- **client address**: the failures from one address, whatever the name, so that
  one address cannot try a few passwords on every account. Its free allowance
  is larger (an alarm centre's operators may share one address behind NAT).

Past its free allowance, each failure makes the key wait ``base_s * 2**n``
seconds (n = failures beyond the allowance - 1), up to ``max_s``; an attempt
while it waits is refused with the time left (HTTP 429, Retry-After) without
checking the password, and is not counted. A success clears the account key
(not the address key: one good password must not buy a guesser more tries). A
key with no failure for ``forget_s`` starts again. Managers see the throttles
of their tenant's accounts, and of the addresses those accounts were tried
from, and can clear them.

The counters live in the database, so that every API replica and a restart see
the same ones."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.domain.views import iso
from cloud.store.models import LoginThrottle
from cloud.store.upsert import insert_unless_exists

ACCOUNT, ADDRESS = "account", "address"


@dataclass(frozen=True)
class ThrottlePolicy:
    account_free: int = 3
    address_free: int = 20
    base_s: float = 1.0
    max_s: float = 900.0
    forget_s: float = 24 * 3600.0

    def delay_s(self, failures: int, free: int) -> float:
        if failures <= free:
            return 0.0
        return float(min(self.max_s, self.base_s * 2 ** min(failures - free - 1, 30)))


@dataclass
class Engaged:
    """A failure that made a key wait (for the audit log)."""
    kind: str
    failures: int
    wait_s: int


def account_key(username: str, client: str) -> str:
    return f"{ACCOUNT}:{username.lower()[:64]}|{client}"


def address_key(client: str) -> str:
    return f"{ADDRESS}:{client}"


def clean_client(client: str) -> str:
    return (client or "?")[:64]


class Throttles:
    """The counters, read and written in the caller's transaction."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy

    def wait_s(self, s: Session, username: str, client: str, now: datetime) -> int:
        """Seconds this attempt must wait (0: go ahead and check the password)."""
        rows = s.scalars(select(LoginThrottle).where(
            LoginThrottle.key.in_((account_key(username, client), address_key(client)))))
        left = max([(r.blocked_until - now).total_seconds() for r in rows if r.blocked_until] or [0.0])
        return math.ceil(left) if left > 0 else 0

    def refused(self, s: Session, username: str, client: str, tenant_id: int | None) -> None:
        """Count an attempt turned away; for a known account, on its (account, address)
        row, so that its managers see why their operator was refused."""
        if tenant_id is None:
            return
        row = self._row(s, account_key(username, client), ACCOUNT, username, client, tenant_id)
        row.refused += 1

    def failed(self, s: Session, username: str, client: str, tenant_id: int | None,
               now: datetime) -> list[Engaged]:
        engaged = []
        for key, kind, free in ((account_key(username, client), ACCOUNT, self.policy.account_free),
                                (address_key(client), ADDRESS, self.policy.address_free)):
            mine = kind == ACCOUNT
            row = self._row(s, key, kind, username if mine else None, client, tenant_id if mine else None)
            if row.last_failure_at is not None and (now - row.last_failure_at).total_seconds() > self.policy.forget_s:
                row.failures, row.refused, row.blocked_until = 0, 0, None
            row.failures += 1
            row.last_failure_at = now
            wait = self.policy.delay_s(row.failures, free)
            if wait > 0:
                row.blocked_until = now + timedelta(seconds=wait)
                engaged.append(Engaged(kind, row.failures, math.ceil(wait)))
        return engaged

    def succeeded(self, s: Session, username: str, client: str) -> None:
        s.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(username, client)))

    def _row(self, s: Session, key: str, kind: str, username: str | None, client: str,
             tenant_id: int | None) -> LoginThrottle:
        """The key's row, created if need be; locked for this transaction on PostgreSQL,
        so that two failures at once both count."""
        values = {"key": key, "kind": kind, "username": username[:64] if username else None, "client": client,
                  "tenant_id": tenant_id, "failures": 0, "refused": 0}
        insert_unless_exists(s, LoginThrottle, values, "key")
        row = s.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()
        if tenant_id is not None:
            row.tenant_id = tenant_id
        return row

    # --- what managers see and do ----------------------------------------------------------------
    def visible(self, s: Session, tenant_id: int, now: datetime) -> list[LoginThrottle]:
        """The tenant's accounts' rows, and the rows of the addresses they were tried from."""
        own = list(s.scalars(select(LoginThrottle).where(LoginThrottle.kind == ACCOUNT,
                                                         LoginThrottle.tenant_id == tenant_id)))
        clients = {r.client for r in own}
        addresses = list(s.scalars(select(LoginThrottle).where(LoginThrottle.kind == ADDRESS,
                                                               LoginThrottle.client.in_(clients)))) if clients else []
        rows = [r for r in own + addresses if not self._forgotten(r, now)]
        return sorted(rows, key=lambda r: (r.blocked_until or datetime.min), reverse=True)

    def _forgotten(self, r: LoginThrottle, now: datetime) -> bool:
        return (r.last_failure_at is None and r.refused == 0) or (
            r.last_failure_at is not None and (now - r.last_failure_at).total_seconds() > self.policy.forget_s)


def throttle_view(r: LoginThrottle, now: datetime) -> dict[str, Any]:
    blocked = r.blocked_until is not None and r.blocked_until > now
    return {"id": r.id, "kind": r.kind, "username": r.username, "client": r.client, "failures": r.failures,
            "refused": r.refused, "last_failure_at": iso(r.last_failure_at),
            "blocked_until": iso(r.blocked_until) if blocked else None,
            "retry_after_s": math.ceil((r.blocked_until - now).total_seconds()) if blocked and r.blocked_until else 0}
