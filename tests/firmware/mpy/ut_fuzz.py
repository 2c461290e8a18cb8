# Fuzz under MicroPython: random and truncated AT responses into the modem
# driver and its parsers, random bytes into the MQTT decoder and the command
# parser. Nothing may raise anything but the errors each one documents.
import asyncio
import os
import random
import mpytest
from app import at
from app import mqttpkt as pkt
from app.modem import Modem
from fakeboard import FakeBoard
from app.watch import Watch

random.seed(1234)
# `make fuzz` sets PERS_FUZZ_EXAMPLES=100000; CI runs the default.
N = int(os.getenv("PERS_FUZZ_EXAMPLES") or "3000")
GOOD = [
    "+CPSI: LTE,Online,208-01,0x3039,67890,262,EUTRAN-BAND3,1300,5,5,-94,-850,-545,15",
    "+CPSI: GSM,Online,208-01,0x3039,12401,27 EGSM 900,-64,2110,42-42",
    "+CPSI: LTE,Online,460-01,0x230A,175499523,318,EUTRAN-BAND3,1650,5,0,21,67,255,19",
    "+CPSI: WCDMA,Online,001-01,0xC6BD,1234567,WCDMA IMT 2000,437,10687,0,-3,-83,-32768,-83,-15",
    "+CGNSSINFO: 2,06,03,00,4545.840000,N,00450.142000,E,221125,061436.0,170.0,0.0,0.0,1.3,1.0,0.9",
    "+CGNSSINFO: 3,07,03,02,01,45.7640000,N,4.8357000,E,221125,061436.00,170.0,0.000,,1.30,0.90,1.20,13",
    '+COPS: (2,"Orange F","Orange","20801",7),(1,"SFR","SFR","20810",7),,(0,1,2,3,4),(0,1,2)',
    "+CEREG: 0,1", "+CGREG: 1", "+CSQ: 20,99", '+CCLK: "25/11/22,06:14:36+04"', '+CLIP: "+33611111111",145,"",0,"",0',
    '+CMTI: "SM",3', "+CPIN: READY", "RING", "VOICE CALL: END: 000012", "OK", "ERROR", "RDY",
]
PARSERS = (at.cpsi, lambda s: at.cpsi(s, "A7670"), at.cgnssinfo, at.cops_list, at.csq_dbm, at.cclk, at.cclk_zone,
           at.clip_number, at.cmti_index, at.cpin_ready, lambda s: at.cereg_stat(s, True),
           lambda s: at.cereg_stat(s, False))
ALPHABET = "+:,\"0123456789.-ABCNSEW OKRGINxyz\x00\xff"


def mutate(line):
    r = random.getrandbits(3)
    if r == 0:
        return line[:random.getrandbits(6) % (len(line) + 1)]  # truncated
    if r == 1:
        return "".join(random.choice(ALPHABET) for _ in range(random.getrandbits(6)))
    if r == 2:
        i = random.getrandbits(6) % (len(line) + 1)
        return line[:i] + random.choice(ALPHABET) + line[i:]
    if r == 3:
        return line.replace(",", ",,", 1)
    return line


def test_parsers_never_raise():
    for _ in range(N):
        line = mutate(random.choice(GOOD))
        for p in PARSERS:
            p(line)
        for family in ("SIM7600", "A7670"):  # a mangled line never gives a power outside the contract
            c = at.cpsi(line, family)
            assert c is None or c["rssi"] is None or -150 <= c["rssi"] <= 0, (line, c)
        dbm = at.csq_dbm(line)
        assert dbm is None or -113 <= dbm <= -51, (line, dbm)


def test_mqtt_decoder_only_raises_malformed():
    for _ in range(N):
        n = random.getrandbits(6)
        data = bytes(random.getrandbits(8) for _ in range(n))
        if random.getrandbits(1):
            data = bytes([0x30 | random.getrandbits(4)]) + data  # looks like a PUBLISH
        try:
            while True:
                p, data = pkt.split(data)
                if p is None:
                    break
        except pkt.MalformedPacket:
            pass


class Clock:
    def __init__(self):
        import time
        self.time = time

    def ticks_ms(self):
        return self.time.ticks_ms()

    def ticks_diff(self, a, b):
        return self.time.ticks_diff(a, b)

    def ticks_add(self, t, ms):
        return self.time.ticks_add(t, ms)

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    async def wait_for_ms(self, aw, ms):
        return await asyncio.wait_for_ms(aw, ms)


class NoisyUart:
    # Answers every command with a random mix of good, truncated and junk lines.
    def __init__(self):
        self.queue = []
        self.ev = asyncio.Event()
        self.final = False  # True: every answer ends with a final result

    def write(self, data):
        for _ in range(random.getrandbits(2) + 1):
            line = mutate(random.choice(GOOD))
            try:
                self.queue.append(line.encode() + b"\r\n")
            except UnicodeError:
                pass
        if random.getrandbits(2):
            self.queue.append(bytes(random.getrandbits(8) for _ in range(random.getrandbits(4))) + b"\r\n")
        if self.final:
            self.queue.append(b"OK\r\n")
        self.ev.set()

    async def drain(self):
        pass

    async def read(self, n):
        # The driver reads chunks (a UART gives what has come): a line or part of one.
        while not self.queue:
            self.ev.clear()
            await self.ev.wait()
        data = self.queue.pop(0)
        if len(data) > n:
            self.queue.insert(0, data[n:])
        return data[:n]


def test_modem_driver_survives_garbage():
    async def main():
        uart = NoisyUart()
        m = Modem(Clock(), uart, uart, on_urc=lambda line: None)
        m.start()
        for _ in range(min(N // 15, 1000)):
            # answers with or without a final result, cut short by a 20 ms timeout
            lines = await m.cmd(random.choice(("AT", "AT+CPSI?", "AT+CGNSSINFO", "AT+CEREG?", "AT+COPS=?")), 20)
            at.cops_list(at.find(lines or [], "+COPS:") or "")
        uart.final = True
        for _ in range(50):
            await m.poll()
            m.gnss_on = True
            await m.poll_gnss()
            await m.scan()
            await m.read_sms(1)
        assert m.alive
    asyncio.run(main())


def test_command_parser_survives_random_payloads():
    w = Watch(FakeBoard(mpytest.tmpdir("fuzzw")), install="fz", boot=5)
    for _ in range(N // 6):
        n = random.getrandbits(6)
        payload = bytes(random.getrandbits(8) for _ in range(n))
        if random.getrandbits(1):
            payload = b'{"v":1,"cid":"f","type":"' + payload + b'"}'
        w.on_message("pers/v1/dev-0001/cmd", payload)
        w.on_message("pers/v1/dev-0001/config", payload)


mpytest.run(globals())
