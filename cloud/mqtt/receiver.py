"""The bulk session's receiver: a receive-only MQTT 3.1.1 client, read in chunks.

Why not paho here (docs/decisions/ingest-receiver.md): paho reads a packet with
three or more recv() calls, builds an MQTTMessage and an MQTTMessageInfo (with
its own threading.Condition) per message, matches the topic against its
callbacks, and queues each manual PUBACK through its socket pair. For a flood of
small location reports that costs more than storing them. This session only
ever receives QoS 1 PUBLISHes and answers with PUBACKs, so it does exactly that:
one recv() of up to 256 KiB is cut into as many packets as it holds, handed on
as one list, and the PUBACKs of a committed batch leave in one sendall().

paho still carries everything else (the alert session, commands, config): the
part of the protocol where an SOS is at stake stays on the well-kept library.

Guarantees kept from the paho session it replaces:
- persistent session (clean session 0): what we have not PUBACKed, the broker
  redelivers after a reconnect or to the next cloud process;
- a PUBACK is sent only for a message the caller has committed, and only on the
  connection the message came on (packet ids belong to a connection: an id
  acked on the next one could name a different, uncommitted message);
- keepalive: a PINGREQ whenever nothing has been sent for half the keepalive,
  and the connection is dropped and remade if the broker has said nothing for
  one and a half keepalives;
- backpressure: ``deliver`` may block (the bridge's bounded lane); meanwhile
  nothing is read, the broker holds the rest, and the keepalive still runs.
"""
from __future__ import annotations

import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable

from cloud import metrics

log = logging.getLogger("pers.mqtt")

PINGREQ = b"\xc0\x00"
_CONNACK, _PUBLISH, _SUBACK, _PINGRESP = 2, 3, 9, 13
_REFUSED = {1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
            4: "bad user name or password", 5: "not authorised"}
_TOPIC_CACHE_MAX = 200_000
# Connection numbers, unique in the process: a Delivery names the connection it came on.
_connections = itertools.count(1)


class Delivery:
    """One received PUBLISH; ``conn`` is the connection it came on."""
    __slots__ = ("topic", "payload", "qos", "mid", "conn")

    def __init__(self, topic: str, payload: bytes, qos: int, mid: int, conn: int):
        self.topic, self.payload, self.qos, self.mid, self.conn = topic, payload, qos, mid, conn


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    n, length = len(body), bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            return bytes([first]) + bytes(length) + body


def connect_packet(client_id: str, username: str, password: str | None, keepalive: int) -> bytes:
    flags = 0x80 | (0x40 if password is not None else 0)  # clean session 0: a persistent session
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id) + _utf8(username)
    if password is not None:
        body += _utf8(password)
    return _packet(0x10, body)


def subscribe_packet(packet_id: int, topics: list[str], qos: int = 1) -> bytes:
    return _packet(0x82, struct.pack("!H", packet_id) + b"".join(_utf8(t) + bytes([qos]) for t in topics))


def pubacks(mids) -> bytes:
    return b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids)


class PacketReader:
    """Cuts a byte stream into MQTT packets; PUBLISHes become Deliveries."""

    def __init__(self):
        self._buf = b""
        self._topics: dict[bytes, str] = {}

    def feed(self, data: bytes, conn: int) -> tuple[list[Delivery], list[tuple[int, bytes]]]:
        """Returns (publishes, other packets as (type, body)); keeps any incomplete tail."""
        buf = self._buf + data if self._buf else data
        publishes: list[Delivery] = []
        others: list[tuple[int, bytes]] = []
        topics = self._topics
        pos, end = 0, len(buf)
        while pos + 2 <= end:
            first = buf[pos]
            # remaining length: 1 to 4 bytes, 7 bits each
            length, shift, i, complete = 0, 0, pos + 1, False
            while i < end:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    raise ValueError("malformed remaining length")
            if not complete:
                break
            if i + length > end:
                break
            kind = first >> 4
            if kind == _PUBLISH:
                qos = (first >> 1) & 3
                tlen = (buf[i] << 8) | buf[i + 1] if length >= 2 else length
                if 2 + tlen + (2 if qos else 0) > length:
                    raise ValueError("malformed PUBLISH")
                tb = buf[i + 2:i + 2 + tlen]
                topic = topics.get(tb)
                if topic is None:
                    if len(topics) >= _TOPIC_CACHE_MAX:
                        topics.clear()
                    topic = topics[tb] = tb.decode("utf-8", "replace")
                p = i + 2 + tlen
                mid = 0
                if qos:
                    mid = (buf[p] << 8) | buf[p + 1]
                    p += 2
                publishes.append(Delivery(topic, buf[p:i + length], qos, mid, conn))
            else:
                others.append((kind, buf[i:i + length]))
            pos = i + length
        self._buf = buf[pos:] if pos < end else b""
        return publishes, others


