"""A unit of work: one transaction, and side effects that run only after its commit.

This is how "ack the watch only after the alert is committed" is enforced:
commands and live events are queued as effects and leave after commit."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("pers.uow")


@dataclass
class Tx:
    session: Session
    effects: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, effect: Callable[[], None]) -> None:
        self.effects.append(effect)


@contextmanager
def transaction(sm: sessionmaker[Session]) -> Iterator[Tx]:
    tx = Tx(sm())
    try:
        yield tx
        tx.session.commit()
    except BaseException:
        tx.session.rollback()
        raise
    finally:
        tx.session.close()
    for effect in tx.effects:
        try:
            effect()
        except Exception:  # noqa: BLE001
            # The transaction is committed: a failing effect (a live event, a publish)
            # must neither hide the others nor make the caller think nothing was stored.
            log.exception("after-commit effect failed")
