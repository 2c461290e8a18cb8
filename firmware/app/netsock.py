# One TCP connection through the modem's own TCP/IP stack, over the same UART
# as every other AT command: the UART stays in command mode, so registration
# polls, calls and SMS interleave with the data, each exchange under the
# Modem's lock. connect() gives what app/mqtt.py's Client uses of a stream
# pair: read(n), write(data), drain(), close().
#
# The commands and their answers, from the SIMCom A76XX Series AT Command
# Manual (TCP/IP chapter) and the SIM7500/SIM7600 Series TCPIP AT Command
# Manual, checked against TinyGSM's TinyGsmClientA7672x.h and
# TinyGsmClientSIM7600.h (an independent driver of the same commands):
#   AT+CIPRXGET=1           OK; from then on data waits in the modem and
#                           "+CIPRXGET: 1,<link>" says some arrived
#   AT+NETOPEN              OK, later "+NETOPEN: <err>" (0: the bearer is up);
#                           "+IP ERROR: Network is already opened" + ERROR if it was
#   AT+NETOPEN?             "+NETOPEN: 1" while the bearer is up
#   AT+CIPOPEN=<link>,"TCP","<host>",<port>   OK, later "+CIPOPEN: <link>,<err>"
#   AT+CIPSEND=<link>,<len> ">" (no line end), <len> bytes, OK, then
#                           "+CIPSEND: <link>,<req>,<cnf>" (cnf -1: the link broke);
#                           at most 1500 bytes a send
#   AT+CIPRXGET=2,<link>,<len>   "+CIPRXGET: 2,<link>,<read_len>,<rest_len>",
#                           exactly read_len raw bytes, OK (len at most 1500;
#                           TinyGSM notes the last field is what stays unread)
#   AT+CIPCLOSE=<link>      OK, later "+CIPCLOSE: <link>,<err>"
#   URCs: "+IPCLOSE: <link>,<reason>" (0 local, 1 remote, 2 send timeout),
#         "+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY" (the bearer is gone), "+CIPERROR: <err>"
#
# With TLS (device.json "tls": the broker verified against /data/ca.pem) the modem's
# SSL stack carries the connection instead: the same stream pair, its session 0
# opened by app/tlsopen.py, and these commands (A7600 SSL Application Note, TinyGSM):
#   AT+CCHSEND=0,<len>      ">", len bytes, OK, then "+CCHSEND: 0,<err>" (AT+CCHSET=1,1)
#   AT+CCHRECV=0,<len>      OK, "+CCHRECV: DATA,0,<n>", n raw bytes, "+CCHRECV: 0,<err>"
#   AT+CCHCLOSE=0           OK, later "+CCHCLOSE: 0,<err>"
#   URCs: "+CCHEVENT: 0,RECV EVENT" (data into an empty buffer), "+CCH_PEER_CLOSED: 0",
#         "+CCH_RECV_CLOSED: 0,<err>" (receiving failed), "+CCH: CCH STOP" (the bearer is gone)
# Only the opening is a module of its own, loaded for it and let go after: what
# stays is these few branches, so TLS costs the heap little (docs/firmware.md).
from app import Wake
from micropython import const

_LINK = const(0)
_MAX = const(1500)  # bytes per AT+CIPSEND and per AT+CIPRXGET=2 (the manuals' limit)
_NETOPEN_MS = const(30000)
_CIPOPEN_MS = const(30000)
_SEND_MS = const(20000)  # the "+CIPSEND:" confirmation, behind TCP's own retransmissions
_IDLE_MS = const(30000)  # a reader with nothing announced looks at the link state this often


async def connect(m, host, port, ca=None):
    # (reader, writer) of a TCP connection through modem m (the radio's, on now);
    # with ca (the CA file's path), TLS by the modem's SSL stack.
    if m is None or not m.ready:
        raise OSError("no modem")
    old = m.net
    if old is not None and not old.closed:
        await old.aclose()
    s = Socket(m)
    if ca:
        s.tls = True
        import sys
        import app
        from app import tlsopen
        try:
            await tlsopen.start(s, host, port, ca)
        finally:
            # the opening's code leaves the heap until the next connect (~1.1 KB)
            sys.modules.pop(tlsopen.__name__, None)
            delattr(app, "tlsopen")
            del tlsopen
    else:
        await s.open(host, port)
    return s, s


