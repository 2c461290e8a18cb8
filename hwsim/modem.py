"""A thin emulator of a SIMCom-style LTE modem with GNSS, on the watch's UART.

One UART connection is one power cycle. The modem is deaf until it has booted,
registers a while after boot (and after coverage returns), and gets a GNSS fix
a while after GNSS power-on, never indoors. Answers are shaped like a SIM7600's;
the per-family quirks (A76xx forms, URCs) are meant to be added per family here.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

from hwsim.events import Recorder
from hwsim.scenario import ModemSpec
from hwsim.world import World


def _nmea(value: float, degree_digits: int) -> str:
    d = int(abs(value))
    minutes = (abs(value) - d) * 60
    return f"{d:0{degree_digits}d}{minutes:09.6f}"


class ModemEmulator:
    def __init__(self, world: World, spec: ModemSpec, rec: Recorder, now: Callable[[], float]):
        self.world, self.spec, self.rec, self.now = world, spec, rec, now
        self.powered_at: float | None = None
        self.gnss_on_at: float | None = None
        self.echo = True
        self.commands = 0

    # --- state as a function of time -------------------------------------------
    def booted(self) -> bool:
        return self.powered_at is not None and self.now() >= self.powered_at + self.spec.boot_s

    def registered(self) -> bool:
        if not self.booted() or not self.world.coverage:
            return False
        since = max(self.powered_at + self.spec.boot_s, self.world.coverage_since)
        return self.now() >= since + self.spec.register_s

    def has_fix(self) -> bool:
        return (self.gnss_on_at is not None and not self.world.indoors
                and self.now() >= self.gnss_on_at + self.spec.ttff_s)

    # --- answers ------------------------------------------------------------------
    def answer(self, line: str) -> list[str]:
        """The response lines to one command line, final result last."""
        cmd = line.strip().upper()
        w, cell = self.world, self.world.cell
        if cmd in ("AT", "ATH") or cmd.startswith("AT+CEREG=") or cmd.startswith("ATD"):
            return ["OK"]
        if cmd in ("ATE0", "ATE1"):
            self.echo = cmd == "ATE1"
            return ["OK"]
        if cmd == "AT+CPIN?":
            return [self.spec.cpin, "OK"]
        if cmd == "AT+CSQ":
            n = max(0, min(31, (cell.rssi + 113) // 2)) if self.registered() else 99
            return [f"+CSQ: {n},99", "OK"]
        if cmd == "AT+CEREG?":
            stat = 1 if self.registered() else (2 if w.coverage else 0)
            return [f"+CEREG: 0,{stat}", "OK"]
        if cmd == "AT+CPSI?":
            if not self.registered():
                return ["+CPSI: NO SERVICE,Online", "OK"]
            return [f"+CPSI: {cell.rat},Online,{cell.mcc:03d}-{cell.mnc:02d},0x{cell.tac:04X},"
                    f"{cell.cid},262,EUTRAN-BAND20,6300,5,5,-94,{(cell.rssi - 20) * 10},"
                    f"{cell.rssi * 10},15", "OK"]
        if cmd.startswith("AT+CGNSSPWR="):
            if cmd.endswith("=1"):
                if self.gnss_on_at is None:
                    self.gnss_on_at = self.now()
            else:
                self.gnss_on_at = None
            return ["OK"]
        if cmd == "AT+CGNSSINFO":
            if not self.has_fix():
                return ["+CGNSSINFO: ,,,,,,,,,,,,,,,", "OK"]
            utc = time.gmtime()
            return [f"+CGNSSINFO: 2,06,03,00,{_nmea(w.lat, 2)},{'N' if w.lat >= 0 else 'S'},"
                    f"{_nmea(w.lon, 3)},{'E' if w.lon >= 0 else 'W'},"
                    f"{time.strftime('%d%m%y', utc)},{time.strftime('%H%M%S', utc)}.0,"
                    f"170.0,0.0,0.0,1.3,1.0,0.9", "OK"]
        if cmd == "AT+CCLK?":
            utc = time.gmtime()
            return [time.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"', utc), "OK"]
        return ["ERROR"]

    # --- the UART -----------------------------------------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.powered_at, self.gnss_on_at, self.echo = self.now(), None, True
        self.rec.record("modem", state="power on")
        boot = asyncio.create_task(self._announce_boot(writer))
        buf = b""
        try:
            while data := await reader.read(256):
                buf += data
                while b"\r" in buf:
                    raw, buf = buf.split(b"\r", 1)
                    line = raw.strip(b"\n ").decode(errors="replace")
                    if not line or not self.booted():
                        continue  # a modem still booting hears nothing
                    self.commands += 1
                    out = ([line] if self.echo else []) + self.answer(line)
                    writer.write(b"".join(b"\r\n" + ln.encode() + b"\r\n" for ln in out))
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            boot.cancel()
            self.powered_at = None
            writer.close()

    async def _announce_boot(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.spec.boot_s)
        writer.write(f"\r\nRDY\r\n\r\n{self.spec.cpin}\r\n\r\nSMS DONE\r\n".encode())
        await writer.drain()
        self.rec.record("modem", state="booted")
