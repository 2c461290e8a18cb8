"""One error shape for the whole API, and the one table from what the domain
refuses (cloud/domain/errors.py) to an HTTP status.

Every error answers ``{"detail": ...}``: a sentence for a refusal, FastAPI's list
of problems for a request that does not validate. The console's scripts read
``detail`` and the status, so neither may change without them."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cloud.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotAuthenticated,
    NotFound,
    RateLimited,
    Unavailable,
)

log = logging.getLogger("pers.api")

STATUS: dict[type[DomainError], int] = {
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    RateLimited: 429,
    Unavailable: 503,
}

# What each status means to a client, for the OpenAPI document.
DESCRIPTIONS = {
    400: "The body is not readable JSON",
    401: "Not logged in",
    403: "Forbidden (role, ownership or CSRF token)",
    404: "No such object in your tenant",
    409: "Conflicts with the current state",
    422: "Invalid request",
    429: "Too many failed logins: wait for Retry-After seconds",
    503: "Not ready, or a needed service (the broker) is unavailable",
}


class ErrorOut(BaseModel):
    """A refusal's ``detail`` is a sentence; a validation failure's is FastAPI's list."""
    detail: str | list | dict


def error_responses(*codes: int) -> dict:
    """The ``responses=`` of a router or route: these statuses, documented with ErrorOut."""
    return {c: {"model": ErrorOut, "description": DESCRIPTIONS[c]} for c in codes}


def status_of(exc: DomainError) -> int | None:
    """The most specific kind wins; None for a DomainError of no kind, which is a bug."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return None


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    status = status_of(exc)
    if status is None:
        raise exc  # left to the server's 500, like any other bug
    wait = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(wait)} if wait else None
    return JSONResponse(status_code=status, content={"detail": exc.message}, headers=headers)


async def _log_bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    log.warning("rejected API request", extra={"path": request.url.path, "reason": "invalid_request",
                                               "detail": str(exc.errors())[:300]})
    # FastAPI's own handler fails (500) on a non-UTF-8 body: encode bytes safely.
    errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
    return JSONResponse(status_code=422, content={"detail": errors})


def install_error_handlers(app: FastAPI) -> None:
    """Every error of the app in the one shape: domain refusals by the STATUS table,
    invalid requests as 422 with FastAPI's list of problems."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _log_bad_request)
