# The modem driver's reader and the socket over AT (app/netsock.py) against a
# scripted modem on a real loopback socket. The modem's side is written from
# the SIMCom A76XX / SIM7600 TCP/IP manuals' examples, not from the driver:
#   AT+CIPSEND=0,5      ->  ">" (no line end), 5 bytes, "OK", "+CIPSEND: 0,5,5"
#   AT+CIPRXGET=2,0,n   ->  "+CIPRXGET: 2,0,<read_len>,<rest_len>", raw bytes, "OK"
#   AT+NETOPEN          ->  "OK", then "+NETOPEN: 0"
#   AT+CIPOPEN=0,...    ->  "OK", then "+CIPOPEN: 0,0"
# and it writes in small, odd chunks, so lines, prompts and payloads are cut anywhere.
import asyncio
import os
import mpytest
from mpytest import eq
from app.modem import Modem
from app.netsock import Socket

PORTS = [int(p) for p in (os.getenv("PERS_TEST_PORTS") or "47311,47312").split(",")]
# Raw socket data holding everything a line reader would trip on.
NASTY = b"\r\nOK\r\n+CIPRXGET: 1,0\r\n>\x00\xff+"


class Clock:
    def ticks_ms(self):
        import time
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        import time
        return time.ticks_diff(a, b)

    def sleep_ms(self, ms):
        return asyncio.sleep_ms(ms)


class Peer:
    # The modem's end of the UART: what it was sent, and what it writes back in 3-byte chunks.
    def __init__(self):
        self.got = []
        self.payloads = []
        self.rx = b""  # socket data waiting in the modem
        self.late = b""  # data that arrives just after the read that empties the buffer

    async def out(self, w, data):
        for i in range(0, len(data), 3):
            w.write(data[i:i + 3])
            await w.drain()
            await asyncio.sleep_ms(1)

    async def serve(self, r, w):
        while True:
            line = await r.readline()
            if not line:
                return
            cmd = line.strip().decode()
            self.got.append(cmd)
            await self.answer(cmd, r, w)

    async def answer(self, cmd, r, w):
        if cmd.startswith("AT+CIPSEND=0,"):
            n = int(cmd.split(",")[1])
            if n > 1500:
                await self.out(w, b"\r\nERROR\r\n")
                return
            if n == 3:  # the prompt and a URC in one write
                w.write(b"\r\n> \r\n+CIPRXGET: 1,0\r\n")
                await w.drain()
            else:
                await self.out(w, b"\r\n>")
            data = b""
            while len(data) < n:
                data += await r.read(n - len(data))
            self.payloads.append(data)
            await self.out(w, b"\r\nOK\r\n\r\n+CIPSEND: 0,%d,%d\r\n" % (n, n))
        elif cmd.startswith("AT+CIPRXGET=2,0,"):
            n = min(int(cmd.split(",")[2]), len(self.rx))
            data, self.rx = self.rx[:n], self.rx[n:]
            # a data URC lands inside the answer, before its header
            await self.out(w, b"\r\n+CIPRXGET: 1,0\r\n\r\n+CIPRXGET: 2,0,%d,%d\r\n" % (n, len(self.rx))
                           + data + b"\r\nOK\r\n")
            if not self.rx and self.late:  # announced once, into the buffer just emptied
                self.rx, self.late = self.late, b""
                await self.out(w, b"\r\n+CIPRXGET: 1,0\r\n")
        elif cmd == "AT+CSQ":
            await self.out(w, b"\r\n+CSQ: 20,99\r\n\r\n+IPCLOSE: 0,1\r\n\r\nOK\r\n")
        elif cmd == "AT+CEREG?":  # a call ends and the 2G domain changes while it answers
            await self.out(w, b"\r\nNO CARRIER\r\n\r\n+CREG: 1\r\n\r\n+CEREG: 1,5\r\n\r\nOK\r\n")
        elif cmd == "AT+NETOPEN":
            await self.out(w, b"\r\nOK\r\n")
            await asyncio.sleep_ms(20)
            await self.out(w, b"\r\n+NETOPEN: 0\r\n")
        elif cmd.startswith("AT+CIPOPEN=0,"):
            await self.out(w, b"\r\nOK\r\n")
            await asyncio.sleep_ms(20)
            await self.out(w, b"\r\n+CIPOPEN: 0,0\r\n")
        elif cmd == "AT+PUSH":  # the test's own trigger: data arrives from the network
            self.rx += NASTY
            await self.out(w, b"\r\nOK\r\n\r\n+CIPRXGET: 1,0\r\n")
        else:
            await self.out(w, b"\r\nOK\r\n")


class Net:
    # Stands where app/netsock.py's Socket sits: it records the URCs the modem hands it.
    def __init__(self):
        self.urcs = []

    def urc(self, line):
        self.urcs.append(line)
        return True

    def lost(self, why):
        pass


