"""Live console events across API replicas, over PostgreSQL LISTEN/NOTIFY.

Each replica delivers its own events to its own consoles directly (no round
trip), and also NOTIFYs them on one channel; every other replica LISTENs and
hands what it hears to its local hub. NOTIFY is fire-and-forget: a replica
whose listening connection dropped may have missed events, so after every
(re)connection it tells its consoles to resync (a fresh snapshot from the
database, which is the truth). A payload over PostgreSQL's 8,000-byte limit
travels as a resync for that tenant instead.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import uuid

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("pers.live.relay")
CHANNEL = "pers_live"
MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more


def libpq_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgLiveRelay:
    """An EventSink: local hub first, then the other replicas."""

    def __init__(self, hub, database_url: str, *, reconnect_s: float = 1.0):
        self.hub = hub
        self.dsn = libpq_dsn(database_url)
        self.origin = uuid.uuid4().hex[:12]
        self.reconnect_s = reconnect_s
        self._outbox: queue.Queue = queue.Queue(maxsize=10_000)
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._threads = [threading.Thread(target=self._listen, name="live-listen", daemon=True),
                         threading.Thread(target=self._send, name="live-notify", daemon=True)]

    # --- EventSink ---------------------------------------------------------------------
    def publish(self, tenant_id: int, event: dict) -> None:
        self.hub.publish(tenant_id, event)
        try:
            self._outbox.put_nowait((tenant_id, event))
        except queue.Full:
            # Never block the ingest for a console nicety: the others resync instead.
            log.warning("live relay backlog full; event not relayed", extra={"tenant_id": tenant_id})

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> PgLiveRelay:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        for t in self._threads:
            t.join(timeout=3)

    # --- threads -----------------------------------------------------------------------
    def _encode(self, tenant_id: int, event: dict) -> str:
        body = json.dumps({"o": self.origin, "t": tenant_id, "e": event}, separators=(",", ":"), default=str)
        if len(body.encode()) > MAX_PAYLOAD:
            body = json.dumps({"o": self.origin, "t": tenant_id, "e": {"type": "resync"}})
        return body

    def _send(self) -> None:
        conn = None
        while not self._stop.is_set():
            item = self._outbox.get()
            if item is None:
                break
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._encode(*item)))
            except psycopg.Error:
                log.exception("could not relay a live event")
                conn = None
                self._stop.wait(self.reconnect_s)
        if conn is not None:
            conn.close()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    # Whatever was said while we were not listening is lost: resync.
                    self.hub.publish_all({"type": "resync"})
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._deliver(note.payload)
            except psycopg.Error:
                self.listening.clear()
                log.warning("live relay lost its listening connection; reconnecting",
                            extra={"retry_in_s": self.reconnect_s})
                self._stop.wait(self.reconnect_s)

    def _deliver(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            if msg["o"] != self.origin:
                self.hub.publish(int(msg["t"]), msg["e"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable live relay payload", extra={"detail": payload[:200]})
