"""Request dependencies: the logged-in operator, CSRF for state-changing calls, and
roles. Routes take them as annotated types (``op: CsrfOperator``)."""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from cloud.store.models import Operator

SESSION_COOKIE = "pers_session"
CSRF_HEADER = "X-CSRF-Token"


def services(request: Request):
    return request.app.state.services


def client_address(request: Request) -> str:
    """The client's address for login throttles and the audit log: the peer of the
    connection. The one place to honour a trusted proxy's forwarded address."""
    return request.client.host if request.client else "?"


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
