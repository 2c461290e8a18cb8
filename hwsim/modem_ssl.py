"""The emulated modem's SSL commands: its certificate files, SSL contexts and TLS
client sessions, driven over the same UART as every other AT command.

A mixin of ``ModemEmulator`` (hwsim/modem.py), beside the TCP/IP commands
(hwsim/modem_net.py) whose connection and air model it shares. Syntax, answers,
URCs and result codes from the SIMCom A76XX Series AT Command Manual, SSL
commands (AT+CSSLCFG, AT+CCERTDOWN/LIST/DELE, AT+CCHSET/START/STOP/SSLCFG/OPEN/
SEND/RECV/CLOSE), and the A76XX SSL application note:

- ``AT+CCERTDOWN="<file>",<len>``: the ``>`` prompt, exactly len bytes, ``OK``; the
  file lands in the modem's own file system, which keeps it across power cycles.
  ``AT+CCERTLIST``: ``+CCERTLIST: "<file>"`` per file; ``AT+CCERTDELE="<file>"``.
- ``AT+CSSLCFG="sslversion"|"authmode"|"cacert"|"enableSNI",<ctx>,<value>``: an SSL
  context (0..9). sslversion 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all; the A76XX
  offers nothing newer than TLS 1.2. authmode 0 none, 1 server verification.
- ``AT+CCHSET=<report_send_result>,<recv_mode>``: recv_mode 1, manual receive:
  data waits here and ``+CCHEVENT: <s>,RECV EVENT`` says some came into an empty buffer.
- ``AT+CCHSTART``: ``OK`` then ``+CCHSTART: 0`` (the PDP context up); ``ERROR`` if
  the service runs already. ``AT+CCHSTOP``: ``OK``, ``+CCHSTOP: 0``.
- ``AT+CCHSSLCFG=<s>,<ctx>``; ``AT+CCHOPEN=<s>,"<host>",<port>,2``: ``OK`` at once,
  TCP and the TLS handshake across the air, then ``+CCHOPEN: <s>,<err>``.
- ``AT+CCHSEND=<s>,<len>``: ``>``, len bytes, ``OK``, ``+CCHSEND: <s>,<err>``.
- ``AT+CCHRECV=<s>[,<len>]``: ``OK``, ``+CCHRECV: DATA,<s>,<n>``, n raw bytes, then
  ``+CCHRECV: <s>,0``.
- ``AT+CCHCLOSE=<s>``: ``OK``, ``+CCHCLOSE: <s>,0``; the far end closed:
  ``+CCH_PEER_CLOSED: <s>``; the bearer gone: ``+CCH: CCH STOP``.
- ``<err>``: 0 success, 4 peer closed, 5 operation timeout, 9 network error,
  14 connect socket error, 15 handshake error, 17 no network.

The handshake is real: Python's ``ssl`` (OpenSSL) verifies the broker on loopback
against the CA file the firmware downloaded here, and the host name it dialled, as
the modem's own TLS stack would; a CA that did not sign the broker's certificate,
or a name the certificate does not hold, fails with 15, as on the modem. (One
liberty: Python sends SNI for a host name whatever ``enableSNI`` says; the
firmware always enables it.)
"""
from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass

from hwsim.modem_net import Sock

SSL_SESSIONS = 2          # session ids 0 and 1
SSL_CONTEXTS = 10         # ctx 0..9
MAX_SSL_SEND = 2048       # bytes per AT+CCHSEND / AT+CCHRECV
MAX_CERT = 10240          # a certificate file: far more than a CA needs
# The TLS 1.2 full handshake's flights across the air (EC P-256 certificates):
# ClientHello; ServerHello, Certificate, ServerKeyExchange, ServerHelloDone;
# ClientKeyExchange, ChangeCipherSpec, Finished; ChangeCipherSpec, Finished.
HANDSHAKE_FLIGHTS = ((220, True), (1100, False), (140, True), (60, False))
CCHSTART_S = 1.0

VERSIONS = {0: ssl.TLSVersion.SSLv3, 1: ssl.TLSVersion.TLSv1, 2: ssl.TLSVersion.TLSv1_1, 3: ssl.TLSVersion.TLSv1_2}

CCERTDOWN = re.compile(r'AT\+CCERTDOWN="([^"]+\.(?:pem|der))",(\d+)', re.I)
CCERTDELE = re.compile(r'AT\+CCERTDELE="([^"]+)"', re.I)
CSSLCFG = re.compile(r'AT\+CSSLCFG="(sslversion|authmode|cacert|enableSNI)",(\d),("?)([^"]*)\3', re.I)
CCHSET = re.compile(r"AT\+CCHSET=([01])(?:,([01]))?")
CCHSSLCFG = re.compile(r"AT\+CCHSSLCFG=(\d),(\d)")
CCHOPEN = re.compile(r'AT\+CCHOPEN=(\d),"([^"]+)",(\d+)(?:,([12]))?', re.I)
CCHSEND = re.compile(r"AT\+CCHSEND=(\d),(\d+)")
CCHRECV = re.compile(r"AT\+CCHRECV=(\d)(?:,(\d+))?")
CCHCLOSE = re.compile(r"AT\+CCHCLOSE=(\d)")


