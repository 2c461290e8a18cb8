"""Engine and sessions. Nothing here is SQLite-specific except the pragmas that
make SQLite durable (WAL, synchronous=FULL) and patient (busy_timeout)."""
from __future__ import annotations

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.files import private_sqlite


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite(url)  # personal data: 0600, and so its -wal and -shm (cloud/files.py)
        # LIFO: the ingest worker, the busiest user, gets back the connection it just
        # returned. SQLite keeps a page cache per connection and drops it when another
        # connection has committed, so hopping between pooled connections re-reads
        # the location indexes' hot pages on every batch.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_use_lifo=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            # A batch of location reports dirties a leaf page per device in each index, so
            # a commit writes ~1-2 MB to the WAL; checkpointing every 1,000 pages (the
            # default) copied those pages into the database every other commit. At 10,000
            # a page changed by several commits is copied once: 12-20 % less ingest CPU on
            # a 250k-row history (measured in-process). The WAL stays under ~40 MB.
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def database_answers(sm: sessionmaker[Session]) -> bool:
    """The health check's question: does the database answer a trivial query now?"""
    try:
        with sm() as s:
            s.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure (locked, gone, refused) is the answer "no"
        return False
