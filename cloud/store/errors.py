"""Which database failures are worth retrying: the one place that knows.

A transient failure (the server is down or restarting, the connection dropped,
SQLite's file is locked, PostgreSQL could not serialise or found a deadlock) is
cured by waiting: the message is retried with back-off and not acknowledged.
Anything else (a constraint, a value out of range, a bug tripped by one message)
fails the same way every time: the message is quarantined (dead letters), so it
never holds up the messages behind it."""
from __future__ import annotations

from sqlalchemy import exc as sa_exc


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # TimeoutError: no connection free in the pool
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return False