@dataclass
class SslContextCfg:
    sslversion: int = 4
    authmode: int = 0
    cacert: str = ""
    sni: bool = False


class SslCommands:
    certs: dict[str, bytes]  # the modem's file system (hwsim/modem.py keeps it across power cycles)
    cch: dict[int, Sock] = {}

    def _ssl_reset(self) -> None:
        """Power cycle or reboot: contexts, the service and its sessions are gone; files stay."""
        for s in list(getattr(self, "cch", {}).values()):
            self._drop(s, None)  # type: ignore[attr-defined]
        self.cch = {}
        self.ssl_ctx = [SslContextCfg() for _ in range(SSL_CONTEXTS)]
        self.cch_ctx = [0] * SSL_SESSIONS
        self.cch_started = False
        self.cch_report_send = False
        self.cch_manual_rx = False

    # --- prompting commands ---------------------------------------------------------
    def ssl_prompt(self, raw: str) -> int | None:
        """The payload length AT+CCERTDOWN or AT+CCHSEND takes after its prompt, or
        None when the modem answers ERROR at once."""
        if m := CCERTDOWN.fullmatch(raw):
            n = int(m.group(2))
            return n if 0 < n <= MAX_CERT else None
        if m := CCHSEND.fullmatch(raw.upper()):
            s, n = self.cch.get(int(m.group(1))), int(m.group(2))
            return n if s is not None and s.connected and 1 <= n <= MAX_SSL_SEND else None
        return None

    def ssl_send(self, raw: str, payload: bytes) -> list[str]:
        if m := CCERTDOWN.fullmatch(raw):
            self.certs[m.group(1)] = payload
            self.rec.record("modem", state="certificate written", file=m.group(1), bytes=len(payload))  # type: ignore[attr-defined]
            return ["OK"]
        m = CCHSEND.fullmatch(raw.upper())
        assert m is not None
        sid = int(m.group(1))
        s = self.cch.get(sid)
        if s is None or not s.connected:
            self._report_send(sid, 4)
            return ["OK"]
        s.up.put_nowait(payload)
        self._report_send(sid, 0)
        return ["OK"]

    def _report_send(self, sid: int, err: int) -> None:
        if self.cch_report_send:
            self._later(0.0, f"+CCHSEND: {sid},{err}")  # type: ignore[attr-defined]

    # --- the other commands -----------------------------------------------------------
    def ssl_answer(self, raw: str) -> list[str | bytes] | None:
        """The answer to an SSL command line, or None when it is not one."""
        raw = raw.strip()
        cmd = raw.upper()
        if cmd.startswith("AT+CCERTDOWN=") or cmd.startswith("AT+CCHSEND="):
            return ["ERROR"]  # no prompt: a bad name or length, or no session
        if cmd == "AT+CCERTLIST":
            return [f'+CCERTLIST: "{name}"' for name in sorted(self.certs)] + ["OK"]
        if m := CCERTDELE.fullmatch(raw):
            return ["OK"] if self.certs.pop(m.group(1), None) is not None else ["ERROR"]
        if m := CSSLCFG.fullmatch(raw):
            return self._csslcfg(m.group(1).lower(), int(m.group(2)), m.group(4))
        if m := CCHSET.fullmatch(cmd):
            self.cch_report_send = m.group(1) == "1"
            self.cch_manual_rx = m.group(2) == "1"
            return ["OK"]
        if cmd == "AT+CCHSTART":
            return self._cchstart()
        if cmd == "AT+CCHSTOP":
            if not self.cch_started:
                return ["ERROR"]
            for s in list(self.cch.values()):
                self._drop(s, None)  # type: ignore[attr-defined]
            self.cch_started = False
            self._later(0.1, "+CCHSTOP: 0")  # type: ignore[attr-defined]
            return ["OK"]
        if m := CCHSSLCFG.fullmatch(cmd):
            sid, ctx = int(m.group(1)), int(m.group(2))
            if sid >= SSL_SESSIONS or ctx >= SSL_CONTEXTS:
                return ["ERROR"]
            self.cch_ctx[sid] = ctx
            return ["OK"]
        if m := CCHOPEN.fullmatch(raw):
            return self._cchopen(int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4) or 1))
        if m := CCHRECV.fullmatch(cmd):
            return self._cchrecv(int(m.group(1)), int(m.group(2) or MAX_SSL_SEND))
        if m := CCHCLOSE.fullmatch(cmd):
            s = self.cch.get(int(m.group(1)))
            if s is None:
                return ["ERROR"]
            self._drop(s, None)  # type: ignore[attr-defined]
            self._later(0.0, f"+CCHCLOSE: {s.link},0")  # type: ignore[attr-defined]
            return ["OK"]
        return None

    def _csslcfg(self, what: str, ctx: int, value: str) -> list[str | bytes]:
        if ctx >= SSL_CONTEXTS:
            return ["ERROR"]
        c = self.ssl_ctx[ctx]
        if what == "cacert":
            c.cacert = value
            return ["OK"]
        if not value.isdigit():
            return ["ERROR"]
        v = int(value)
        if what == "sslversion" and v <= 4:
            c.sslversion = v
        elif what == "authmode" and v <= 3:
            c.authmode = v
        elif what == "enablesni" and v <= 1:
            c.sni = v == 1
        else:
            return ["ERROR"]
        return ["OK"]

    def _cchstart(self) -> list[str | bytes]:
        if self.cch_started:
            return ["ERROR"]

        async def activate() -> None:
            ok = self.data_ready()  # type: ignore[attr-defined]
            await asyncio.sleep(self.rec.real(CCHSTART_S))  # type: ignore[attr-defined]
            ok = ok and self.data_ready()  # type: ignore[attr-defined]
            self.cch_started = ok
            if ok:
                self.bearer = True  # the same PDP context as AT+NETOPEN's
            self._urc(f"+CCHSTART: {0 if ok else 17}")  # type: ignore[attr-defined]
        self._spawn_net(activate())  # type: ignore[attr-defined]
        return ["OK"]

    def _cchopen(self, sid: int, host: str, port: int, client_type: int) -> list[str | bytes]:
        if not self.cch_started or sid >= SSL_SESSIONS or sid in self.cch:
            return ["ERROR"]
        s = Sock(sid, tls=True)
        self.cch[sid] = s
        self._spawn_net(self._tls_connect(s, host, port, client_type == 2))  # type: ignore[attr-defined]
        return ["OK"]

    def _tls_context(self, cfg: SslContextCfg) -> ssl.SSLContext:
        """What the modem's TLS stack does with the SSL context (ssl.SSLError when it cannot)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if cfg.sslversion in VERSIONS:
            ctx.minimum_version = VERSIONS[cfg.sslversion]
            ctx.maximum_version = VERSIONS[cfg.sslversion]
        if cfg.authmode == 0:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        pem = self.certs.get(cfg.cacert)
        if pem is None:
            raise ssl.SSLError(f"no CA file {cfg.cacert!r} on the modem")
        ctx.load_verify_locations(cadata=pem.decode(errors="replace"))
        return ctx

    async def _tls_connect(self, s: Sock, host: str, port: int, tls: bool) -> None:
        air = self.air  # type: ignore[attr-defined]
        rec = self.rec  # type: ignore[attr-defined]
        why, err = None, 14
        if not air.network_up():
            why, err = "no network", 9
        elif not air.broker_up():
            await asyncio.sleep(rec.real(1.0))
            why = "broker down"
        else:
            syn = air.transmit(60)
            if syn is None:
                await asyncio.sleep(rec.real(air.syn_timeout_s()))
                why, err = "timed out (loss)", 5
            else:
                await asyncio.sleep(rec.real(syn + air.latency_s()))
                for nbytes, up in HANDSHAKE_FLIGHTS if tls else ():
                    if not await air.carry(nbytes, up):
                        why, err = "TLS handshake lost on the air", 5
                        break
                if why is None:
                    try:
                        ctx = self._tls_context(self.ssl_ctx[self.cch_ctx[s.link]]) if tls else None
                        s.reader, s.writer = await asyncio.wait_for(
                            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if tls else None),
                            timeout=15)
                    except ssl.SSLError as exc:
                        why, err = f"TLS handshake failed: {getattr(exc, 'verify_message', None) or exc}", 15
                    except (OSError, TimeoutError) as exc:
                        why = str(exc) or type(exc).__name__
        if self.cch.get(s.link) is not s:  # closed or power-cycled meanwhile
            if s.writer is not None:
                s.writer.close()
            return
        if why is not None:
            del self.cch[s.link]
            rec.record("link", state="refused", reason=why)
            self._urc(f"+CCHOPEN: {s.link},{err}")  # type: ignore[attr-defined]
            return
        assert s.writer is not None
        s.connected = True
        air.opened += 1
        air.open_writers.add(s.writer)
        rec.record("link", state="up", to=f"{host}:{port}", tls=tls)
        self._urc(f"+CCHOPEN: {s.link},0")  # type: ignore[attr-defined]
        s.tasks = [self._spawn_net(self._downlink(s)), self._spawn_net(self._uplink(s))]  # type: ignore[attr-defined]

    def _cchrecv(self, sid: int, length: int) -> list[str | bytes]:
        s = self.cch.get(sid)
        if s is None:
            return ["ERROR"]
        n = min(length, MAX_SSL_SEND, len(s.rx))
        if n == 0:
            return ["OK", f"+CCHRECV: {sid},0"]
        data = bytes(s.rx[:n])
        del s.rx[:n]
        return ["OK", f"+CCHRECV: DATA,{sid},{n}", data, f"+CCHRECV: {sid},0"]
