# The MQTT client and the modem driver over real loopback sockets, each against
# a scripted peer written here, under the asyncio of MicroPython.
import asyncio
import mpytest
from mpytest import eq
from app import mqttpkt as pkt
from app.modem import Modem
from app.mqtt import Client


class Clock:
    def ticks_ms(self):
        import time
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        import time
        return time.ticks_diff(a, b)

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    async def wait_for_ms(self, aw, ms):
        return await asyncio.wait_for_ms(aw, ms)


async def read_packet(r, buf):
    while True:
        p, rest = pkt.split(buf[0])
        if p is not None:
            buf[0] = rest
            return p
        buf[0] += await r.read(512)


# No getsockname() in the unix port: the pytest runner picks free ports for us
# (below the kernel's ephemeral range, bench/ports.py); run by hand, random ones.
import os  # noqa: E402 (next to the one use that needs it)
import random  # noqa: E402
_ports = os.getenv("PERS_TEST_PORTS")
if _ports:
    MQTT_PORT, MODEM_PORT = (int(p) for p in _ports.split(","))
else:
    MQTT_PORT = 20000 + random.getrandbits(12)
    MODEM_PORT = MQTT_PORT + 1

log = []


async def fake_broker(r, w):
    buf = [b""]
    ignored = False
    while True:
        p = await read_packet(r, buf)
        if p.kind == pkt.CONNECT:
            log.append(("connect", p.body[7]))
            w.write(b"\x20\x02\x00\x00")
        elif p.kind == pkt.PUBLISH:
            log.append(("publish", p.dup, p.pid))
            if not ignored:
                ignored = True  # the first copy is "lost": the client must retransmit
                continue
            w.write(pkt.puback(p.pid))
            w.write(pkt.publish("pers/v1/d/cmd", b'{"x":1}', 1, False, 77))
        elif p.kind == pkt.PUBACK:
            log.append(("puback", p.pid))
        elif p.kind == pkt.SUBSCRIBE:
            w.write(bytes([0x90, 3]) + p.body[0:2] + b"\x01")
        elif p.kind == pkt.PINGREQ:
            log.append(("ping",))
            w.write(b"\xd0\x00")
            await w.drain()
            await asyncio.sleep_ms(200)
            w.close()
            return
        await w.drain()


async def mqtt_scenario():
    server = await asyncio.start_server(fake_broker, "127.0.0.1", MQTT_PORT)
    got = []
    c = Client(Clock(), "d", "pw", keepalive=1, will=("pers/v1/d/presence", b"{}"),
               on_message=lambda t, p: got.append((t, p)), timeout_ms=300)
    r, w = await asyncio.open_connection("127.0.0.1", MQTT_PORT)
    await c.connect(r, w)
    await c.publish("pers/v1/d/alert", b"{}")
    eq(await c.subscribe([("pers/v1/d/cmd", 1)]), [1])
    await asyncio.sleep_ms(700)             # a PINGREQ goes out at keepalive/2
    await asyncio.wait_for_ms(c.wait_closed(), 2000)  # the broker hangs up
    eq(c.connected, False)
    server.close()
    return got


def test_mqtt_client_retransmits_with_dup_and_acks_incoming():
    got = asyncio.run(mqtt_scenario())
    eq(log[0][0], "connect")
    eq(log[0][1] & 0x02, 0)  # clean_session = False
    eq(log[1][:2], ("publish", False))
    eq(log[2], ("publish", True, log[1][2]))  # same packet id, DUP set
    eq(got, [("pers/v1/d/cmd", b'{"x":1}')])
    assert ("puback", 77) in log, log
    assert ("ping",) in log, log


async def fake_modem(r, w):
    # Garbage, URCs and a command that never answers, around real answers.
    w.write(b"\r\n\xff\xfe\x00junk\r\nRDY\r\n")
    await w.drain()
    while True:
        line = await r.readline()
        if not line:
            return
        cmd = line.strip().decode()
        if cmd == "AT+CSQ":
            w.write(b"\r\n+CEREG: 1\r\n\r\n\xc3(\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
        elif cmd == "AT+SLOW":
            pass  # never answers
        elif cmd == "AT+CPIN?":
            w.write(b"\r\n+CPIN:READY\r\n\r\nOK\r\n")
        else:
            w.write(b"\r\nOK\r\n")
        await w.drain()


async def modem_scenario():
    server = await asyncio.start_server(fake_modem, "127.0.0.1", MODEM_PORT)
    r, w = await asyncio.open_connection("127.0.0.1", MODEM_PORT)
    m = Modem(Clock(), r, w)
    asyncio.create_task(m._rx())
    eq(await m.cmd("AT+SLOW", 200), None)   # a timeout is an answer, not a hang
    await m.bring_up()                       # CPIN without a space is fine
    lines = await m.cmd("AT+CSQ")
    eq(lines[-1], "OK")
    from app import at
    eq(at.csq_dbm(at.find(lines, "+CSQ")), -73)
    assert m.urcs >= 2, m.urcs  # "RDY" and the "+CEREG: 1" inside the CSQ answer
    assert m.registered.is_set()
    server.close()


def test_modem_survives_garbage_timeouts_and_urcs():
    asyncio.run(modem_scenario())


mpytest.run(globals())
