"""The watch gateway's TCP server: one asyncio loop in its own thread.

A connection's first byte picks its protocol: ``[`` the 3G/SeTracker frames, ``I``
(or ``T`` for TRV) the IW text protocol; anything else is refused. The first
frame names the watch (its IMEI), which must be registered with that protocol
(``cloud.domain.gateway_devices``); an unknown IMEI is refused, logged and counted.

Every frame becomes an up message of the MQTT contract and goes through
``Ingestor.accept``, in a worker thread (two: alarms never wait behind positions).
With an MQTT bridge in the process, the frames are handed to its worker
(``submit``): one writer for every ingress, the urgent lane first, so a gateway
SOS waits neither behind positions nor for a database lock another writer holds.
An alarm's reply is the ingest's ``alert_ack``, which the ingest sends only after
its commit: it reaches ``send_command`` here and leaves as ``AL`` / ``IWBP10#``.
Other frames are replied to once the ingest has returned (stored).

What bad input costs (each counted in ``pers_gateway_rejected_total{reason}``):
bytes that start no frame, a frame longer than ``max_frame_bytes``, a frame not
complete within ``frame_timeout_s`` of its first byte (slow-loris), nothing at all
for ``idle_timeout_s`` -- each closes that one connection and nothing else."""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cloud import metrics
from cloud.domain.gateway_devices import gateway_devices, protocol_of
from cloud.gateway import iw, messages, setracker
from cloud.gateway.setracker import FrameError
from cloud.store.errors import is_transient

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from cloud.domain.ingest import Ingestor, Outcome

log = logging.getLogger("pers.gateway")

QUEUED_PER_DEVICE = 20  # downlinks kept for a watch that is not connected, newest last
READ_CHUNK = 4096


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


