"""Twins of off-the-shelf 4G SOS watches, in their own TCP protocols (docs/gateway.md).

Written from the protocols as the watches speak them (the frames published in
Traccar's decoder tests, the IW command tables), not from the cloud's gateway code:

- ``setracker``: frames ``[3G*<id>*<len hex>*<content>]``; a heartbeat ``LK,<steps>,
  <rolls>,<battery>`` every ``heartbeat_s``; an alarm ``AL,<ddmmyy>,<hhmmss>,A,...`` with
  the status word's bit 16 (SOS) or 21 (fall), answered ``AL``;
- ``iw``: a login ``IWAP00<imei>#`` answered ``IWBP00,...#``, heartbeats ``IWAP03``,
  alarms ``IWAP10...,01,en,00,#`` answered ``IWBP10#``, falls ``IWAPFD,...#`` answered ``IWBPFD#``.

As the watches do, a twin sends one alarm at a time and re-sends the same bytes
until it is answered (the reply names no alarm: it answers the one in flight),
across reconnects. It answers the cloud's commands: ``CR`` / ``IWBP16`` (locate)
with a position, the others with their keyword (3G) or serial (IW).
"""
from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

SOS_BIT, FALL_BIT = 1 << 16, 1 << 21


@dataclass
class GatewayStats:
    alarms_sent: Counter = field(default_factory=Counter)  # device -> distinct alarms
    replied: Counter = field(default_factory=Counter)      # device -> alarms answered
    stray_replies: int = 0  # alarm replies with no alarm in flight (a re-sent copy's, late)
    reply_ms: list = field(default_factory=list)           # first send -> reply
    resent: int = 0
    reconnects: int = 0
    commands: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)


def _dm(value: float, deg_digits: int) -> str:
    deg = int(abs(value))
    return f"{deg:0{deg_digits}d}{(abs(value) - deg) * 60:07.4f}"


