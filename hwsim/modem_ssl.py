"""The emulated modem's SSL commands: its certificate files, SSL contexts and TLS
client sessions, driven over the same UART as every other AT command.

A mixin of ``ModemEmulator`` (hwsim/modem.py), beside the TCP/IP commands
(hwsim/modem_net.py) whose connection and air model it shares. Sources, and what
each gives (tests/hwsim/test_modem_ssl_manual.py replays their exchanges):

[AN]  SIMCom "A7600 Series SSL Application Note" V1.00 (2020-06-19; A7600XX, A5360E,
      A7670X): the examples of chapter 3 (the commands and answers in order), the
      result codes (4.1.1) and the URCs (4.1.2).
[TG]  TinyGSM's A76xx SSL client (lewisxhe/TinyGSM-fork, TinyGsmClientA76xxSSL.h,
      written against the modem by LilyGO, the T-A76XX boards' maker): how a driver
      reads AT+CCHOPEN, AT+CCHSEND, AT+CCHRECV and AT+CCHRECV?.
[AT]  The A76XX Series AT Command Manual's SSL chapter (V1.09, section 19), quoted
      by drivers written against it: the URC "+CCH: CCH STOP".

What hwsim does, and where it comes from:

- ``AT+CCERTDOWN="<file>",<len>``: the ``>`` prompt, exactly len bytes, ``OK`` [AN 3.7];
  the file name ends in .pem or .der [TG]. The file lands in the modem's own file
  system, which keeps it across power cycles. ``AT+CCERTLIST``: ``+CCERTLIST:
  "<file>"`` per file, ``OK`` [AN 3.7]; ``AT+CCERTDELE="<file>"`` [TG].
- ``AT+CSSLCFG="sslversion"|"authmode"|"cacert"|"enableSNI",<ctx>,<value>`` [AN 3.2-3.4,
  TG]: sslversion 0 SSL3.0, 1 TLS1.0, 2 TLS1.1, 3 TLS1.2, 4 all [TG]: nothing newer
  than TLS 1.2. authmode 0 none, 1 the server, 2 both, 3 the client only [AN, TG].
- ``AT+CCHSET=<report_send>[,<recv_mode>]`` [AN 3.1, TG]: report_send 1 gives
  ``+CCHSEND: <s>,<err>`` after each send's ``OK`` [AN 3.1]. recv_mode 0 (the
  default): the data comes unasked, ``+CCHRECV: DATA,<s>,<len>`` and the raw bytes
  [AN 3.1-3.5]; 1, manual receive: the data waits, ``+CCHEVENT: <s>,RECV EVENT``
  says some came into an empty buffer [AN 4.1.2], AT+CCHRECV reads it.
- ``AT+CCHSTART``: ``OK`` then ``+CCHSTART: 0`` [AN 3.1]; ``+CCHSTART: <err>`` when the
  PDP context does not come up, ``ERROR`` when the service runs already (the
  manual's "If failed: ERROR"; that a second start is such a failure is our reading).
  ``AT+CCHSTOP``: ``OK``, ``+CCHSTOP: 0`` [AN 3.1].
- ``AT+CCHSSLCFG=<s>,<ctx>`` [AN 3.2]; ``AT+CCHOPEN=<s>,"<host>",<port>[,<client_type>
  [,<bind_port>]]`` (client_type 1 TCP, 2 SSL/TLS) [AN 1.4, 3.1-3.3]: ``OK`` at once,
  TCP and the TLS handshake across the air, then ``+CCHOPEN: <s>,<err>`` [AN 3.1, TG].
- ``AT+CCHSEND=<s>,<len>``: ``>``, len bytes, ``OK``, ``+CCHSEND: <s>,<err>`` [AN 3.1, TG].
- ``AT+CCHRECV=<s>[,<max_recv_len>]``: ``OK``, ``+CCHRECV: DATA,<s>,<n>``, n raw bytes,
  then ``+CCHRECV: <s>,0`` [TG]; at most 2048 bytes a read (a Zephyr A76xx driver
  quoting the manual). ``AT+CCHRECV?``: ``+CCHRECV: LEN,<len0>,<len1>``, ``OK`` [TG].
- ``AT+CCHCLOSE=<s>``: ``OK``, ``+CCHCLOSE: <s>,0`` [AN 3.1]. The far end closed:
  ``+CCH_PEER_CLOSED: <s>`` [AN 4.1.2]; the bearer gone: ``+CCH: CCH STOP`` [AT].
- ``<err>`` [AN 4.1.1]: ERR below. The manual has no code of its own for a
  certificate that does not verify: it is a failed handshake, 15, whatever the
  reason (a CA that did not sign the broker's certificate, a name it does not
  hold, a TLS version the server will not speak). 13 is a name that does not
  resolve, 5 a timeout, 14 a refused connection, 19 "not set certificates": hwsim
  gives 19 when the context verifies the server and names no CA file, or one the
  modem does not hold (the manual says no more than the code's name).
  Not found in any source, so not modelled: +CCH_RECV_CLOSED's <err> values and
  when the modem sends it (the firmware takes it as the session lost all the same).

The handshake is real: Python's ``ssl`` (OpenSSL) verifies the broker on loopback
against the CA file the firmware downloaded here, and the host name it dialled, as
the modem's own TLS stack would. (One liberty: Python sends SNI for a host name
whatever ``enableSNI`` says; the firmware always enables it.)
"""
from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass

from hwsim.modem_net import Sock