class Connection:
    """One watch's TCP connection."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.peer = str(writer.get_extra_info("peername"))
        self.protocol: str | None = None
        self.imei: str | None = None
        self.maker = "3G"  # 3G frames: answered in the watch's own maker code and index form
        self.index: str | None = None
        self.alarm_replies: dict[str, bytes] = {}  # mid -> the reply, sent once committed
        self.awaiting_ack: dict[str, str | None] = {}  # keyword (3G) or serial (IW) -> cid
        self.serials = itertools.count(1)

    def next_serial(self) -> str:
        return f"{next(self.serials) % 1_000_000:06d}"

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class WatchGateway:
    def __init__(self, sm: sessionmaker[Session], clock, *, host: str, port: int,
                 frame_timeout_s: float = 10.0, idle_timeout_s: float = 900.0, max_frame_bytes: int = 16384,
                 max_connections: int = 20000):
        self.sm, self.clock = sm, clock
        self.host, self.port = host, port
        self.frame_timeout_s, self.idle_timeout_s = frame_timeout_s, idle_timeout_s
        self.max_frame_bytes, self.max_connections = max_frame_bytes, max_connections
        self.ingestor: Ingestor | None = None
        # Another ingress's worker to store through (the MQTT bridge's ``submit``), if any.
        self.submit: Callable[[str, bytes], Future] | None = None
        self._devices: dict[str, str] = {}  # gateway watches: id -> protocol (commands are routed by it)
        self._by_device: dict[str, Connection] = {}
        self._queued: dict[str, deque[tuple[str, dict]]] = {}
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._start_error: BaseException | None = None
        # Alarms and acks on one worker, the rest on another: an SOS never waits behind positions.
        self._urgent = ThreadPoolExecutor(1, thread_name_prefix="gateway-urgent")
        self._bulk = ThreadPoolExecutor(1, thread_name_prefix="gateway-bulk")
        self._thread = threading.Thread(target=self._run, name="watch-gateway", daemon=True)

    def attach(self, ingestor: Ingestor, submit: Callable[[str, bytes], Future] | None = None) -> None:
        """The ingestor, and optionally the worker to store through (``MqttBridge.submit``)."""
        if self.ingestor is not None:
            raise RuntimeError("the gateway already has an ingestor")
        self.ingestor, self.submit = ingestor, submit

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        if self.ingestor is None:
            raise RuntimeError("the gateway was started without an ingestor (attach one first)")
        self._devices = gateway_devices(self.sm)
        self._thread.start()
        if not self._ready.wait(timeout) or self._start_error is not None:
            raise RuntimeError(f"the watch gateway did not start on {self.host}:{self.port}: {self._start_error}")
        log.info("watch gateway listening", extra={"host": self.host, "port": self.port,
                                                   "devices": len(self._devices)})

    def stop(self) -> None:
        self._stopping.set()
        loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            self._thread.join(timeout=5)
        self._urgent.shutdown(wait=False, cancel_futures=True)
        self._bulk.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, limit=READ_CHUNK * 4))
            self.port = self._server.sockets[0].getsockname()[1]  # port 0: the one the system gave
        except OSError as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._by_device.values()):
            conn.writer.close()
        assert self._loop is not None
        self._loop.stop()

    # --- the CommandSender port (any thread) ---------------------------------------------
    def handles(self, device_id: str) -> bool:
        """Does this device talk through the gateway (its commands go here, not to MQTT)?"""
        return device_id in self._devices

    def send_command(self, device_id: str, command: dict) -> None:
        if self._loop is not None and not self._stopping.is_set():
            self._loop.call_soon_threadsafe(self._down, device_id, "cmd", command)

    def publish_config(self, device_id: str, config: dict) -> None:
        if self._loop is not None and not self._stopping.is_set():
            self._loop.call_soon_threadsafe(self._down, device_id, "config", config)

    # --- one connection ---------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(writer)
        self._open += 1
        label = "unknown"
        metrics.GATEWAY_CONNECTIONS.labels(label).inc()
        buf = bytearray()
        partial_since: float | None = None
        try:
            if self._open > self.max_connections:
                raise _Rejected("too_many_connections")
            while True:
                now = time.monotonic()
                if buf or conn.imei is None:  # a frame under way, or no frame yet: the short fuse
                    started = partial_since if partial_since is not None else now
                    timeout = started + self.frame_timeout_s - now
                    if partial_since is None:
                        partial_since = now
                else:
                    timeout = self.idle_timeout_s
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), max(timeout, 0.001))
                except TimeoutError:
                    raise _Rejected("slow_frame" if buf or conn.imei is None else "idle") from None
                if not data:
                    return
                if conn.protocol is None:
                    conn.protocol = self._sniff(data)
                    metrics.GATEWAY_CONNECTIONS.labels(label).dec()
                    label = conn.protocol
                    metrics.GATEWAY_CONNECTIONS.labels(label).inc()
                buf += data
                try:
                    frames = (setracker.split(buf, self.max_frame_bytes) if conn.protocol == "setracker"
                              else iw.split(buf, self.max_frame_bytes))
                except FrameError as exc:
                    raise _Rejected(exc.reason) from None
                partial_since = time.monotonic() if buf else None
                for frame in frames:
                    await self._frame(conn, frame)
                    await writer.drain()
        except _Rejected as rej:
            metrics.GATEWAY_REJECTED.labels(rej.reason).inc()
            log.warning("watch gateway connection refused", extra={"reason": rej.reason, "detail": rej.detail[:200],
                                                                   "peer": conn.peer, "imei": conn.imei,
                                                                   "protocol": conn.protocol})
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug tripped by one watch's bytes: that connection only
            metrics.GATEWAY_REJECTED.labels("internal_error").inc()
            log.exception("watch gateway connection failed", extra={"peer": conn.peer, "imei": conn.imei})
        finally:
            self._open -= 1
            metrics.GATEWAY_CONNECTIONS.labels(label).dec()
            writer.close()
            await self._gone(conn)

    @staticmethod
    def _sniff(data: bytes) -> str:
        first = data.lstrip(b"\r\n ")[:1]
        if first == b"[":
            return "setracker"
        if first in (b"I", b"T"):
            return "iw"
        raise _Rejected("unknown_protocol", repr(data[:16]))

    async def _gone(self, conn: Connection) -> None:
        if conn.imei is None or self._by_device.get(conn.imei) is not conn:
            return
        del self._by_device[conn.imei]
        if not self._stopping.is_set():
            await self._ingest(*messages.presence(conn.imei, False, self.clock.unix()), urgent=False)

    async def _login(self, conn: Connection, protocol: str, imei: str) -> None:
        loop = asyncio.get_running_loop()
        registered = await loop.run_in_executor(self._bulk, protocol_of, self.sm, imei)
        if registered != protocol:
            raise _Rejected("unknown_imei" if registered is None else "wrong_protocol", imei)
        conn.imei, self._devices[imei] = imei, protocol
        older = self._by_device.get(imei)
        self._by_device[imei] = conn
        if older is not None and older is not conn:
            older.writer.close()  # a watch has one connection: the older one is dead
        log.info("gateway watch connected", extra={"imei": imei, "protocol": protocol, "peer": conn.peer})
        await self._ingest(*messages.presence(imei, True, self.clock.unix()), urgent=False)
        for kind, body in self._queued.pop(imei, ()):
            self._down(imei, kind, body)

    # --- frames in ---------------------------------------------------------------------
    async def _frame(self, conn: Connection, frame: setracker.Frame | iw.Frame) -> None:
        if isinstance(frame, setracker.Frame):
            await self._setracker(conn, frame)
        else:
            await self._iw(conn, frame)

    async def _setracker(self, conn: Connection, frame: setracker.Frame) -> None:
        if conn.imei is None:
            await self._login(conn, "setracker", frame.imei)
        elif frame.imei != conn.imei:
            raise _Rejected("imei_changed", frame.imei)
        conn.maker, conn.index = frame.maker, frame.index
        rep, answer = setracker.decode(frame)
        reply = setracker.encode(conn.maker, frame.imei, conn.index, answer) if answer else None
        if rep is None:
            await self._maybe_ack(conn, conn.awaiting_ack.pop(frame.type, None))
            if reply:
                conn.write(reply)
            return
        await self._report(conn, "setracker", rep, frame.content, reply)

    async def _iw(self, conn: Connection, frame: iw.Frame) -> None:
        if frame.type == "AP00":
            imei = iw.login_imei(frame)
            if imei is None:
                raise _Rejected("bad_login", frame.body)
            if conn.imei is None:
                await self._login(conn, "iw", imei)
            elif imei != conn.imei:
                raise _Rejected("imei_changed", imei)
            conn.write(iw.login_reply(self.clock.now()))
            return
        if conn.imei is None:
            raise _Rejected("not_logged_in", frame.type)
        serial = iw.serial_of(frame)
        if serial is not None and serial in conn.awaiting_ack:
            await self._maybe_ack(conn, conn.awaiting_ack.pop(serial))
            conn.write(iw.reply(frame))
            return
        rep = iw.decode(frame)
        if rep is None:
            conn.write(iw.reply(frame))
            return
        await self._report(conn, "iw", rep, frame.content, iw.reply(frame))

    async def _report(self, conn: Connection, protocol: str, rep: messages.Report, content: str,
                      reply: bytes | None) -> None:
        assert conn.imei is not None
        alarm = rep.kind == "alarm"
        metrics.GATEWAY_FRAMES.labels(protocol, rep.alarm or rep.kind).inc()
        if rep.note:
            log.info("alarm frame that is no alarm", extra={"imei": conn.imei, "why": rep.note})
        mid = messages.frame_mid(conn.imei, content) if rep.kind != "heartbeat" else messages.new_mid()
        topic, payload = messages.up_message(conn.imei, rep, mid)
        if alarm and reply is not None:
            conn.alarm_replies[mid] = reply  # sent by the alert_ack, which leaves after the commit
        outcome = await self._ingest(topic, payload, urgent=alarm)
        if alarm:
            pending = conn.alarm_replies.pop(mid, None)
            if outcome is not None and outcome.accepted and pending is not None:
                conn.write(pending)  # stored without an alert_ack (none is due): still after its commit
            elif outcome is None or not outcome.accepted:
                log.error("gateway alarm not stored: no reply, the watch will send it again",
                          extra={"imei": conn.imei, "reason": outcome.reason if outcome else "stopped"})
        elif reply is not None:
            conn.write(reply)

    async def _maybe_ack(self, conn: Connection, cid: str | None) -> None:
        if cid and conn.imei:
            await self._ingest(*messages.command_ack(conn.imei, cid, self.clock.unix()), urgent=True)

    async def _ingest(self, topic: str, payload: bytes, *, urgent: bool) -> Outcome | None:
        loop = asyncio.get_running_loop()
        try:
            if self.submit is not None:
                # Into the bridge's lanes: an urgent message is queued at once (never waits
                # for room), so the alarms of many watches wait side by side in its fair lane;
                # a bulk one may wait for room (backpressure), in a thread of ours.
                future = (self.submit(topic, payload) if urgent
                          else await loop.run_in_executor(self._bulk, self.submit, topic, payload))
                return await asyncio.wrap_future(future)
            return await loop.run_in_executor(self._urgent if urgent else self._bulk, self._until_stored,
                                              topic, payload)
        except RuntimeError:  # the executors are shut down: stopping
            return None

    def _until_stored(self, topic: str, payload: bytes) -> Outcome | None:
        """``Ingestor.accept``, retried while the store is unavailable (no reply meanwhile:
        the watch re-sends what it was not answered)."""
        assert self.ingestor is not None
        delay = 0.1
        while not self._stopping.is_set():
            try:
                return self.ingestor.accept(topic, payload)
            except Exception as exc:
                if not is_transient(exc):
                    metrics.REJECTED.labels("internal_error").inc()
                    log.exception("gateway ingest failed", extra={"topic": topic})
                    return None
                log.warning("store unavailable; retrying", extra={"topic": topic, "retry_in_s": delay})
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        return None

    # --- downlinks (on the loop) -----------------------------------------------------------
    def _down(self, device_id: str, kind: str, body: dict[str, Any]) -> None:
        conn = self._by_device.get(device_id)
        protocol = self._devices.get(device_id, "?")
        if kind == "cmd" and body.get("type") == "alert_ack":
            # The reply to an alarm: only "received" has one in these protocols.
            if conn is not None and body.get("stage") == "received":
                reply = conn.alarm_replies.pop(str(body.get("ref")), None)
                if reply is not None:
                    conn.write(reply)
            return
        if conn is None:
            q = self._queued.setdefault(device_id, deque(maxlen=QUEUED_PER_DEVICE))
            q.append((kind, body))
            metrics.GATEWAY_DOWNLINKS.labels(protocol, "queued").inc()
            return
        frames = self._encode(conn, kind, body)
        if not frames:
            metrics.GATEWAY_DOWNLINKS.labels(protocol, "unsupported").inc()
            log.warning("command not carried by the watch's protocol",
                        extra={"imei": device_id, "protocol": protocol, "type": body.get("type", kind)})
            return
        for frame in frames:
            conn.write(frame)
        metrics.GATEWAY_DOWNLINKS.labels(protocol, "sent").inc(len(frames))

    def _encode(self, conn: Connection, kind: str, body: dict[str, Any]) -> list[bytes]:
        assert conn.imei is not None
        cid = body.get("cid") if kind == "cmd" else None
        if conn.protocol == "setracker":
            parts = setracker.command(body) if kind == "cmd" else setracker.config(body)
            for _, keyword in parts:
                conn.awaiting_ack[keyword] = cid
            return [setracker.encode(conn.maker, conn.imei, conn.index, content) for content, _ in parts]
        serials: list[str] = []

        def serial() -> str:
            serials.append(conn.next_serial())
            return serials[-1]
        frames = iw.command(body, conn.imei, serial()) if kind == "cmd" else iw.config(body, conn.imei, serial)
        if frames:
            for s in serials:
                conn.awaiting_ack[s] = cid
        return frames


def gateway_from_settings(settings, sm, clock) -> WatchGateway | None:
    if settings.gateway_port is None:
        return None
    return WatchGateway(sm, clock, host=settings.gateway_host, port=settings.gateway_port,
                        frame_timeout_s=settings.gateway_frame_timeout_s,
                        idle_timeout_s=settings.gateway_idle_timeout_s,
                        max_frame_bytes=settings.gateway_max_frame_bytes,
                        max_connections=settings.gateway_max_connections)

