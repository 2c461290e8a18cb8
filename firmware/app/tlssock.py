# The broker connection over TLS, done by the modem's own SSL stack: the same
# stream pair as app/netsock.py, through the modem's "SSL" commands, over the
# same UART. The firmware never sees a key or a cipher; it gives the modem the
# CA it was provisioned with (/data/ca.pem) and asks it to verify the broker's
# certificate and name against it. Imported only when device.json says "tls".
#
# The commands, answers and URCs, from the SIMCom A76XX Series AT Command
# Manual (SSL commands; the A76XX SSL application note walks the same steps):
#   AT+CCERTLIST            '+CCERTLIST: "<file>"' per certificate file, OK
#   AT+CCERTDOWN="<file>",<len>   ">", exactly len bytes of PEM, OK
#   AT+CCERTDELE="<file>"   OK
#   AT+CSSLCFG="sslversion",<ctx>,3      TLS 1.2 (0 SSL3.0 ... 3 TLS1.2, 4 all)
#   AT+CSSLCFG="authmode",<ctx>,1        1: verify the server (0: no verification)
#   AT+CSSLCFG="cacert",<ctx>,"<file>"   the CA to verify it against
#   AT+CSSLCFG="enableSNI",<ctx>,1       send the host name (SNI)
#   AT+CCHSET=1,1           report each send's result ("+CCHSEND: <s>,<err>");
#                           manual receive: "+CCHEVENT: <s>,RECV EVENT" says data waits
#   AT+CCHSTART             OK and "+CCHSTART: 0" (either order); ERROR if started already
#   AT+CCHSSLCFG=<s>,<ctx>  the session uses that SSL context
#   AT+CCHOPEN=<s>,"<host>",<port>,2     OK, later "+CCHOPEN: <s>,<err>" (2: SSL/TLS client)
#   AT+CCHSEND=<s>,<len>    ">", len bytes, OK, then "+CCHSEND: <s>,<err>"
#   AT+CCHRECV=<s>,<len>    OK, "+CCHRECV: DATA,<s>,<n>", n raw bytes, "+CCHRECV: <s>,<err>"
#   AT+CCHCLOSE=<s>         OK, later "+CCHCLOSE: <s>,<err>"
#   URCs: "+CCH_PEER_CLOSED: <s>", "+CCH: CCH STOP" (the bearer is gone)
#   <err>: 0 success, 4 peer closed, 5 timeout, 9 network error, 14 connect socket
#   error, 15 handshake error (the broker's certificate or name did not verify) ...
import binascii
from app.netsock import Socket
from micropython import const

_S = const(0)  # the session (0 or 1)
_CTX = const(0)  # the SSL context
_MAX = const(1500)
_START_MS = const(30000)
_OPEN_MS = const(60000)  # TCP and the TLS handshake, across the air
_SEND_MS = const(20000)
_IDLE_MS = const(30000)


def ca_file(pem):
    # The CA's name on the modem says which CA it is: a new one is written, never confused.
    return "pers-%08x.pem" % (binascii.crc32(pem) & 0xFFFFFFFF)