class BulkReceiver:
    """Connects, subscribes and hands every received PUBLISH to ``deliver`` (in
    lists, in order), from its own thread; reconnects with back-off."""

    def __init__(self, *, host: str, port: int, client_id: str, username: str, password: str | None,
                 topics: list[str], deliver: Callable[[list[Delivery], BulkReceiver], None],
                 on_state: Callable[[bool], None] = lambda up: None, keepalive: int = 30,
                 min_delay: float = 1.0, max_delay: float = 10.0, chunk: int = 256 * 1024):
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password, self.topics = username, password, topics
        self.deliver, self.on_state, self.keepalive = deliver, on_state, keepalive
        self.min_delay, self.max_delay, self.chunk = min_delay, max_delay, chunk
        self._sock: socket.socket | None = None
        self._conn = 0  # the current connection's number: PUBACKs go only to their message's
        self._send_lock = threading.Lock()
        self._last_sent = self._last_heard = time.monotonic()
        self._stop = threading.Event()
        self._stop_by = 0.0  # when stopping: how long to wait for the broker to close
        self._thread = threading.Thread(target=self._run, name="mqtt-bulk-receiver", daemon=True)

    # --- called from other threads ------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float = 2.0) -> None:
        """DISCONNECT, half-close, and let the receiving thread read until the broker
        closes. Closing a socket with bytes still unread sends a TCP reset, and a reset
        makes the broker's kernel drop what it had not yet read: PUBACKs already sent
        were lost and their messages came back on the next connection."""
        self._stop_by = time.monotonic() + grace
        self._stop.set()
        with self._send_lock:
            sock = self._sock
            if sock is not None:
                try:
                    sock.sendall(b"\xe0\x00")  # DISCONNECT: the session stays on the broker
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        self._thread.join(timeout=grace + 3)

    def ack(self, deliveries: list[Delivery]) -> int:
        """PUBACK the QoS 1 deliveries that came on the current connection. Returns
        how many were sent; the rest the broker redelivers (and the store dedupes)."""
        conn, sock = self._conn, self._sock
        mids = [d.mid for d in deliveries if d.qos and d.conn == conn]
        if not mids or sock is None:
            return 0
        return len(mids) if self._send(sock, pubacks(mids), conn) else 0

    def keepalive_due(self) -> None:
        """Send a PINGREQ if nothing has been sent for half the keepalive (the
        bridge calls this while ``deliver`` waits for room)."""
        sock = self._sock
        if sock is not None and time.monotonic() - self._last_sent >= self.keepalive / 2:
            self._send(sock, PINGREQ, self._conn)

    # --- the receiving thread -------------------------------------------------------
    def _send(self, sock: socket.socket, data: bytes, conn: int) -> bool:
        with self._send_lock:
            if conn != self._conn or sock is not self._sock:
                return False
            try:
                sock.sendall(data)
            except OSError as exc:
                log.warning("bulk session: send failed", extra={"error": str(exc)})
                self._drop(sock)
                return False
            self._last_sent = time.monotonic()
            return True

    def _drop(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _run(self) -> None:
        delay = self.min_delay
        while not self._stop.is_set():
            try:
                self._session()
                delay = self.min_delay  # it was up: start the back-off again
            except (OSError, ValueError, ConnectionError) as exc:
                if not self._stop.is_set():
                    log.warning("bulk session: connection lost, reconnecting",
                                extra={"error": str(exc) or type(exc).__name__, "retry_in_s": delay})
            finally:
                with self._send_lock:
                    sock, self._sock = self._sock, None
                    self._conn = 0
                if sock is not None:
                    self._drop(sock)
                self.on_state(False)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_delay)

    def _session(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        with self._send_lock:
            conn = self._conn = next(_connections)
            self._sock = sock
        reader = PacketReader()
        sock.sendall(connect_packet(self.client_id, self.username, self.password, self.keepalive))
        self._last_sent = self._last_heard = time.monotonic()
        sock.settimeout(min(1.0, self.keepalive / 4))
        connected = False
        # One buffer for every read, copied out at the size read: recv(chunk) allocates
        # a chunk-sized block per read and shrinks it, and those blocks fragmented
        # malloc's arenas (the soak's RSS creep, cloud/runtime.py tune_malloc).
        into = bytearray(self.chunk)
        window = memoryview(into)
        while True:
            stopping = self._stop.is_set()
            if stopping and time.monotonic() > self._stop_by:
                return
            try:
                n = sock.recv_into(into)
                data = bytes(window[:n])
            except TimeoutError:
                data = None
            now = time.monotonic()
            if data == b"":
                if stopping:
                    return  # the broker read our DISCONNECT, and every PUBACK before it
                raise ConnectionError("the broker closed the connection")
            if stopping:
                continue  # draining: deliver nothing more, the broker keeps it for next time
            if data:
                self._last_heard = now
                publishes, others = reader.feed(data, conn)
                for kind, body in others:
                    if kind == _CONNACK:
                        rc = body[1] if len(body) > 1 else 255
                        if rc:
                            log.error("broker refused the cloud's bulk session",
                                      extra={"reason": _REFUSED.get(rc, rc)})
                            raise ConnectionError(f"CONNACK {rc}")
                        connected = True
                        self._send(sock, subscribe_packet(1, self.topics), conn)
                        log.info("connected to broker", extra={"host": self.host, "port": self.port,
                                                               "session": "bulk", "session_present": bool(body[0] & 1)})
                        self.on_state(True)
                    elif kind == _SUBACK and b"\x80" in body[2:]:
                        # The filters without "$share/<group>/": the group name is a secret.
                        log.error("broker refused a bulk subscription",
                                  extra={"topics": ["/".join(t.split("/")[-4:]) for t in self.topics]})
                if publishes:
                    if not connected:
                        raise ConnectionError("PUBLISH before CONNACK")
                    metrics.BULK_RECEIVED.inc(len(publishes))
                    self.deliver(publishes, self)
            elif now - self._last_heard > self.keepalive * 1.5:
                raise ConnectionError("no word from the broker for 1.5 keepalives")
            self.keepalive_due()
