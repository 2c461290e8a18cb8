"""The emulated modem's TCP/IP commands on its UART (hwsim/modem_net.py), with
no firmware: a client speaks AT over a real loopback UART and the modem opens a
real TCP connection to a loopback echo peer. What is asserted is what the
SIMCom A76XX / SIM7600 TCP/IP manuals give: OK first and the result as a URC
later, the ">" prompt, the +CIPRXGET read header and its raw bytes, and the
URCs of a lost bearer or connection."""
from __future__ import annotations

import asyncio
import re

from hwsim.events import Recorder
from hwsim.link import AirLink
from hwsim.modem import ModemEmulator
from hwsim.scenario import ModemSpec, WorldSpec
from hwsim.world import World

SPEED = 20.0


class Uart:
    """The host's end of the modem UART: writes commands, waits for what it expects."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.r, self.w = reader, writer
        self.seen = b""  # everything the modem wrote
        self.pos = 0     # how far expect() has consumed it

    async def expect(self, pattern: bytes, timeout: float = 5.0) -> re.Match:
        rx = re.compile(pattern, re.S)
        end = asyncio.get_running_loop().time() + timeout
        while True:
            m = rx.search(self.seen, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = end - asyncio.get_running_loop().time()
            assert left > 0, f"no {pattern!r} in {self.seen[self.pos:]!r}"
            try:
                data = await asyncio.wait_for(self.r.read(4096), left)
            except TimeoutError:
                continue
            assert data, "the modem closed the UART"
            self.seen += data

    async def take(self, n: int) -> bytes:
        """Exactly the next n raw bytes the modem wrote."""
        while len(self.seen) - self.pos < n:
            data = await asyncio.wait_for(self.r.read(4096), 5)
            assert data, "the modem closed the UART"
            self.seen += data
        self.pos += n
        return self.seen[self.pos - n:self.pos]

    async def send(self, raw: bytes) -> None:
        self.w.write(raw)
        await self.w.drain()

    async def at(self, cmd: str, final: bytes = rb"\r\n(OK|ERROR)\r\n") -> re.Match:
        await self.send(cmd.encode() + b"\r\n")
        return await self.expect(final)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _scenario() -> None:
    rec = Recorder()
    rec.speed = SPEED
    world = World(WorldSpec(), rec.now)
    modem = ModemEmulator(world, ModemSpec(), rec)
    modem.air = AirLink(rec, modem.data_ready)
    uart_server = await asyncio.start_server(modem.serve, "127.0.0.1", 0)
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    u = Uart(*await asyncio.open_connection("127.0.0.1", uart_server.sockets[0].getsockname()[1]))
    await u.expect(rb"RDY\r\n", timeout=30)
    await u.at("ATE0")
    assert (await u.at("AT+CIPRXGET=1")).group(1) == b"OK"
    # no bearer before registration: OK, then the failure as a URC
    if not modem.registered():
        assert (await u.at("AT+NETOPEN")).group(1) == b"OK"
        await u.expect(rb"\+NETOPEN: 1\r\n", timeout=10)
    while not modem.registered():
        await asyncio.sleep(0.05)
    assert (await u.at("AT+NETOPEN")).group(1) == b"OK"
    await u.expect(rb"\+NETOPEN: 0\r\n", timeout=10)
    again = await u.at("AT+NETOPEN")
    assert again.group(1) == b"ERROR" and b"Network is already opened" in u.seen
    await u.at("AT+NETOPEN?", rb"\+NETOPEN: 1\r\n\r\nOK\r\n")
    # the connection: OK at once, the result later
    assert (await u.at(f'AT+CIPOPEN=0,"TCP","127.0.0.1",{echo_port}')).group(1) == b"OK"
    await u.expect(rb"\+CIPOPEN: 0,0\r\n", timeout=10)
    # a send: the prompt with no line end, exactly the payload, OK, then the confirmation
    payload = b"\r\nOK\r\n+x>\x00\xff"
    await u.send(b"AT+CIPSEND=0,%d\r\n" % len(payload))
    await u.expect(rb">$")
    await u.send(payload)
    await u.expect(rb"\r\nOK\r\n")
    await u.expect(rb"\+CIPSEND: 0,%d,%d\r\n" % (len(payload), len(payload)))
    # the echo comes back into the modem's buffer, announced once; read it in two parts
    await u.expect(rb"\+CIPRXGET: 1,0\r\n", timeout=10)
    await u.at("AT+CIPRXGET=4,0", rb"\+CIPRXGET: 4,0,%d\r\n\r\nOK\r\n" % len(payload))
    await u.send(b"AT+CIPRXGET=2,0,4\r\n")
    await u.expect(rb"\+CIPRXGET: 2,0,4,%d\r\n" % (len(payload) - 4))
    first = await u.take(4)
    assert await u.take(6) == b"\r\nOK\r\n"
    await u.send(b"AT+CIPRXGET=2,0,1500\r\n")
    await u.expect(rb"\+CIPRXGET: 2,0,%d,0\r\n" % (len(payload) - 4))
    rest = await u.take(len(payload) - 4)
    assert await u.take(6) == b"\r\nOK\r\n"
    assert first + rest == payload
    assert (await u.at("AT+CIPRXGET=2,0,10")).group(1) == b"ERROR"  # nothing waiting
    assert (await u.at("AT+CIPSEND=0,1501")).group(1) == b"ERROR"  # over the manual's 1500
    # the far end closes: +IPCLOSE with reason 1 (closed by the remote end)
    echo.close()
    for w in list(modem.air.open_writers):
        w.close()  # as the runner's cut() does when the broker goes
    await u.expect(rb"\+IPCLOSE: 0,1\r\n", timeout=10)
    assert (await u.at("AT+CIPSEND=0,5")).group(1) == b"ERROR"  # no prompt for a closed link
    # a new connection, then coverage goes: the bearer closes unexpectedly
    echo = await asyncio.start_server(_echo, "127.0.0.1", echo_port)
    assert (await u.at(f'AT+CIPOPEN=0,"TCP","127.0.0.1",{echo_port}')).group(1) == b"OK"
    await u.expect(rb"\+CIPOPEN: 0,0\r\n", timeout=10)
    world.set_coverage(False)
    await u.expect(rb"\+CIPEVENT: NETWORK CLOSED UNEXPECTEDLY\r\n", timeout=10)
    await u.at("AT+NETOPEN?", rb"\+NETOPEN: 0\r\n\r\nOK\r\n")
    states = [e["state"] for e in rec.of("link")]
    assert states == ["refused", "up", "down", "up", "down"], states
    u.w.close()
    echo.close()
    uart_server.close()


def test_socket_commands_over_the_uart_as_the_manuals_give():
    asyncio.run(_scenario())
