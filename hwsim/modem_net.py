"""The emulated modem's TCP/IP commands: one data bearer and TCP sockets of
the modem's own stack, driven over the same UART as every other AT command.

A mixin of ``ModemEmulator`` (hwsim/modem.py). The syntax, the answers and the
unsolicited results follow the SIMCom A76XX Series AT Command Manual (TCP/IP
chapter) and the SIM7500/SIM7600 Series TCPIP AT Command Manual; TinyGSM's
TinyGsmClientA7672x.h and TinyGsmClientSIM7600.h (an independent driver) read
the same answers:

- ``AT+NETOPEN``: ``OK`` at once, ``+NETOPEN: 0`` when the PDP context is up
  (``+NETOPEN: 1``, network failure, when the network carries no data);
  ``+IP ERROR: Network is already opened`` and ``ERROR`` when it is up already.
- ``AT+CIPOPEN=<link>,"TCP","<host>",<port>``: ``OK`` at once, the TCP handshake
  across the air, then ``+CIPOPEN: <link>,<err>`` (0 connected, 1 network
  failure, 10 timeout).
- ``AT+CIPSEND=<link>,<len>`` (len 1..1500): the prompt ``>`` with no line end,
  exactly len raw bytes, ``OK``, then ``+CIPSEND: <link>,<req>,<cnf>``.
- ``AT+CIPRXGET=1``: manual receive: data waits here, ``+CIPRXGET: 1,<link>``
  says some arrived into an empty buffer; ``AT+CIPRXGET=2,<link>[,<len>]``
  answers ``+CIPRXGET: 2,<link>,<read_len>,<rest_len>``, the raw bytes, ``OK``;
  ``AT+CIPRXGET=4,<link>`` the length waiting.
- ``AT+CIPCLOSE=<link>``: ``OK`` then ``+CIPCLOSE: <link>,0``.
- The connection lost: ``+IPCLOSE: <link>,<reason>`` (1 closed by the remote
  end, 2 sending timed out: TCP gave up); the bearer lost (coverage):
  ``+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY``.

The real TCP connection to the broker is opened here, when the firmware asks,
and only while the modem has a data bearer; every byte crosses the air model
of hwsim/link.py (loss, retransmission stalls, latency, transmit energy).
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from hwsim.events import Recorder
from hwsim.link import AirLink

MAX_SEND = 1500          # bytes per AT+CIPSEND / AT+CIPRXGET=2 (the manuals' range)
LINKS = 10               # link numbers 0..9
NETOPEN_S = 1.0          # PDP context activation
NETOPEN_FAIL_S = 3.0     # ... refused by a network that carries no data
BROKER_REFUSED_S = 1.0   # a connect the far end refuses
TLS_RECORD_OVERHEAD = 29  # per TLS record on the air: header 5, AES-GCM nonce 8 and tag 16
RX_BUFFER = 64 * 1024    # the modem's receive buffer per link: past it the broker must wait

CIPSEND = re.compile(r"AT\+CIPSEND=(\d),(\d+)")
CIPOPEN = re.compile(r'AT\+CIPOPEN=(\d),"TCP","([^"]+)",(\d+)', re.IGNORECASE)
CIPRXGET = re.compile(r"AT\+CIPRXGET=([0-4])(?:,(\d)(?:,(\d+))?)?")
CIPCLOSE = re.compile(r"AT\+CIPCLOSE=(\d)")


@dataclass
class Sock:
    link: int
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    connected: bool = False
    rx: bytearray = field(default_factory=bytearray)
    up: asyncio.Queue = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task] = field(default_factory=list)
    gave_up: bool = False  # TCP exhausted its retransmissions: the connection is reset
    tls: bool = False  # an SSL session (hwsim/modem_ssl.py), not a TCP/IP link


class NetCommands:
    air: AirLink | None = None  # set by the runner: the air between this modem and the broker
    bearer = False
    manual_rx = False
    socks: dict[int, Sock] = {}
    rec: Recorder  # the modem's (hwsim/modem.py), as are the two methods below

    def data_ready(self) -> bool:
        raise NotImplementedError

    def _urc(self, line: str | bytes) -> None:
        raise NotImplementedError

    def _net_reset(self) -> None:
        """Power cycle or reboot: the bearer and every socket are gone, silently."""
        for s in list(getattr(self, "socks", {}).values()):
            self._drop(s, None)
        self.socks = {}
        self.bearer = False
        self.manual_rx = False
        self._ssl_reset()

    def _ssl_reset(self) -> None:
        raise NotImplementedError

    def _ssl_push(self, s: Sock, data: bytes) -> None:
        raise NotImplementedError

    # --- commands -----------------------------------------------------------------
    def net_prompt(self, raw: str) -> int | None:
        """The payload length an AT+CIPSEND (or an SSL command: hwsim/modem_ssl.py)
        will take after its prompt, or None when the modem answers at once instead."""
        if raw[3:6].upper() in ("CCH", "CCE"):
            return self.ssl_prompt(raw)
        m = CIPSEND.fullmatch(raw.upper())
        if not m:
            return None
        s, n = self.socks.get(int(m.group(1))), int(m.group(2))
        return n if s is not None and s.connected and 1 <= n <= MAX_SEND else None

    def ssl_prompt(self, raw: str) -> int | None:
        raise NotImplementedError

    def ssl_send(self, raw: str, payload: bytes) -> list[str]:
        raise NotImplementedError

    def ssl_answer(self, raw: str) -> list[str | bytes] | None:
        raise NotImplementedError

    def net_send(self, raw: str, payload: bytes) -> list[str]:
        if raw[3:6].upper() in ("CCH", "CCE"):
            return self.ssl_send(raw, payload)
        m = CIPSEND.fullmatch(raw.upper())
        assert m is not None
        s = self.socks.get(int(m.group(1)))
        if s is None or not s.connected:
            self._later(0.0, f"+CIPSEND: {m.group(1)},{len(payload)},-1")
            return ["OK"]
        s.up.put_nowait(payload)
        self._later(0.0, f"+CIPSEND: {s.link},{len(payload)},{len(payload)}")
        return ["OK"]

    def net_answer(self, raw: str) -> list[str | bytes] | None:
        """The answer to a TCP/IP command line, or None when it is not one."""
        cmd = raw.strip().upper()
        if cmd[3:6] in ("CCH", "CCE", "CSS"):
            return self.ssl_answer(raw)
        if cmd == "AT+NETOPEN":
            return self._netopen()
        if cmd == "AT+NETOPEN?":
            return [f"+NETOPEN: {int(self.bearer)}", "OK"]
        if cmd == "AT+NETCLOSE":
            for s in list(self.socks.values()):
                self._drop(s, None)
            self.bearer = False
            self._later(0.2, "+NETCLOSE: 0")
            return ["OK"]
        if cmd.startswith("AT+CIPSEND="):
            return ["ERROR"]  # no prompt: the link is not connected, or the length is out of range
        if m := CIPOPEN.fullmatch(raw.strip()):  # the raw line: the host keeps its case
            return self._cipopen(int(m.group(1)), m.group(2), int(m.group(3)))
        if m := CIPRXGET.fullmatch(cmd):
            return self._ciprxget(int(m.group(1)), m.group(2), m.group(3))
        if m := CIPCLOSE.fullmatch(cmd):
            s = self.socks.get(int(m.group(1)))
            if s is None:
                return ["ERROR"]
            self._drop(s, None)
            self._later(0.0, f"+CIPCLOSE: {s.link},0")
            return ["OK"]
        return None

    def _netopen(self) -> list[str | bytes]:
        if self.bearer:
            return ["+IP ERROR: Network is already opened", "ERROR"]

        async def activate() -> None:
            ok = self.data_ready()
            await asyncio.sleep(self.rec.real(NETOPEN_S if ok else NETOPEN_FAIL_S))
            ok = ok and self.data_ready()
            self.bearer = ok
            if not ok:
                self.rec.record("link", state="refused", reason="no network")
            self._urc(f"+NETOPEN: {0 if ok else 1}")
        self._spawn_net(activate())
        return ["OK"]

    def _cipopen(self, link: int, host: str, port: int) -> list[str | bytes]:
        if not self.bearer or link >= LINKS or link in self.socks:
            return ["ERROR"]
        s = Sock(link)
        self.socks[link] = s
        self._spawn_net(self._connect(s, host, port))
        return ["OK"]

    def _ciprxget(self, mode: int, link: str | None, length: str | None) -> list[str | bytes]:
        if mode in (0, 1) and link is None:
            self.manual_rx = mode == 1
            return ["OK"]
        s = self.socks.get(int(link)) if link is not None else None
        if s is None:
            return ["ERROR"]
        if mode == 4:
            return [f"+CIPRXGET: 4,{s.link},{len(s.rx)}", "OK"]
        if mode != 2:
            return ["ERROR"]  # 3 (hex) is not used by the firmware
        if not s.rx:
            return ["+IP ERROR: No data", "ERROR"]
        n = min(int(length) if length else MAX_SEND, MAX_SEND, len(s.rx))
        data = bytes(s.rx[:n])
        del s.rx[:n]
        return [f"+CIPRXGET: 2,{s.link},{n},{len(s.rx)}", data, "OK"]  # data, then CR LF OK CR LF

    # --- the connection -----------------------------------------------------------
    async def _connect(self, s: Sock, host: str, port: int) -> None:
        air = self.air
        assert air is not None
        rec = self.rec
        why, err = None, 1
        if not air.network_up():
            why = "no network"
        elif not air.broker_up():
            await asyncio.sleep(rec.real(BROKER_REFUSED_S))
            why = "broker down"
        else:
            syn = air.transmit(60)  # the handshake crosses the lossy air too
            if syn is None:
                await asyncio.sleep(rec.real(air.syn_timeout_s()))
                why, err = "timed out (loss)", 10
            else:
                await asyncio.sleep(rec.real(syn + air.latency_s()))
                try:
                    s.reader, s.writer = await asyncio.open_connection(host, port)
                except OSError as exc:
                    why = str(exc)
        if self.socks.get(s.link) is not s:  # closed or power-cycled meanwhile
            if s.writer is not None:
                s.writer.close()
            return
        if why is not None:
            del self.socks[s.link]
            rec.record("link", state="refused", reason=why)
            self._urc(f"+CIPOPEN: {s.link},{err}")
            return
        assert s.writer is not None
        s.connected = True
        air.opened += 1
        air.open_writers.add(s.writer)
        rec.record("link", state="up", to=f"{host}:{port}")
        self._urc(f"+CIPOPEN: {s.link},0")
        s.tasks = [self._spawn_net(self._downlink(s)), self._spawn_net(self._uplink(s))]

    async def _downlink(self, s: Sock) -> None:
        air = self.air
        assert air is not None and s.reader is not None
        try:
            while data := await s.reader.read(4096):
                if not air.passes():
                    break
                if not await air.carry(len(data) + (TLS_RECORD_OVERHEAD if s.tls else 0), up=False):
                    s.gave_up = True
                    break
                if not air.passes() or not s.connected:
                    break
                while len(s.rx) > RX_BUFFER and s.connected:
                    await asyncio.sleep(0.05)  # the firmware reads slowly: TCP's window closes
                if s.tls and not getattr(self, "cch_manual_rx", False):
                    self._ssl_push(s, data)  # AT+CCHSET's recv_mode 0: the data comes as it is
                    continue
                announce = not s.rx
                s.rx += data
                if announce and s.tls:
                    self._urc(f"+CCHEVENT: {s.link},RECV EVENT")
                elif announce and self.manual_rx and not s.tls:
                    self._urc(f"+CIPRXGET: 1,{s.link}")
        except (ConnectionError, OSError):
            pass
        self._drop(s, 2 if s.gave_up else 1)

    async def _uplink(self, s: Sock) -> None:
        air = self.air
        assert air is not None and s.writer is not None
        try:
            while True:
                data = await s.up.get()
                if not air.passes():
                    break
                if not await air.carry(len(data) + (TLS_RECORD_OVERHEAD if s.tls else 0), up=True):
                    s.gave_up = True
                    break
                if not air.passes() or not s.connected:
                    break
                s.writer.write(data)
                await s.writer.drain()
        except (ConnectionError, OSError):
            pass
        self._drop(s, 2 if s.gave_up else 1)

    def _drop(self, s: Sock, reason: int | None) -> None:
        """The connection ends: reason None is the firmware's own close (or a
        power cycle), else the +IPCLOSE reason it is told."""
        table = getattr(self, "cch", {}) if s.tls else self.socks
        if table.get(s.link) is s:
            del table[s.link]
        was = s.connected
        s.connected = False
        if s.writer is not None:
            if self.air is not None:
                self.air.open_writers.discard(s.writer)
            s.writer.close()
        for t in s.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        if was:
            self.rec.record("link", state="down")
            if reason is not None and self.bearer:
                self._urc(f"+CCH_PEER_CLOSED: {s.link}" if s.tls else f"+IPCLOSE: {s.link},{reason}")

    def net_watch(self) -> None:
        """From the modem's tick: the bearer goes with the data network."""
        if self.bearer and not self.data_ready():
            self.bearer = False
            for s in list(self.socks.values()):
                self._drop(s, None)
            self._urc("+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY")
            if getattr(self, "cch_started", False):  # the SSL service goes with the bearer
                for s in list(self.cch.values()):  # type: ignore[attr-defined]
                    self._drop(s, None)
                self.cch_started = False
                self._urc("+CCH: CCH STOP")

    # --- helpers ------------------------------------------------------------------
    def _later(self, scenario_s: float, line: str) -> None:
        async def say() -> None:
            await asyncio.sleep(self.rec.real(scenario_s))
            self._urc(line)
        self._spawn_net(say())

    def _spawn_net(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self.__dict__.setdefault("_net_tasks", set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task
