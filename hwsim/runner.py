"""The Python API of hwsim: run one simulated watch (the real firmware) in its world.

    with Watch("dev-1", "secret", broker=("127.0.0.1", 1883)) as w:
        w.press("red", 1.5)
        assert w.wait_display("Help is coming", timeout=30)

All wires are served by an asyncio loop in a background thread; the methods
here are thread-safe and blocking, for tests and the CLI. Every time given to
or read from a Watch is in scenario seconds: ``speed`` (the scenario's unless
given) says how many pass per real second, and the firmware's HAL clock runs
at the same rate.
"""
from __future__ import annotations

import asyncio
import copy
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hwsim import firmware, traces, wrist_motion
from hwsim.bmp390 import Bmp390
from hwsim.board import BoardBus
from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.i2c import MAX30102_ADDR, I2CBus, Max30102
from hwsim.link import BASE_LATENCY_S, AirLink
from hwsim.lis3dh import LIS3DH_ADDR, Lis3dh, OnTheBus
from hwsim.modem import ModemEmulator
from hwsim.scenario import Action, Scenario
from hwsim.world import World

MONITOR_S = 0.1


class Watch:
    def __init__(self, device_id: str, secret: str, broker: tuple[str, int] = ("127.0.0.1", 1883),
                 scenario: Scenario | None = None, flash_dir: str | Path | None = None,
                 recorder: Recorder | None = None, firmware_dir: Path = firmware.FIRMWARE_DIR,
                 device_extra: dict | None = None, speed: float | None = None,
                 firmware_env: dict | None = None, heap: int | str = firmware.APP_HEAP,
                 ca: str | Path | None = None, board_fs: str | Path | None = None):
        self.device_id, self.secret, self.broker = device_id, secret, broker
        # The CA the watch is provisioned with: given, it connects over TLS (the modem's)
        # and verifies the broker against it, as `pers flash --ca` sets a watch up.
        self.ca = Path(ca) if ca else None
        self.scenario = scenario or Scenario(name="adhoc")
        self.rec = recorder or Recorder()
        self.rec.speed = speed or self.scenario.speed
        # A watch's filesystem as `pers flash files` left it: its code runs, and its
        # data/ (device.json and all) is the flash; nothing is provisioned over it.
        self.board_fs = Path(board_fs) if board_fs else None
        if self.board_fs:
            flash_dir = self.board_fs / "data"
        self._own_flash = flash_dir is None
        self.flash_dir = Path(flash_dir) if flash_dir else Path(tempfile.mkdtemp(prefix=f"pers-{device_id}-"))
        self.firmware_dir = firmware_dir
        # e.g. {"alert_retry_ms": 1000} for tests; the scenario's [device] first
        self.device_extra = {**self.scenario.device, **(device_extra or {})}
        self.heap = heap  # the app heap, code image excluded (hwsim/firmware.py)
        self.firmware_env = firmware_env or {}  # e.g. {"PERS_SIM_MEM_REPORT": "500"} for a benchmark
        self.world = World(self.scenario.world, self.rec.now)
        self.meter = Meter(self.rec.now, self.scenario.world.battery_mah, self.scenario.world.battery_pct)
        self.modem = ModemEmulator(self.world, self.scenario.modem, self.rec, self.meter)
        self.modem.far_end = self.scenario.far_end
        self.bus = BoardBus(self.world, self.rec, self.scenario.held_at_boot, self.meter)
        self.bus.on_pwrkey = self.modem.pwrkey_off
        self.hr_sensor = Max30102(self.world, self.rec.now, meter=self.meter)
        # The LIS3DH: the firmware's driver programs it over I2C; the motion reaches it
        # only while the ESP32 deep-sleeps (hwsim/board.py), awake the bus carries it.
        self.accel_part = Lis3dh(lambda t: (0.0, 0.0, 1000.0))
        self.bus.accel_part = self.accel_part
        self.i2c = I2CBus(self.rec, {MAX30102_ADDR: self.hr_sensor, LIS3DH_ADDR: OnTheBus(self.accel_part)})
        # The BMP390, only on a board that has one ([board] barometer): it keeps measuring
        # into its FIFO through the ESP32's deep sleep, from the world's air at the wrist.
        self.baro_part: Bmp390 | None = None
        if self.scenario.board.barometer:
            self.baro_part = Bmp390(self.world.air_at, self.rec.now, meter=self.meter)
            self.i2c.devices[self.scenario.board.barometer_addr] = self.baro_part
        # The air behind the modem: the firmware reaches the broker only through the
        # modem's TCP commands on the UART (hwsim/modem_net.py), never beside it.
        self.link = AirLink(self.rec, self.modem.data_ready, self.meter,
                            broker_up=lambda: self.world.broker_up, latency_s=self._latency,
                            loss=copy.copy(self.scenario.link), edge_loss=self._edge_loss)
        self.modem.air = self.link
        self.proc = None
        self._run_dir: Path | None = None  # from board_fs; else the compiled firmware_dir
        self.boots = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"hwsim-{device_id}", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._ports: dict[str, int] = {}
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> Watch:
        self._thread.start()
        self._call(self._start(), timeout=15)
        return self

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._thread.is_alive():
            try:
                self._call(self._stop(), timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
        self._kill()
        if self._own_flash:
            shutil.rmtree(self.flash_dir, ignore_errors=True)
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        for name, handler in (("bus", self.bus.serve), ("uart", self.modem.serve), ("i2c", self.i2c.serve)):
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            self._servers.append(server)
            self._ports[name] = server.sockets[0].getsockname()[1]
        if self.board_fs is None:
            self._provision()
        if self.scenario.config and not (self.flash_dir / "config.json").exists():
            (self.flash_dir / "config.json").write_text(json.dumps({"v": 1, "version": 0, **self.scenario.config}))
        if self.board_fs is not None:
            self._run_dir = await asyncio.to_thread(firmware.board_run_dir, self.board_fs, self.firmware_dir)
        else:
            await asyncio.to_thread(firmware.compiled, self.firmware_dir)  # before t=0: it takes a while once
        self.rec.t0 = time.monotonic()
        self._launch("power_on")
        self._spawn(self._monitor())

    async def _stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        # Killing the firmware ends every wire (EOF), so their handlers finish by themselves.
        self._kill()
        self.link.cut()
        for s in self._servers:
            s.close()
        await asyncio.sleep(0.1)
        # Wire handlers still waiting (a slow AT answer) end here, not when the loop dies.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def _provision(self) -> None:
        """What `pers flash` writes beside the firmware: /data/device.json."""
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        device = {"id": self.device_id, "secret": self.secret,
                  "broker_host": self.broker[0], "broker_port": self.broker[1], **self.device_extra}
        if self.ca is not None:
            device["tls"] = True
            (self.flash_dir / "ca.pem").write_bytes(self.ca.read_bytes())
        (self.flash_dir / "device.json").write_text(json.dumps(device))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _launch(self, reset_cause: str) -> None:
        self.bus.reset_cause = reset_cause
        self.boots += 1
        env = {"PERS_SIM_HOST": "127.0.0.1", "PERS_SIM_FLASH": str(self.flash_dir),
               "PERS_SIM_BUS_PORT": str(self._ports["bus"]), "PERS_SIM_UART_PORT": str(self._ports["uart"]),
               "PERS_SIM_I2C_PORT": str(self._ports["i2c"]), "PERS_SIM_SPEED": repr(self.rec.speed),
               **self.firmware_env}
        self.proc = firmware.launch(env, self.firmware_dir, self.heap, self._run_dir)
        self.rec.record("firmware", state="started", pid=self.proc.pid, reset_cause=reset_cause)
        threading.Thread(target=self._read_output, args=(self.proc,), daemon=True).start()

    def _read_output(self, proc) -> None:
        for raw in proc.stdout:
            self.rec.record("log", line=raw.decode(errors="replace").rstrip())
        rc = proc.wait()
        if not self._stopping:
            self.rec.record("firmware", state="exited", rc=rc)

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    async def _monitor(self) -> None:
        """Watches what no single wire sees: registration changes and the watchdog."""
        registered = False
        while True:
            now_registered = self.modem.data_ready() and self.world.broker_up
            if now_registered != registered:
                registered = now_registered
                self.rec.record("network", registered=registered)
                if not registered:
                    self.link.cut()
            if self.bus.deep_wake_due() and self.proc and self.proc.poll() is not None:
                self.bus.deep_sleep_until = None
                self._launch("deepsleep")
            if self.bus.restart_requested and self.proc and self.proc.poll() is not None:
                self.bus.restart_requested = False
                self._launch("soft")
            if self.bus.watchdog_expired() and self.proc and self.proc.poll() is None:
                self.rec.record("watchdog", state="expired, resetting the watch")
                self._kill()
                self._launch("wdt")
            await asyncio.sleep(max(0.01, self.rec.real(MONITOR_S)))

    # --- the wearer and the world ---------------------------------------------------
    def press(self, button: str = "red", hold_s: float = 1.5, wait: bool = True) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._press(button, hold_s), self._loop)
        if wait:
            fut.result(self.rec.real(hold_s) + 5)

    async def _press(self, button: str, hold_s: float) -> None:
        self._tasks.add(asyncio.current_task())
        self.bus.set_button(button, True)
        await asyncio.sleep(self.rec.real(hold_s))
        self.bus.set_button(button, False)

    def sleep(self, scenario_s: float) -> None:
        """Let ``scenario_s`` scenario seconds pass (blocking)."""
        time.sleep(self.rec.real(scenario_s))

    def accel(self, label: str, seed: int = 0) -> None:
        """The wearer moves: a labelled accelerometer trace (a fall, walking...)."""
        samples = traces.generate(label, seed)
        self._loop.call_soon_threadsafe(self._spawn, self.bus.play_accel(samples, traces.HZ, label))
        if traces.is_fall(label):
            self._loop.call_soon_threadsafe(self.world.body_shock)

    def motion(self, label: str, trace_set: str = "test", index: int = 0) -> None:
        """The wearer moves as hwsim/wrist_motion.py's model has it (a fall, a flop onto a
        sofa...): its accelerometer samples and, for a barometer, the wrist's height."""
        m = wrist_motion.motion(label, trace_set, index)
        samples = m.read()
        self._loop.call_soon_threadsafe(self._spawn, self.bus.play_accel(samples, wrist_motion.HZ, label, m.height))
        if label in wrist_motion.FALLS:
            self._loop.call_soon_threadsafe(self.world.body_shock)

    def _latency(self) -> float:
        s = self.modem.serving()
        weak = 0.0 if s is None else max(0.0, (-95 - s.rssi) * 0.01)  # retransmissions at the cell edge
        return BASE_LATENCY_S + weak

    def _edge_loss(self) -> float:
        s = self.modem.serving()
        # Below -110 dBm the radio loses packets on top of the scenario's channel.
        return 0.0 if s is None else min(0.3, max(0.0, (-110 - s.rssi) * 0.03))

    def set_loss(self, loss: float, burst: float | None = None) -> None:
        """Packet loss on the data link from now (a Gilbert-Elliott channel, hwsim/link.py)."""
        def apply():
            self.link.set_loss(loss, burst)
            self.rec.record("world", loss=loss, burst=self.link.spec.burst)
        self._threadsafe(apply)

    def _threadsafe(self, fn, *args) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    def set_skin_contact(self, on: bool) -> None:
        """The watch on the wrist (True) or off it: its PPG sensor sees a pulse or not."""
        def apply():
            self.world.skin_contact = on
            self.rec.record("world", skin_contact=on)
        self._threadsafe(apply)

    def set_wrist_height(self, metres: float) -> None:
        """The wrist's height above the floor from now (what a barometer sees)."""
        def apply():
            self.world.wrist_height_m = metres
            self.rec.record("world", wrist_height_m=metres)
        self._threadsafe(apply)

    def set_coverage(self, on: bool) -> None:
        self._loop.call_soon_threadsafe(self._coverage, on)

    def _coverage(self, on: bool) -> None:
        self.world.set_coverage(on)
        self.rec.record("world", coverage=on)

    def apply(self, action: Action) -> None:
        """One timeline action, now."""
        if action.press:
            self.press(action.press, action.hold, wait=False)
        if action.coverage is not None:
            self.set_coverage(action.coverage)
        if action.indoors is not None:
            self.world.indoors = action.indoors
            self.rec.record("world", indoors=action.indoors)
        if action.move is not None:
            self.world.lat, self.world.lon = action.move
            self.rec.record("world", lat=action.move[0], lon=action.move[1])
        if action.fall:
            self.accel(action.fall if action.fall.startswith("fall_") else "fall_" + action.fall)
        if action.activity:
            self.accel(action.activity)
        if action.incoming_call:
            self._threadsafe(self.modem.incoming_call, action.incoming_call)
        if action.sms_from:
            self._threadsafe(self.modem.incoming_sms, action.sms_from, action.sms_text)
        if action.modem_reboot:
            self._threadsafe(self.modem.reboot)
        if action.hangup:
            self._threadsafe(self.modem.remote_hangup)
        if action.broker is not None:
            self.set_broker(action.broker)
        if action.loss is not None:
            self.set_loss(action.loss)
        if action.factory_reset:
            self.factory_reset()
        if action.skin is not None:
            self.set_skin_contact(action.skin)
        if action.wrist_height is not None:
            self.set_wrist_height(action.wrist_height)
        if action.answer_after is not None:
            self.modem.far_end = replace(self.modem.far_end, answer_after_s=action.answer_after)

    def set_broker(self, up: bool) -> None:
        def apply():
            self.world.broker_up = up
            self.rec.record("world", broker=up)
            if not up:
                self.link.cut()
        self._threadsafe(apply)

    def incoming_call(self, number: str) -> None:
        self._threadsafe(self.modem.incoming_call, number)

    def incoming_sms(self, sender: str, text: str) -> None:
        self._threadsafe(self.modem.incoming_sms, sender, text)

    def set_far_end(self, **spec) -> None:
        """How the far end takes the next call the watch dials (``FarEndSpec`` fields)."""
        def apply():
            self.modem.far_end = replace(self.modem.far_end, **spec)
        self._threadsafe(apply)

    def hangup(self) -> None:
        """The far end of the call in progress hangs up."""
        self._threadsafe(self.modem.remote_hangup)

    def modem_reboot(self) -> None:
        self._threadsafe(self.modem.reboot)

    def power_on(self) -> None:
        """Power comes back (the charger): a watch that switched itself off starts again."""
        if not self.running():
            self._launch("power_on")

    def power_cut(self) -> None:
        """The battery connector slips: the firmware dies wherever it was; then power returns."""
        self._kill()
        self.rec.record("power", state="cut")
        self.link.cut()
        self._launch("power_on")

    def factory_reset(self) -> None:
        """Power off, erase the flash (`esptool erase_flash`: the boot counter, the
        outbox, the config, the reset log, everything), reflash (`pers flash` writes
        device.json again, so the watch keeps its id and secret), power on. The
        firmware finds a fresh file system, as after a reflash or a factory reset.
        A scenario's [config] is not put back: the cloud's retained one comes."""
        async def reset() -> None:  # on the loop's thread: the monitor cannot restart it half way
            self._kill()
            self.rec.record("power", state="off")
            self.link.cut()
            erased = sum(1 for p in self.flash_dir.rglob("*") if p.is_file())
            shutil.rmtree(self.flash_dir, ignore_errors=True)
            self._provision()
            self.rec.record("flash", state="erased", files=erased)
            self._launch("power_on")
        self._call(reset(), timeout=15)

    # --- what the watch did ---------------------------------------------------------
    def wait_for(self, match: Callable[[dict], bool], timeout: float, start: int = 0) -> dict | None:
        return self.rec.wait_for(match, timeout, start)

    def wait_display(self, text: str, timeout: float) -> bool:
        return self.wait_for(lambda e: e["type"] == "display" and e["text"] == text, timeout) is not None

    @property
    def displays(self) -> list[str]:
        return [e["text"] for e in self.rec.of("display")]

    @property
    def events(self) -> list[dict]:
        return list(self.rec.events)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def run_scenario(scenario: Scenario, device_id: str, secret: str, broker: tuple[str, int],
                 flash_dir: str | Path | None = None, recorder: Recorder | None = None,
                 stay: threading.Event | None = None, ca: str | Path | None = None) -> tuple[bool, str]:
    """Play a scenario; (True, summary) when every expectation passes, else (False, reason).
    With ``stay`` (an Event) the watch keeps running after the expectations until it is set.
    With ``ca`` the watch is provisioned for TLS (``broker`` is then the TLS listener)."""
    rec = recorder or Recorder()
    with Watch(device_id, secret, broker, scenario, flash_dir, rec, ca=ca) as watch:
        player = threading.Thread(target=_play, args=(watch, scenario.timeline), daemon=True)
        player.start()
        for exp in scenario.expect:
            ev = rec.wait_for(exp.matches, max(0.0, exp.within - rec.now()))
            if ev is None:
                if not watch.running():
                    return False, f"expected {exp.describe()}: the firmware exited"
                return False, f"expected {exp.describe()}: not seen (display shows \"{watch.bus.display}\")"
        summary = f"{len(scenario.expect)} expectation(s) passed"
        if stay is not None:
            rec.record("scenario", state="expectations passed, staying until interrupted")
            stay.wait()
        return True, summary


def _play(watch: Watch, timeline: list[Action]) -> None:
    for action in timeline:
        delay = action.at - watch.rec.now()
        if delay > 0:
            time.sleep(watch.rec.real(delay))
        if watch._stopping:
            return
        watch.apply(action)
