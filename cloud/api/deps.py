"""Request dependencies: the logged-in operator, and CSRF for state-changing calls."""
from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request

from cloud.store.models import Operator

SESSION_COOKIE = "pers_session"
CSRF_HEADER = "X-CSRF-Token"


def services(request: Request):
    return request.app.state.services


def session_of(request: Request) -> tuple[Operator, str]:
    accounts = services(request).accounts
    found = accounts.session_operator(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise HTTPException(status_code=401, detail="not logged in")
    # Presence (routing, supervisor board): throttled, at most one write per operator every 15 s.
    accounts.touch(found[0].id)
    return found


def current_operator(found=Depends(session_of)) -> Operator:
    return found[0]


def csrf_checked_operator(request: Request, found=Depends(session_of)) -> Operator:
    """Double submit: the token given at login must come back in a header a
    cross-site form cannot set."""
    op, csrf = found
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    return op