SSL_SESSIONS = 2          # session ids 0 and 1
SSL_CONTEXTS = 10         # ctx 0..9
MAX_SSL_SEND = 2048       # bytes per AT+CCHSEND / AT+CCHRECV / pushed +CCHRECV: DATA
MAX_CERT = 10240          # a certificate file: far more than a CA needs
# The TLS 1.2 full handshake's flights across the air (EC P-256 certificates):
# ClientHello; ServerHello, Certificate, ServerKeyExchange, ServerHelloDone;
# ClientKeyExchange, ChangeCipherSpec, Finished; ChangeCipherSpec, Finished.
HANDSHAKE_FLIGHTS = ((220, True), (1100, False), (140, True), (60, False))
CCHSTART_S = 1.0

# The command result <err> codes [AN 4.1.1].
ERR = {"ok": 0, "unknown": 2, "busy": 3, "peer closed": 4, "timeout": 5, "transfer failed": 6,
       "memory": 7, "invalid parameter": 8, "network": 9, "open session": 10, "state": 11,
       "create socket": 12, "dns": 13, "connect socket": 14, "handshake": 15, "close socket": 16,
       "no network": 17, "send timeout": 18, "no certificate": 19}

VERSIONS = {0: ssl.TLSVersion.SSLv3, 1: ssl.TLSVersion.TLSv1, 2: ssl.TLSVersion.TLSv1_1, 3: ssl.TLSVersion.TLSv1_2}

CCERTDOWN = re.compile(r'AT\+CCERTDOWN="([^"]+\.(?:pem|der))",(\d+)', re.I)
CCERTDELE = re.compile(r'AT\+CCERTDELE="([^"]+)"', re.I)
CSSLCFG = re.compile(r'AT\+CSSLCFG="(sslversion|authmode|cacert|enableSNI)",(\d),("?)([^"]*)\3', re.I)
CCHSET = re.compile(r"AT\+CCHSET=([01])(?:,([01]))?")
CCHSSLCFG = re.compile(r"AT\+CCHSSLCFG=(\d),(\d)")
CCHOPEN = re.compile(r'AT\+CCHOPEN=(\d),"([^"]+)",(\d+)(?:,([12])(?:,(\d+))?)?', re.I)
CCHSEND = re.compile(r"AT\+CCHSEND=(\d),(\d+)")
CCHRECV = re.compile(r"AT\+CCHRECV=(\d)(?:,(\d+))?")
CCHCLOSE = re.compile(r"AT\+CCHCLOSE=(\d)")


class NoCertificate(Exception):
    """The context verifies the server and names no CA file the modem holds: <err> 19."""


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
        if cmd == "AT+CCHRECV?":
            held = [len(self.cch[i].rx) if i in self.cch else 0 for i in range(SSL_SESSIONS)]
            return ["+CCHRECV: LEN," + ",".join(map(str, held)), "OK"]
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
            self._urc(f"+CCHSTART: {0 if ok else ERR['no network']}")  # type: ignore[attr-defined]
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
            raise NoCertificate(f"no CA file {cfg.cacert!r} on the modem" if cfg.cacert else "no CA file set")
        ctx.load_verify_locations(cadata=pem.decode(errors="replace"))
        return ctx

    async def _tls_connect(self, s: Sock, host: str, port: int, tls: bool) -> None:
        air = self.air  # type: ignore[attr-defined]
        rec = self.rec  # type: ignore[attr-defined]
        why, err = None, ERR["connect socket"]
        if not air.network_up():
            why, err = "no network", ERR["network"]
        elif not air.broker_up():
            await asyncio.sleep(rec.real(1.0))
            why = "broker down"
        else:
            syn = air.transmit(60)
            if syn is None:
                await asyncio.sleep(rec.real(air.syn_timeout_s()))
                why, err = "timed out (loss)", ERR["timeout"]
            else:
                await asyncio.sleep(rec.real(syn + air.latency_s()))
                for nbytes, up in HANDSHAKE_FLIGHTS if tls else ():
                    if not await air.carry(nbytes, up):
                        why, err = "TLS handshake lost on the air", ERR["timeout"]
                        break
                if why is None:
                    try:
                        ctx = self._tls_context(self.ssl_ctx[self.cch_ctx[s.link]]) if tls else None
                        s.reader, s.writer = await asyncio.wait_for(
                            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if tls else None),
                            timeout=15)
                    except NoCertificate as exc:
                        why, err = f"TLS not started: {exc}", ERR["no certificate"]
                    except ssl.SSLError as exc:
                        why = f"TLS handshake failed: {getattr(exc, 'verify_message', None) or exc}"
                        err = ERR["handshake"]
                    except socket.gaierror as exc:
                        why, err = f"DNS: {exc}", ERR["dns"]
                    except TimeoutError:
                        why, err = "timed out", ERR["timeout"]
                    except OSError as exc:
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

    def _ssl_push(self, s: Sock, data: bytes) -> None:
        """AT+CCHSET recv_mode 0: what the server sent, unasked, as [AN 3.1] shows it
        ("+CCHRECV: DATA,0,757" and the bytes), in pieces of at most MAX_SSL_SEND."""
        for i in range(0, len(data), MAX_SSL_SEND):
            piece = data[i:i + MAX_SSL_SEND]
            self._urc(b"\r\n+CCHRECV: DATA,%d,%d\r\n" % (s.link, len(piece)) + piece)  # type: ignore[attr-defined]

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