class GatewayTwin:
    def __init__(self, imei: str, protocol: str, host: str, port: int, stats: GatewayStats, *,
                 resend_s: float = 3.0, heartbeat_s: float = 60.0):
        if protocol not in ("setracker", "iw"):
            raise ValueError(protocol)
        self.imei, self.protocol, self.host, self.port = imei, protocol, host, port
        self.stats, self.resend_s, self.heartbeat_s = stats, resend_s, heartbeat_s
        rnd = random.Random(imei)
        self.lat, self.lon = 45.70 + rnd.random() * 0.15, 4.78 + rnd.random() * 0.15
        self.queue: deque[tuple[bytes, float]] = deque()  # alarms not yet answered, oldest first
        self._in_flight = False  # the head alarm written since the last reply
        self.seq = 0
        self._writer: asyncio.StreamWriter | None = None
        self._wake = asyncio.Event()
        self._stop = False
        self._task: asyncio.Task | None = None

    # --- frames, as the watch writes them ---------------------------------------------
    def _3g(self, content: str) -> bytes:
        return f"[3G*{self.imei}*{len(content.encode()):04X}*{content}]".encode()

    def _position_3g(self, kind: str, status: int) -> str:
        now = datetime.now(UTC)
        # The speed field carries the alarm's number: two alarms in one second stay two.
        return (f"{kind},{now:%d%m%y},{now:%H%M%S},A,{self.lat:.6f},N,{self.lon:.6f},E,{self.seq % 1000}.0,0.0,"
                f"170.0,7,80,76,{self.seq},0,{status:08X},1,1,208,1,12345,67890,140,0")

    def _position_iw(self, tail: str) -> bytes:
        now = datetime.now(UTC)
        body = (f"{now:%y%m%d}A{_dm(self.lat, 2)}N{_dm(self.lon, 3)}E{self.seq % 1000:03d}.0{now:%H%M%S}"
                f"000.0006000907600102,208,1,12345,67890{tail}")
        return body.encode()

    def alarm_frame(self, kind: str) -> bytes:
        self.seq += 1
        if self.protocol == "setracker":
            return self._3g(self._position_3g("AL", FALL_BIT if kind == "fall" else SOS_BIT))
        if kind == "fall":  # a fall has its own type, answered IWBPFD
            return b"IWAPFD," + self._position_iw("") + b"#"
        return b"IWAP10" + self._position_iw(",01,en,00,") + b"#"

    def heartbeat(self) -> bytes:
        if self.protocol == "setracker":
            return self._3g(f"LK,{self.seq},0,76")
        return b"IWAP03,06000907600102,0,0#"

    def position(self) -> bytes:
        if self.protocol == "setracker":
            return self._3g(self._position_3g("UD", 0))
        return b"IWAP01" + self._position_iw("") + b"#"

    # --- behaviour ------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def sos(self, kind: str = "sos") -> None:
        self.queue.append((self.alarm_frame(kind), time.perf_counter()))
        self.stats.alarms_sent[self.imei] += 1
        self._wake.set()

    async def _run(self) -> None:
        delay = 0.5
        while not self._stop:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            self._writer = writer
            try:
                await self._session(reader, writer)
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
                self._writer = None
            if not self._stop:
                self.stats.reconnects += 1
                await asyncio.sleep(delay)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        end = b"]" if self.protocol == "setracker" else b"#"
        if self.protocol == "iw":
            writer.write(f"IWAP00{self.imei}#".encode())
            await writer.drain()
            if not (await reader.readuntil(b"#")).startswith(b"IWBP00,"):
                raise ConnectionError("login refused")
        writer.write(self.heartbeat())
        sending = asyncio.get_running_loop().create_task(self._send_alarms(writer))
        try:
            while True:
                frame = await asyncio.wait_for(reader.readuntil(end), self.heartbeat_s)
                self._handle(frame.decode(errors="replace"), writer)
        except TimeoutError:
            writer.write(self.heartbeat())
            raise ConnectionError("quiet: reconnect") from None
        finally:
            sending.cancel()

    async def _send_alarms(self, writer: asyncio.StreamWriter) -> None:
        """The alarm in flight, (re-)sent every resend_s until answered; then the next."""
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            frame, _ = self.queue[0]
            writer.write(frame)
            self._in_flight = True
            await writer.drain()
            head = self.queue[0]
            try:
                await asyncio.wait_for(self._answered(head), self.resend_s)
            except TimeoutError:
                self.stats.resent += 1

    async def _answered(self, head) -> None:
        while self.queue and self.queue[0] is head:
            await asyncio.sleep(0.02)

    def _handle(self, frame: str, writer: asyncio.StreamWriter) -> None:
        if self.protocol == "setracker":
            m = re.match(r"\[[A-Z0-9]{2}\*[0-9]+\*(?:[0-9A-Fa-f]{4}\*)?[0-9A-Fa-f]{4}\*(.*)\]$", frame, re.S)
            if m is None:
                self.stats.errors["bad_frame"] += 1
                return
            content = m.group(1)
            keyword = content.split(",", 1)[0]
            if keyword == "AL":
                self._reply_to_alarm()
            elif keyword not in ("LK",):
                self.stats.commands[keyword] += 1
                writer.write(self._3g(keyword))  # the watch answers a command with its keyword
                if keyword == "CR":
                    writer.write(self.position())
            return
        body = frame.rstrip("#")
        if body in ("IWBP10", "IWBPFD"):
            self._reply_to_alarm()
        elif body.startswith("IWBP") and "," in body and body[4:6] not in ("00",):
            kind, _imei, serial = (body.split(",") + ["", ""])[:3]
            self.stats.commands[kind] += 1
            writer.write(f"IWAP{kind[4:]},{serial}#".encode())
            if kind == "IWBP16":
                writer.write(self.position())

    def _reply_to_alarm(self) -> None:
        # These protocols' alarm reply names no alarm: the reply to a re-sent copy of
        # the alarm just answered would, taken for the next one, drop that one unsent
        # (a twin's loss, not the cloud's). A reply with no alarm frame written since
        # the last one answered is that stray copy's.
        if not self._in_flight:
            self.stats.stray_replies += 1
            return
        if self.queue:
            self._in_flight = False
            _, first_sent = self.queue.popleft()
            self.stats.replied[self.imei] += 1
            self.stats.reply_ms.append((time.perf_counter() - first_sent) * 1000)

    @property
    def idle(self) -> bool:
        return not self.queue


async def wait_answered(twins: list[GatewayTwin], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(t.idle for t in twins):
            return True
        await asyncio.sleep(0.1)
    return all(t.idle for t in twins)