async def connect(peer, port):
    server = await asyncio.start_server(peer.serve, "127.0.0.1", port)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    m = Modem(Clock(), r, w)
    m.start()
    m.ready = True
    return server, m


async def reader_scenario():
    peer = Peer()
    server, m = await connect(peer, PORTS[0])
    net = m.net = Net()
    # the prompt: the payload goes only after ">", the answer after it
    eq(await m.prompted("AT+CIPSEND=0,5", b"HELLO"), ["OK"])
    eq(peer.payloads, [b"HELLO"])
    eq(await m.prompted("AT+CIPSEND=0,3", b"abc"), ["OK"])  # "> " then a URC, one chunk
    eq(peer.payloads, [b"HELLO", b"abc"])
    peer.payloads = [b"HELLO"]
    # a refused prompt: the answer ends the exchange and nothing is written
    eq(await m.prompted("AT+CIPSEND=0,2000", b"x" * 10), ["ERROR"])
    eq(len(peer.payloads), 1)
    # binary payload: exactly read_len raw bytes, whatever they hold
    eq(await m.ok("AT+PUSH"), True)
    peer.rx = NASTY
    lines = await m.cmd("AT+CIPRXGET=2,0,1500")
    eq(lines, ["+CIPRXGET: 2,0,%d,0" % len(NASTY), "OK"])
    eq(m.payload, NASTY)
    m.payload = b""
    # URCs inside an answer go to the socket, not into the answer
    eq(await m.cmd("AT+CSQ"), ["+CSQ: 20,99", "OK"])
    assert "+IPCLOSE: 0,1" in net.urcs, net.urcs
    assert "+CIPSEND: 0,5,5" in net.urcs, net.urcs
    assert net.urcs.count("+CIPRXGET: 1,0") >= 2, net.urcs
    eq(await m.cmd("AT"), ["OK"])  # and the line is clean afterwards
    # A call's NO CARRIER amid another answer is the call's URC, not that answer's end;
    # "+CREG:" is not the answer of AT+CEREG? (the name, not a substring, must match).
    urcs = []
    m.on_urc = urcs.append
    m.net = None
    eq(await m.cmd("AT+CEREG?"), ["+CEREG: 1,5", "OK"])
    eq(urcs, ["NO CARRIER", "+CREG: 1"])
    server.close()


async def socket_scenario():
    peer = Peer()
    server, m = await connect(peer, PORTS[1])
    s = Socket(m)
    await s.open("broker.example", 1883)
    assert 'AT+CIPOPEN=0,"TCP","broker.example",1883' in peer.got, peer.got
    assert "AT+CIPRXGET=1" in peer.got, peer.got
    big = bytes(range(256)) * 8  # 2048 bytes: two sends of at most 1500
    s.write(big)
    await s.drain()
    eq([len(p) for p in peer.payloads], [1500, 548])
    eq(b"".join(peer.payloads), big)
    peer.late = b"LATE"
    eq(await m.ok("AT+PUSH"), True)  # data arrives: "+CIPRXGET: 1,0"
    got = b""
    while len(got) < len(NASTY):
        got += await s.read(7)
    eq(got, NASTY)
    # the announcement of data that came right after the emptying read is not lost
    eq(await asyncio.wait_for_ms(s.read(10), 2000), b"LATE")
    # the network closes it: the reader sees the end of the stream
    await m.cmd("AT+CSQ")  # its answer carries "+IPCLOSE: 0,1"
    eq(await s.read(10), b"")
    eq(s.closed, True)
    server.close()


class SslModem:
    clock = Clock()


def test_the_ssl_sessions_urcs_as_the_application_note_lists_them():
    # SIMCom A7600 Series SSL Application Note V1.00, 4.1.2 (unsolicited result codes),
    # verbatim but for <session_id> 0 and <err> 5 filled in; "+CCH: CCH STOP" from the
    # A76XX AT Command Manual V1.09, 19.4, as drivers written against it quote it.
    for urc, lost, data in (("+CCHEVENT: 0,RECV EVENT", False, True),
                            ("+CCH_RECV_CLOSED: 0,5", True, False),
                            ("+CCH_PEER_CLOSED: 0", True, False),
                            ("+CCH: CCH STOP", True, False)):
        s = Socket(SslModem())
        s.tls = True
        eq(s.urc(urc), True)  # the socket's news, not the Modem's
        eq((s.closed, s._avail), (lost, data))


def test_reader_prompt_binary_payload_and_urcs_inside_answers():
    asyncio.run(reader_scenario())


def test_socket_opens_sends_in_chunks_reads_and_sees_the_close():
    asyncio.run(socket_scenario())


mpytest.run(globals())
