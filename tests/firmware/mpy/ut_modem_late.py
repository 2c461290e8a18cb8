# An answer that comes after the driver stopped waiting for it (app/modem.py
# _settle). The modem's side is written from the SIMCom manuals, not from the
# driver: it takes one command line at a time and answers each, however late,
# with one final result (A76XX AT Command Manual, 1.4: the next command only
# after the final result code of the previous one); AT+CCHSEND=<s>,<len> answers
# ">" (no line end) and then takes exactly <len> bytes as data, whatever they
# are, before its OK and "+CCHSEND: <s>,<err>" (A7600 SSL Application Note 3.1).
# A busy host (hwsim at ten times real speed) or a busy modem makes any answer
# late: the next command must get its own answer, never that late one, and a
# late ">" must get its payload, or the modem takes the next commands for data.
import asyncio
import os
import mpytest
from mpytest import eq
from app.modem import Modem

PORT = int((os.getenv("PERS_TEST_PORTS") or "47321").split(",")[0])
WAIT_MS = 100  # the driver's wait in these tests
LATE_MS = 250  # how late the slow answer comes: after the wait, within twice as long again


class Clock:
    def ticks_ms(self):
        import time
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        import time
        return time.ticks_diff(a, b)

    def ticks_add(self, a, b):
        import time
        return time.ticks_add(a, b)

    def sleep_ms(self, ms):
        return asyncio.sleep_ms(ms)


class Peer:
    # The modem's end of the UART, one command at a time.
    def __init__(self, slow=(), deaf=(), reboot=()):
        self.slow = slow  # commands answered LATE_MS late (the prompt, for AT+CCHSEND)
        self.deaf = deaf  # commands never answered at all (a modem that lost them)
        self.reboot = reboot  # commands the modem restarts on: the boot banner, no answer
        self.got = []     # the command lines it read
        self.payloads = []

    async def serve(self, r, w):
        while True:
            line = await r.readline()
            if not line:
                return
            cmd = line.strip().decode()
            if not cmd:
                continue
            self.got.append(cmd)
            if cmd in self.deaf:
                continue
            if cmd in self.reboot:
                await asyncio.sleep_ms(LATE_MS)
                w.write(b"\r\nRDY\r\n")  # SIM7600/A76XX: the banner after a (re)start
                await w.drain()
                continue
            if cmd in self.slow:
                await asyncio.sleep_ms(LATE_MS)
            if cmd.startswith("AT+CCHSEND=0,"):
                n = int(cmd.split(",")[1])
                w.write(b"\r\n>")
                await w.drain()
                data = b""
                while len(data) < n:
                    data += await r.read(n - len(data))
                self.payloads.append(data)
                w.write(b"\r\nOK\r\n\r\n+CCHSEND: 0,0\r\n")
            elif cmd == "AT+CEREG?":
                w.write(b"\r\n+CEREG: 1,1\r\n\r\nOK\r\n")
            elif cmd == "AT+CSQ":
                w.write(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
            elif cmd == "AT+CCERTLIST":
                w.write(b'\r\n+CCERTLIST: "pers-0220dd66.pem"\r\n\r\nOK\r\n')
            elif cmd.startswith("AT"):
                w.write(b"\r\nOK\r\n")
            else:
                w.write(b"\r\nERROR\r\n")  # what is left of a line the data took part of
            await w.drain()


PEER = [None]


async def with_modem(peer, body):
    PEER[0] = peer
    server = await asyncio.start_server(lambda r, w: PEER[0].serve(r, w), "127.0.0.1", PORT)
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    m = Modem(Clock(), r, w)
    m.start()
    m.ready = True
    try:
        await body(m, peer)
    finally:
        w.close()
        server.close()
        await server.wait_closed()


async def late_answer(m, peer):
    eq(await m.cmd("AT+CEREG?", WAIT_MS), None)  # given up on
    # The next command's answer is its own, not the late "+CEREG: 1,1 / OK" ...
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    eq(await m.cmd("AT+CCERTLIST", 1000), ['+CCERTLIST: "pers-0220dd66.pem"', "OK"])
    # ... and the late registration answer still counted (it came as news).
    eq(m.registered.is_set(), True)
    eq(peer.got, ["AT+CEREG?", "AT+CSQ", "AT+CCERTLIST"])


async def late_answer_before_a_prompt(m, peer):
    # The late OK must not end the next command that takes a payload: the
    # payload goes after ">", and the command after it is read as a command.
    eq(await m.cmd("AT+CEREG?", WAIT_MS), None)
    eq(await m.prompted("AT+CCHSEND=0,5", b"HELLO", 1000), ["OK"])
    eq(peer.payloads, [b"HELLO"])
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    eq(peer.got, ["AT+CEREG?", "AT+CCHSEND=0,5", "AT+CSQ"])


async def late_prompt(m, peer):
    # The ">" comes after the driver gave up: the modem waits for 5 bytes all
    # the same. They are the payload, never the next command's text.
    eq(await m.prompted("AT+CCHSEND=0,5", b"HELLO", WAIT_MS), None)
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    eq(peer.payloads, [b"HELLO"])
    eq(peer.got, ["AT+CCHSEND=0,5", "AT+CSQ"])


async def never_answered(m, peer):
    # A command the modem never answers does not hold the line for good: after
    # twice as long again (app/modem.py _settle), the next command goes.
    eq(await m.cmd("AT+CEREG?", WAIT_MS), None)
    t0 = Clock().ticks_ms()
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    waited = Clock().ticks_diff(Clock().ticks_ms(), t0)
    assert 2 * WAIT_MS <= waited < 2 * WAIT_MS + 300, waited
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])


