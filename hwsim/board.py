"""The board bus: the watch's buttons, display, vibration motor, accelerometer,
battery gauge and power state, as newline JSON (the heart-rate sensor is on the
I2C bus, at register level: hwsim/i2c.py).

Inputs flow to the firmware as events (a button edge, a batch of accelerometer
samples from the sensor's FIFO, a battery reading); outputs are recorded so a
test can assert what the wearer saw and felt.
"""
from __future__ import annotations

import asyncio
import json

from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.lis3dh import ActivityFilter
from hwsim.world import World

ACCEL_CHUNK = 25  # samples per FIFO read (half a second at 50 Hz)
BATTERY_EVERY_S = 60.0


class BoardBus:
    def __init__(self, world: World, rec: Recorder, held_at_boot: list[str] = (), meter: Meter | None = None):
        self.world, self.rec = world, rec
        self.meter = meter or Meter(rec.now)
        self.buttons = {"red": False, "black": False}
        for name in held_at_boot:
            self.buttons[name] = True
        self.reset_cause = "power_on"
        self.display = ""
        self.display_on = False
        self.wdt_timeout_ms: int | None = None
        self.wdt_held = False
        self.last_feed = 0.0
        self.last_feed_real = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._vib_until = 0.0
        self.restart_requested = False  # the firmware asked for a reset (not a power-off)
        self.on_pwrkey = None  # () -> None: the modem's PWRKEY held low (hwsim/modem.py)
        # Light sleep: the CPU reads nothing; what the bus would carry waits
        # (a FIFO fills, a level changes) until a wake source or the timer ends it.
        self.asleep_wake: set[str] | None = None  # the wake sources while asleep
        self._held: list[dict] = []
        self._levels_at_sleep: dict[str, bool] = {}
        # Deep sleep: the firmware has ended; the runner starts it again when
        # deep_sleep_until passes or a wake-source button goes down (deep_woken).
        self.deep_sleep_until: float | None = None
        self.deep_wake: set[str] = set()
        self.deep_woken = False
        # The LIS3DH's activity interrupt as the firmware sets it up (hal/lis3dh.py):
        # generator 2 through the high-pass filter; the sim board reads it as moved().
        self.activity = ActivityFilter()

    def set_button(self, name: str, down: bool) -> None:
        self.buttons[name] = down
        self.rec.record("button", name=name, down=down)
        if self.deep_sleep_until is not None:
            if name in self.deep_wake and down and not self.deep_woken:
                self.deep_woken = True  # ext0: the RTC wakes the chip on the level
                self.rec.record("wake", source=name, deep=True)
        elif self.asleep_wake is None:
            self._send({"ev": "button", "name": name, "down": down})
        elif name in self.asleep_wake and down:
            # ext0 wakes on the level (the button pulls low); the edge itself
            # raises no interrupt in sleep: the firmware reads levels on wake.
            self._wake(name)

    def _send(self, msg: dict) -> None:
        if self.asleep_wake is not None:
            self._held.append(msg)
            if msg.get("ev") == "accel" and "accel" in self.asleep_wake:
                self._wake("accel")  # the sensor's motion interrupt
            return
        self._write(msg)

    def _write(self, msg: dict) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write((json.dumps(msg) + "\n").encode())

    def _wake(self, source: str) -> None:
        # One line ends the firmware's poll; it reads it (and the rest) once awake.
        self.rec.record("wake", source=source)
        self._write({"ev": "wake", "src": source})

    def _sleep(self, wake: list[str]) -> None:
        self.asleep_wake = set(wake)
        self._levels_at_sleep = dict(self.buttons)
        self.meter.set("mcu", "light_sleep")

    def _awake(self) -> None:
        self.meter.set("mcu", "active")
        if self.asleep_wake is None:
            return
        self.asleep_wake = None
        held, self._held = self._held, []
        for msg in held:
            self._write(msg)
        if self.buttons != self._levels_at_sleep:
            self._write({"ev": "state", "buttons": dict(self.buttons)})

    def send_battery(self) -> None:
        self._send({"ev": "state", "batt": self.meter.battery()})

    async def play_accel(self, samples: list[list[int]], hz: int, label: str) -> None:
        """Streams a trace to the firmware in FIFO-sized batches, at the trace's own pace."""
        self.rec.record("accel", trace=label, samples=len(samples))
        for i in range(0, len(samples), ACCEL_CHUNK):
            chunk = samples[i:i + ACCEL_CHUNK]
            await asyncio.sleep(self.rec.real(len(chunk) / hz))
            self._send({"ev": "accel", "hz": hz, "s": chunk})
            if self.activity.feed(chunk, hz):
                self._send({"ev": "state", "activity": True})

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.asleep_wake, self._held = None, []
        self.wdt_timeout_ms, self.wdt_held = None, False
        ticker = asyncio.create_task(self._battery_ticker())
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.rec.record("bus_garbage", line=line[:200].decode(errors="replace"))
                    continue
                self._handle(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            ticker.cancel()
            if self._writer is writer:
                self._writer = None
                self.meter.set("mcu", "deep_sleep")  # no firmware: only the RTC draws
                self.meter.set("display", "off")
            writer.close()

    async def _battery_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.rec.real(BATTERY_EVERY_S))
            self.send_battery()
            self._vibration_off()

    def _vibration_off(self) -> None:
        if self._vib_until and self.rec.now() >= self._vib_until:
            self._vib_until = 0.0
            self.meter.set("vibration", "off")

    def _handle(self, msg: dict) -> None:
        ev = msg.get("ev")
        now = self.rec.now()
        if ev == "hello":
            self.meter.set("mcu", "active")
            self.deep_sleep_until, self.deep_woken = None, False
            self.asleep_wake, self._held = None, []
            self._write({"ev": "state", "buttons": self.buttons, "t": now,
                        "speed": self.rec.speed, "batt": self.meter.battery(),
                        "reset_cause": self.reset_cause})
        elif ev == "display":
            self.display = msg.get("text", "")
            if not self.display_on:
                self.display_on = True
                self.meter.set("display", "on")
            self.rec.record("display", text=self.display)
        elif ev == "display_off":
            if self.display_on:
                self.display_on = False
                self.meter.set("display", "off")
                self.rec.record("display_off")
        elif ev == "vibrate":
            ms = msg.get("ms") or 0
            # A pattern (Board.signal: "reminder", "confirm"...) is recorded by name.
            self.rec.record("vibrate", ms=ms, **({"pattern": msg["pattern"]} if msg.get("pattern") else {}))
            self.meter.set("vibration", "on")
            self._vib_until = max(self._vib_until, now + ms / 1000)
            asyncio.get_running_loop().call_later(self.rec.real(ms / 1000) + 0.001, self._vibration_off)
        elif ev == "cpu":
            if msg.get("state") == "sleep":
                self._sleep(msg.get("wake") or [])
            else:
                self._awake()
        elif ev == "wdt":
            self.wdt_timeout_ms = msg.get("timeout_ms")
            self._fed(now)
        elif ev == "feed":
            self._fed(now)
        elif ev == "wdt_hold":
            self.wdt_held = True
        elif ev == "deep_sleep":
            self.deep_sleep_until = now + (msg.get("ms") or 0) / 1000
            self.deep_wake, self.deep_woken = set(msg.get("wake") or []), False
            self.wdt_timeout_ms = None  # the chip is off but its RTC: no watchdog runs
            self.rec.record("board", state="deep_sleep", ms=msg.get("ms"))
        elif ev in ("reboot", "power_off"):
            self.restart_requested = ev == "reboot"
            self.rec.record("board", state=ev)
        elif ev == "modem_pwrkey":
            if self.on_pwrkey:
                self.on_pwrkey()
        elif ev == "audio":
            self.rec.record("audio", state=msg.get("state"))
        else:
            self.rec.record("board", **{k: v for k, v in msg.items() if k != "type"})
        self._vibration_off()

    def _fed(self, now: float) -> None:
        import time
        self.last_feed, self.last_feed_real = now, time.monotonic()

    def deep_wake_due(self) -> bool:
        return self.deep_sleep_until is not None and (self.deep_woken or self.rec.now() >= self.deep_sleep_until)

    def watchdog_expired(self) -> bool:
        if self.wdt_timeout_ms is None or self.wdt_held:
            return False
        import time
        # Both clocks must agree: at 50x a real hiccup of the test machine is not
        # the firmware's fault, so a real second of silence is needed too.
        return ((self.rec.now() - self.last_feed) * 1000 > self.wdt_timeout_ms
                and time.monotonic() - self.last_feed_real > 1.0)
