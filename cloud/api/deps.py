"""Request dependencies: the logged-in operator, CSRF for state-changing calls, and
roles. Routes take them as annotated types (``op: CsrfOperator``)."""
from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from starlette.requests import HTTPConnection

from cloud.store.models import Operator

SESSION_COOKIE = "pers_session"
CSRF_HEADER = "X-CSRF-Token"


def services(request: HTTPConnection):
    return request.app.state.services


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(x.strip(), strict=False) for x in spec.split(",") if x.strip())


def _in(host: str, networks: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def is_trusted_proxy(conn: HTTPConnection, host: str) -> bool:
    return _in(host, _networks(services(conn).settings.trusted_proxies))


def client_address(conn: HTTPConnection) -> str:
    """The client's address, for throttles and the audit log: the TCP peer, unless that
    peer is a trusted proxy (PERS_TRUSTED_PROXIES, default none). Then it is the
    right-most address of X-Forwarded-For that is not itself a trusted proxy: what is
    left of it was written by the client and proves nothing. The HTTP server is run
    without its own proxy handling (cloud/runtime.py), so the peer here is the real one."""
    peer = conn.client.host if conn.client else "?"
    trusted = _networks(services(conn).settings.trusted_proxies)
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for v in conn.headers.getlist("x-forwarded-for") for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop if _in(hop, _ANY) else peer  # garbage from the proxy: keep the proxy's own
    return hops[0] if hops else peer


_ANY = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def session_of(request: Request) -> tuple[Operator, str]:
    accounts = services(request).accounts
    found = accounts.session_operator(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise HTTPException(status_code=401, detail="not logged in")
    # Presence (routing, supervisor board): throttled, at most one write per operator every 15 s.
    accounts.touch(found[0].id)
    return found


LoggedIn = Annotated[tuple[Operator, str], Depends(session_of)]


def current_operator(found: LoggedIn) -> Operator:
    return found[0]


def csrf_checked_operator(request: Request, found: LoggedIn) -> Operator:
    """Double submit: the token given at login must come back in a header a
    cross-site form cannot set."""
    op, csrf = found
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    return op


CurrentOperator = Annotated[Operator, Depends(current_operator)]
CsrfOperator = Annotated[Operator, Depends(csrf_checked_operator)]


def with_role(*roles: str, write: bool = False):
    """A dependency: the operator (CSRF-checked for a write) if active and in one of ``roles``."""
    if write:
        def dep(op: CsrfOperator) -> Operator:
            return _in_role(op, roles)
    else:
        def dep(op: CurrentOperator) -> Operator:
            return _in_role(op, roles)
    return dep


def _in_role(op: Operator, roles: tuple[str, ...]) -> Operator:
    # Presence is recorded (throttled) by the session dependency itself.
    if op.role not in roles or not getattr(op, "active", True):
        raise HTTPException(status_code=403, detail=f"needs role {' or '.join(roles)}")
    return op


AdminReader = Annotated[Operator, Depends(with_role("admin"))]
AdminWriter = Annotated[Operator, Depends(with_role("admin", write=True))]
SupervisorReader = Annotated[Operator, Depends(with_role("supervisor", "admin"))]
SupervisorWriter = Annotated[Operator, Depends(with_role("supervisor", "admin", write=True))]

# Paging a list: each route gives its own default (``limit: PageLimit = 50``).
PageLimit = Annotated[int, Query(ge=1, le=500)]
PageOffset = Annotated[int, Query(ge=0)]
