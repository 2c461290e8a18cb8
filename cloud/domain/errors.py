"""What the domain refuses, by meaning. The domain says *why* a request cannot be
done; the adapters decide how to say it (the API's one table of HTTP statuses is
in cloud/api/errors.py, the CLI prints the message).

Some kinds are also the built-in exception a caller outside the API has always
caught: ``NotFound`` is a ``LookupError`` and ``Invalid`` a ``ValueError``, so the
CLI's ``except LookupError`` / ``except ValueError`` keep working."""
from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; ``message`` is meant for the person who asked."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError, LookupError):
    """No such object, or another tenant's: its existence is not the caller's to know."""


class Invalid(DomainError, ValueError):
    """The request is well-formed but its values make no sense (a polygon of two points)."""


class Conflict(DomainError):
    """The request contradicts the current state (a case already claimed, a name taken)."""


class Forbidden(DomainError):
    """The caller may see the object but not do this to it."""


class Unavailable(DomainError):
    """A service the request needs (the broker) is not there right now."""


class NotAuthenticated(DomainError):
    """Wrong credentials."""


class RateLimited(DomainError):
    """Too many attempts: wait ``retry_after_s`` seconds (when known) and try again."""

    def __init__(self, message: str, retry_after_s: int | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