class Socket:
    def __init__(self, modem):
        self.m = modem
        self.closed = False
        self.why = None
        self.tls = False  # the modem's SSL session 0, not TCP link 0
        self._end = None  # TLS: "+CCHRECV: 0,<err>", a read's bytes are all in
        self._avail = False  # the modem holds data for us
        self._rx = Wake(modem.clock)  # data announced, or the link closed
        self._res = None  # the last "+NETOPEN:", "+CIPOPEN:", "+CIPSEND:" URC
        self._got = Wake(modem.clock)
        self._out = b""

    # --- what the modem says on its own (Modem._urc gives every URC here first) ---
    def urc(self, line):
        if line[:4] == "+CCH":
            # The SSL session's (short keys: a string constant over 10 characters is a heap object)
            k = line[4:8]
            if k == "EVEN":  # "+CCHEVENT: 0,RECV EVENT"
                self._avail = True
                self._rx.set()
            elif k == "RECV":  # "+CCHRECV: 0,<err>" (the DATA header is the Modem's: Modem._raw)
                self._end = line
                self._rx.set()
            elif k == "STAR" or k == "OPEN" or k == "SEND":
                self._res = line
                self._got.set()
            elif k[0] == "_" or k == ": CC":
                # "+CCH_PEER_CLOSED: 0", "+CCH_RECV_CLOSED: 0,<err>", "+CCH: CCH STOP"
                self.lost(line)
            return True  # "+CCHCLOSE:", "+CCHSTOP:": nothing more to do
        if line.startswith("+CIPRXGET: 1"):
            self._avail = True
            self._rx.set()
            return True
        if line.startswith("+NETOPEN:") or line.startswith("+CIPOPEN:") or line.startswith("+CIPSEND:"):
            self._res = line
            self._got.set()
            return True
        if (line.startswith("+IPCLOSE:") or line.startswith("+CIPEVENT:") or line.startswith("+CIPERROR:")
                or line == "RDY" or line.startswith("*ATREADY")):
            self.lost(line)
            return line[0] == "+"  # a boot banner is the modem's news too
        return line.startswith("+CIPCLOSE:")

    def lost(self, why):
        # The connection is over (a close URC, the modem off or rebooted): the
        # reader sees the end of the stream, the writer an error.
        if not self.closed:
            self.closed = True
            self.why = why
        self._rx.set()
        self._got.set()

    async def _result(self, prefix, ms, lines=()):
        # The URC that ends a command's work ("+CIPOPEN: 0,0"), or None. Some
        # results may come before the OK instead (A76XX: "+CCHSTART: 0" then OK):
        # then they are in the answer's lines.
        for ln in lines:
            if ln.startswith(prefix):
                return ln
        t0 = self.m.clock.ticks_ms()
        while True:
            r = self._res
            if r is not None and r.startswith(prefix):
                self._res = None
                return r
            left = ms - self.m.clock.ticks_diff(self.m.clock.ticks_ms(), t0)
            if self.closed or left <= 0:
                return None
            self._got.clear()
            await self._got.wait_ms(left)

    # --- open and close -------------------------------------------------------------
    async def open(self, host, port):
        m = self.m
        m.net = self
        if not await m.ok("AT+CIPRXGET=1"):
            raise OSError("CIPRXGET")
        self._res = None
        lines = await m.cmd("AT+NETOPEN", 5000)
        if lines and lines[-1] == "OK":
            r = await self._result("+NETOPEN:", _NETOPEN_MS)
            if r != "+NETOPEN: 0":
                raise OSError("no bearer: %s" % r)
        else:  # "Network is already opened": make sure
            lines = await m.cmd("AT+NETOPEN?") or ()
            if "+NETOPEN: 1" not in lines:
                raise OSError("no bearer")
        self.closed = False
        if not await m.ok('AT+CIPOPEN=%d,"TCP","%s",%d' % (_LINK, host, port), 5000):
            await m.cmd("AT+CIPCLOSE=%d" % _LINK, 5000)  # a link left open by an earlier life: free it
            raise OSError("CIPOPEN refused")
        r = await self._result("+CIPOPEN:", _CIPOPEN_MS)
        if r != "+CIPOPEN: 0,0":
            self.closed = True
            raise OSError("connect: %s" % r)

    def close(self):
        # Called synchronously by the MQTT client: the AT+CIPCLOSE goes from a task.
        if not self.closed:
            import asyncio
            asyncio.create_task(self.aclose())

    async def aclose(self):
        was = self.closed
        self.lost("closed")
        if not was and self.m.alive:
            await self.m.cmd(("AT+CCH" if self.tls else "AT+CIP") + "CLOSE=0", 5000)

    # --- the stream pair ---------------------------------------------------------------
    async def read(self, n):
        # Up to n bytes, b"" once the connection is closed.
        m = self.m
        while not self.closed:
            if not self._avail:
                self._rx.clear()
                if not self._avail:
                    await self._rx.wait_ms(_IDLE_MS)
                continue
            self._avail = False
            n = min(n, _MAX)
            if self.tls:
                self._end = None
                lines = await m.cmd("AT+CCH" + "RECV=0,%d" % n, 5000)
                if not lines or lines[-1] != "OK":
                    self.lost("no read")
                else:
                    # The A76XX answers OK first, then the data and the read's end as URCs
                    # (the end may come inside the answer instead, before the OK).
                    for ln in lines:
                        if ln[:9] == "+CCHRECV:":
                            self._end = ln
                    t0 = m.clock.ticks_ms()
                    while self._end is None and not self.closed:
                        self._rx.clear()
                        if m.clock.ticks_diff(m.clock.ticks_ms(), t0) > 5000:
                            self.lost("no read")
                        elif self._end is None:
                            await self._rx.wait_ms(1000)
                    data, m.payload = m.payload, b""
                    # No RECV EVENT comes for data into a buffer that was not empty: read
                    # on while reads come back full. Never cleared here: a RECV EVENT for
                    # data after this read may already be in.
                    if len(data) >= n:
                        self._avail = True
                    if data:
                        return data
                    continue
            else:
                lines = await m.cmd("AT+CIPRXGET=2,%d,%d" % (_LINK, n), 5000)
            data, m.payload = m.payload, b""
            if lines is None:
                self.lost("read timed out")
            elif lines[-1] == "OK":
                for ln in lines:
                    # More waiting: read on. Never cleared here: a "+CIPRXGET: 1"
                    # for data that came after this answer may already be in.
                    if ln.startswith("+CIPRXGET: 2,") and ln.split(",")[-1] != "0":
                        self._avail = True
                if data:
                    return data
        return b""

    def write(self, data):
        self._out = self._out + data if self._out else data  # no copy for the usual one packet

    async def drain(self):
        while self._out:
            if self.closed:
                raise OSError("closed: %s" % self.why)
            chunk = self._out if len(self._out) <= _MAX else self._out[:_MAX]
            self._res = None
            tls = self.tls
            lines = await self.m.prompted(("AT+CCH" if tls else "AT+CIP") + "SEND=0,%d" % len(chunk), chunk, _SEND_MS)
            if not lines or lines[-1] != "OK":
                self.lost("send refused")
                continue
            r = await self._result("+CCHSEND:" if tls else "+CIPSEND:", _SEND_MS, lines)
            try:
                # TLS: "+CCHSEND: 0,<err>", all or nothing; TCP: "+CIPSEND: <link>,<req>,<cnf>"
                sent = (len(chunk) if r[-2:] == ",0" else -1) if tls else int(r.split(",")[2])
            except (AttributeError, IndexError, TypeError, ValueError):  # r None: no result came
                sent = -1
            if sent < 0:
                self.lost("send failed: %s" % r)
                continue
            # the modem may take less than asked: the rest again
            self._out = self._out[sent:] if sent < len(self._out) else b""
