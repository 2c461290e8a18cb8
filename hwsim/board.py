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
from hwsim.lis3dh import ActivityFilter, Lis3dh
from hwsim.world import World

ACCEL_CHUNK = 25  # samples per FIFO read (half a second at 50 Hz)
BATTERY_EVERY_S = 60.0
# From a deep-sleep wake to the app's first FIFO read on the board: the ROM and
# second-stage bootloader, MicroPython's start, main.py and the app's imports
# (the app reads the FIFO first thing after a motion wake, app/watch.py).
# Measured on stock MicroPython (v1.19, ESP32-S3, a power profiler: G. Jackson,
# "Optimising Micropython Boot time on ESP32 devices", github.com/glenn20/
# upy-esp32-experiments): 264 ms from the wake to app_main() (217 ms of it the
# bootloader validating the image, which CONFIG_BOOTLOADER_SKIP_VALIDATE_IN_DEEP_SLEEP
# skips) and about 340 ms more from _boot.py (the filesystem mounted) into main.py:
# 0.6 s. The app's own imports and board set-up come on top and were not measured:
# hwsim is kinder than the board by that much (docs/figures.md). It decides
# whether a fall's impact is still in the FIFO (32 samples, 640 ms at 50 Hz).
# The LIS3DH's stream FIFO runs on meanwhile, so the board reads the 32 samples up to then;
# hwsim's unix-port boot is slower still, and what the sensor took after that
# is lost here (no kinder than the board).
DEEP_WAKE_TO_READ_S = 0.6


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
        self.deep_wake_source: str | None = None  # what ended the last deep sleep (machine.wake_reason())
        # The LIS3DH at register level (hwsim/lis3dh.py, on the I2C bus, the firmware's
        # own driver programs it): while the ESP32 deep-sleeps, the motion goes into it
        # and only its INT1, raised from its registers, wakes the board.
        self.accel_part: Lis3dh | None = None
        self._fifo_feed_left: int | None = None  # samples still for the part (None: awake)
        # Samples after the board's first FIFO read: on the board the app is up by
        # then and reads them live; the unix port boots slower, so they wait for it.
        self._after_boot: list[dict] = []
        # The RTC domain: its slow memory (machine.RTC().memory()) and clock survive
        # deep sleep and every reset but a power-on (ESP32 TRM, "RTC memory").
        self.rtc_memory = b""
        self.powered_at = rec.now()
        # The LIS3DH's activity interrupt as the firmware sets it up (hal/lis3dh.py):
        # generator 2 through the high-pass filter; the sim board reads it as moved().
        self.activity = ActivityFilter()

    def set_button(self, name: str, down: bool) -> None:
        self.buttons[name] = down
        self.rec.record("button", name=name, down=down)
        if self.deep_sleep_until is not None:
            if name in self.deep_wake and down and not self.deep_woken:
                self._deep_wake(name)  # ext0: the RTC wakes the chip on the level
        elif self.asleep_wake is None:
            self._send({"ev": "button", "name": name, "down": down})
        elif name in self.asleep_wake and down:
            # ext0 wakes on the level (the button pulls low); the edge itself
            # raises no interrupt in sleep: the firmware reads levels on wake.
            self._wake(name)

    def _deep_wake(self, source: str) -> None:
        self.deep_woken, self.deep_wake_source = True, source
        self._fifo_feed_left = int(DEEP_WAKE_TO_READ_S * 50)
        self.rec.record("wake", source=source, deep=True)

    def _into_sensor(self, samples: list[list[int]]) -> None:
        """Deep sleep and the boot after it: the samples go into the LIS3DH's FIFO and
        interrupt generator; its INT1 (ext1) wakes the chip."""
        part = self.accel_part
        for s in samples:
            if part is None or self._fifo_feed_left == 0:
                return
            part.push((s[0], s[1], s[2]))
            if self._fifo_feed_left is not None and self._fifo_feed_left > 0:
                self._fifo_feed_left -= 1
            elif (self.deep_sleep_until is not None and not self.deep_woken and "accel" in self.deep_wake
                  and part.int1()):
                self._deep_wake("accel")

    def _send(self, msg: dict) -> None:
        if self._fifo_feed_left is not None:
            if msg.get("ev") == "accel":
                into = self._fifo_feed_left if self._fifo_feed_left >= 0 else len(msg["s"])
                self._into_sensor(msg["s"][:into])
                if self.deep_woken and len(msg["s"]) > into:
                    self._after_boot.append({**msg, "s": msg["s"][into:]})
                    self._fifo_feed_left = 0
            return
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

    async def _replay(self, chunks: list[dict]) -> None:
        """What the board would have read live while the unix port still booted: at
        the sensor's own pace, as the board's 500 ms ticks read it, not in one lump."""
        for msg in chunks:
            self._send(msg)
            await asyncio.sleep(self.rec.real(len(msg["s"]) / (msg.get("hz") or 50)))

    async def play_accel(self, samples: list[list[int]], hz: int, label: str,
                         heights: list[float] | None = None) -> None:
        """Streams a trace to the firmware in FIFO-sized batches, at the trace's own pace.
        ``heights`` (m, one per sample): the wrist's height meanwhile, each at its own
        sample's time, for a barometer (the world keeps them; the part reads them)."""
        self.rec.record("accel", trace=label, samples=len(samples))
        for i in range(0, len(samples), ACCEL_CHUNK):
            chunk = samples[i:i + ACCEL_CHUNK]
            if heights is not None:
                t0 = self.rec.now()
                for k, h in enumerate(heights[i:i + len(chunk)]):
                    self.world.set_wrist_height_at(t0 + (k + 1) / hz, h)
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
            if self.reset_cause == "power_on":
                self.rtc_memory, self.powered_at = b"", now
            wake = self.deep_wake_source if self.reset_cause == "deepsleep" else None
            self.deep_sleep_until, self.deep_woken, self.deep_wake_source = None, False, None
            self._fifo_feed_left = None
            self.asleep_wake, self._held = None, []
            self._write({"ev": "state", "buttons": self.buttons, "t": now,
                        "speed": self.rec.speed, "batt": self.meter.battery(),
                        "reset_cause": self.reset_cause, "wake": wake,
                        "rtc_s": round(now - self.powered_at, 3), "rtc_mem": self.rtc_memory.hex()})
            after, self._after_boot = self._after_boot, []
            if after:
                asyncio.get_running_loop().create_task(self._replay(after))
        elif ev == "rtc_mem":
            self.rtc_memory = bytes.fromhex(msg.get("hex", ""))[:2048]  # MicroPython's RTC.memory() limit
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
        elif ev in ("vibrate", "signal"):
            # A signal is a pattern on the motor and the buzzer (hal/haptics.py): the
            # motor draws for the pattern's length, which the board says.
            ms = msg.get("ms") or 0
            if ev == "signal":  # a pattern (Board.signal: "reminder", "confirm"...), by name
                self.rec.record("signal", name=msg.get("name"), ms=ms)
                self.rec.record("vibrate", ms=ms, pattern=msg.get("name"))
            else:
                self.rec.record("vibrate", ms=ms)
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
            self.deep_wake_source = None
            self._fifo_feed_left = -1  # the sensor alone watches until the chip is back
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
        if self.deep_sleep_until is None:
            return False
        if not self.deep_woken and self.rec.now() >= self.deep_sleep_until:
            self._deep_wake("timer")
        return self.deep_woken

    def watchdog_expired(self) -> bool:
        if self.wdt_timeout_ms is None or self.wdt_held:
            return False
        import time
        # Both clocks must agree: at 50x a real hiccup of the test machine is not
        # the firmware's fault, so a real second of silence is needed too.
        return ((self.rec.now() - self.last_feed) * 1000 > self.wdt_timeout_ms
                and time.monotonic() - self.last_feed_real > 1.0)