class TlsSocket(Socket):
    def __init__(self, modem, ca_path):
        Socket.__init__(self, modem)
        self.ca_path = ca_path
        self._end = None  # "+CCHRECV: <s>,<err>": a read's data is all in

    def urc(self, line):
        if line.startswith("+CCHEVENT:"):
            self._avail = True
            self._rx.set()
            return True
        if line.startswith("+CCHRECV: 0,"):
            self._end = line
            self._rx.set()
            return True
        if line.startswith("+CCHOPEN:") or line.startswith("+CCHSTART:") or line.startswith("+CCHSEND:"):
            self._res = line
            self._got.set()
            return True
        if (line.startswith("+CCH_PEER_CLOSED:") or line.startswith("+CCH: CCH STOP")
                or line == "RDY" or line.startswith("*ATREADY")):
            self.lost(line)
            return line[0] == "+"
        return line.startswith("+CCHCLOSE:") or line.startswith("+CCHSTOP:")

    async def _answer(self, lines, prefix, ms):
        # Some firmware puts the result before OK: it is in the answer, or comes later.
        for ln in lines:
            if ln.startswith(prefix):
                return ln
        return await self._result(prefix, ms)

    async def _ca(self):
        # The CA into the modem's file system, unless it holds it already.
        with open(self.ca_path, "rb") as f:
            pem = f.read()
        name = ca_file(pem)
        m = self.m
        have = await m.cmd("AT+CCERTLIST", 5000) or ()
        if '+CCERTLIST: "%s"' % name in have:
            return name
        for ln in have:
            if ln.startswith('+CCERTLIST: "pers-'):  # an earlier CA of ours
                await m.cmd("AT+CCERTDELE=" + ln[12:], 5000)
        lines = await m.prompted('AT+CCERTDOWN="%s",%d' % (name, len(pem)), pem, 10000)
        if not lines or lines[-1] != "OK":
            raise OSError("CA not written to the modem: %s" % (lines and lines[-1]))
        print("tls: CA written to the modem as", name)
        return name

    async def open(self, host, port):
        m = self.m
        m.net = self
        name = await self._ca()
        for c in ('AT+CSSLCFG="sslversion",0,3', 'AT+CSSLCFG="authmode",0,1',
                  'AT+CSSLCFG="cacert",0,"%s"' % name, 'AT+CSSLCFG="enableSNI",0,1', "AT+CCHSET=1,1"):
            if not await m.ok(c):
                raise OSError(c)
        self._res = None
        lines = await m.cmd("AT+CCHSTART", 5000)
        if lines and lines[-1] == "OK":
            r = await self._answer(lines, "+CCHSTART:", _START_MS)
            if r != "+CCHSTART: 0":
                raise OSError("no bearer: %s" % r)
        # (ERROR: the SSL service runs already)
        self.closed = False
        if not await m.ok("AT+CCHSSLCFG=%d,%d" % (_S, _CTX)):
            raise OSError("CCHSSLCFG")
        self._res = None
        lines = await m.cmd('AT+CCHOPEN=%d,"%s",%d,2' % (_S, host, port), 5000)
        if not lines or lines[-1] != "OK":
            await m.cmd("AT+CCHCLOSE=%d" % _S, 5000)  # a session left open by an earlier life
            raise OSError("CCHOPEN refused")
        r = await self._answer(lines, "+CCHOPEN:", _OPEN_MS)
        if r != "+CCHOPEN: 0,0":
            self.closed = True
            if r == "+CCHOPEN: 0,15":
                raise OSError("TLS handshake failed: the broker's certificate does not verify against %s" % self.ca_path)
            raise OSError("connect: %s" % r)

    async def aclose(self):
        was = self.closed
        self.lost("closed")
        if not was and self.m.alive:
            await self.m.cmd("AT+CCHCLOSE=%d" % _S, 5000)

    async def read(self, n):
        m = self.m
        while not self.closed:
            if not self._avail:
                self._rx.clear()
                if not self._avail:
                    await self._rx.wait_ms(_IDLE_MS)
                continue
            self._avail = False
            self._end = None
            lines = await m.cmd("AT+CCHRECV=%d,%d" % (_S, min(n, _MAX)), 5000)
            if lines is None or lines[-1] != "OK":
                self.lost("read refused")
                break
            for ln in lines:
                if ln.startswith("+CCHRECV: 0,"):
                    self._end = ln
            t0 = m.clock.ticks_ms()
            while not self.closed:
                self._rx.clear()
                if self._end is not None:
                    break
                if m.clock.ticks_diff(m.clock.ticks_ms(), t0) > 5000:
                    self.lost("read timed out")
                    break
                await self._rx.wait_ms(1000)
            data, m.payload = m.payload, b""
            # The modem holds more than one read took: a new RECV EVENT comes
            # only for data into an empty buffer, so read on until it is empty.
            if data:
                self._avail = len(data) >= min(n, _MAX)
                return data
        return b""

    async def drain(self):
        while self._out:
            if self.closed:
                raise OSError("closed: %s" % self.why)
            chunk = self._out if len(self._out) <= _MAX else self._out[:_MAX]
            self._res = None
            lines = await self.m.prompted("AT+CCHSEND=%d,%d" % (_S, len(chunk)), chunk, _SEND_MS)
            if not lines or lines[-1] != "OK":
                self.lost("send refused")
                continue
            r = await self._answer(lines, "+CCHSEND:", _SEND_MS)
            if r != "+CCHSEND: 0,0":
                self.lost("send failed: %s" % r)
                continue
            self._out = self._out[len(chunk):]