async def rebooted(m, peer):
    # A modem that restarted owes no answer: its boot banner ends the wait.
    eq(await m.cmd("AT+CEREG?", WAIT_MS), None)
    t0 = Clock().ticks_ms()
    eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    waited = Clock().ticks_diff(Clock().ticks_ms(), t0)
    assert waited < LATE_MS + 500, waited


async def cancelled(m, peer):
    # The caller gave up, not the driver: a connection closed while its writer
    # waited for a send's ">", or its reader task was in an AT+CCHRECV. The
    # modem answers all the same.
    for give_up in (lambda: m.prompted("AT+CCHSEND=0,5", b"HELLO", 1000), lambda: m.cmd("AT+CEREG?", 1000)):
        try:
            await asyncio.wait_for_ms(give_up(), WAIT_MS)
            raise AssertionError("answered in time")
        except asyncio.TimeoutError:
            pass
        eq(await m.cmd("AT+CSQ", 1000), ["+CSQ: 20,99", "OK"])
    eq(peer.payloads, [b"HELLO"])
    eq(peer.got, ["AT+CCHSEND=0,5", "AT+CSQ", "AT+CEREG?", "AT+CSQ"])


def test_a_caller_that_gives_up_leaves_the_answer_owed_too():
    asyncio.run(with_modem(Peer(slow=("AT+CEREG?", "AT+CCHSEND=0,5")), cancelled))


def test_a_boot_banner_ends_the_wait_for_a_late_answer():
    asyncio.run(with_modem(Peer(reboot=("AT+CEREG?",)), rebooted))


def test_a_late_answer_is_not_taken_for_the_next_commands():
    asyncio.run(with_modem(Peer(slow=("AT+CEREG?",)), late_answer))


def test_a_late_answer_does_not_end_a_prompt_taking_command_before_its_prompt():
    asyncio.run(with_modem(Peer(slow=("AT+CEREG?",)), late_answer_before_a_prompt))


def test_a_late_prompt_gets_its_payload_not_the_next_command():
    asyncio.run(with_modem(Peer(slow=("AT+CCHSEND=0,5",)), late_prompt))


def test_a_command_never_answered_holds_the_line_only_for_a_while():
    asyncio.run(with_modem(Peer(deaf=("AT+CEREG?",)), never_answered))


mpytest.run(globals())
