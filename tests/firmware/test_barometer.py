"""The optional BMP390 barometer: the firmware's own driver (hal/bmp390.py, found by
hal/esp32.py's board) under MicroPython, against hwsim's register-level model of the
part (hwsim/bmp390.py) on the bench's I2C wires (hwsim/wires.py); and the model
checked against a driver nobody here wrote (Adafruit's CircuitPython BMP3xx) and a
published calibration test vector. The bench runs the part's clock 10 times faster
than the board's (as hwsim runs scenarios) so that a FIFO's 12 s take 1.2 s."""
from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hwsim.analog import BatteryAdc
from hwsim.bmp390 import REAL_NVM, Bmp390, OnTheWires, isa_pressure_pa
from hwsim.events import Recorder
from hwsim.firmware import FIRMWARE_DIR
from hwsim.i2c import I2CBus
from hwsim.lis3dh import Lis3dh
from hwsim.scenario import BoardSpec, Scenario, load
from hwsim.st7789 import St7789
from hwsim.wires import Wires

from .helpers import MPY_TESTS, run_micropython
from .test_board_drivers import pin_map

SCRIPT = MPY_TESTS / "hw_baro.py"
SPEED = 10.0
FIFO_FRAMES = 512 // 7           # 73 pressure+temperature frames of 7 bytes
ABSOLUTE_ACCURACY_PA = 50.0      # datasheet: +-50 Pa typical
STANDING_M, ON_THE_FLOOR_M = 0.8, 0.1


def still(_t: float) -> tuple[float, float, float]:
    return (0.0, 0.0, 1000.0)


def run_baro(step: str, *args: str, addr: int | None = 0x77, heights=None, firmware: Path = FIRMWARE_DIR,
             seed: int = 7):
    """Runs one step of hw_baro.py; ``heights(part_seconds_since_normal_mode)`` -> metres."""
    box: dict = {}

    def air(t: float) -> tuple[float, float]:
        on_at = box["part"].on_at
        since = t - on_at if on_at is not None else 0.0
        return isa_pressure_pa(heights(since) if heights else STANDING_M), 25.0

    wired = OnTheWires(lambda now: Bmp390(air, now, seed=seed), speed=SPEED)
    box["part"] = part = wired.part
    with Wires(pin_map(), St7789(240, 240), Lis3dh(still), BatteryAdc(3900)) as wires:
        if addr is not None:
            wires.i2c[addr] = wired
        out = run_micropython(SCRIPT, step, *args, timeout=90, PERS_HWSIM_WIRES=str(wires.port),
                              MICROPYPATH=f".frozen:{firmware}:{MPY_TESTS}")
    assert out.returncode == 0, out.stdout + out.stderr
    seen = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(": ")
        if key.isidentifier() and key != "display":
            seen[key] = json.loads(value)
    assert seen.get("done"), out.stdout + out.stderr
    assert wires.errors == [], wires.errors
    return seen, part


def drained(seen: dict) -> list[int]:
    return [v for _, values in seen["reads"] for v in (values or [])]


def model_dpa(part: Bmp390, entries) -> list[int]:
    """The model's own float compensation (datasheet 8.6) of the frames it made, Pa x 10."""
    cal = part.cal
    return [round(10 * cal.pressure(p, cal.temperature(t))) for _, p, t in entries]


# --- found, configured, read ----------------------------------------------------------------
@pytest.mark.parametrize("addr", [0x77, 0x76])
def test_the_board_finds_the_barometer_at_either_address_and_reads_the_truth(addr):
    seen, part = run_baro("read", "1500", "300", addr=addr)
    assert seen["hz"] == 6.25 and seen["driver_loaded"] is True and seen["ints"] is True
    assert part.unmodelled == [] and part.regs[0x02] == 0                 # no cmd_err, no conf_err
    # OSR x2/x1, 6.25 Hz, IIR 1; FIFO: pressure+temperature, overwrite, filtered, no subsampling
    assert (part.regs[0x1C], part.regs[0x1D], part.regs[0x1F]) == (0x01, 0x05, 0x02)
    assert (part.regs[0x17], part.regs[0x18], part.regs[0x1B]) == (0x19, 0x08, 0x33)
    values = drained(seen)
    # 1.5 s of board time is 15 s of the part's: about 94 frames, none lost between reads
    assert 80 <= len(values) <= part.frames_made and part.frames_dropped == 0
    truth = isa_pressure_pa(STANDING_M)
    assert all(abs(v / 10 - truth) <= ABSOLUTE_ACCURACY_PA for v in values), (truth, values[:5])
    # The integer compensation is the datasheet's float one to the 0.1 Pa, frame for frame.
    expected = model_dpa(part, part.log[:len(values)])
    assert max(abs(a - b) for a, b in zip(values, expected)) <= 1
    # Noise: x2 oversampling with IIR 1 (hwsim/bmp390.py's figures), well under 0.1 m of air.
    assert statistics.pstdev(values[5:]) / 10 < 1.2


def test_no_barometer_no_driver_and_baro_read_is_none():
    seen, part = run_baro("read", "300", "100", addr=None)
    assert seen["hz"] == 0 and seen["driver_loaded"] is False
    assert all(values is None for _, values in seen["reads"])
    assert part.reads == 0


def test_a_fall_to_the_floor_shows_as_the_standard_atmospheres_8_pa():
    # Standing (0.8 m) for the first 10 s of the part's measurements, then on the floor.
    seen, part = run_baro("read", "2200", "300", heights=lambda s: STANDING_M if s < 10.0 else ON_THE_FLOOR_M)
    values = drained(seen)
    times = [t - part.on_at for t, _, _ in part.log[:len(values)]]
    before = [v for v, t in zip(values, times) if 4.0 <= t < 10.0]
    after = [v for v, t in zip(values, times) if 11.0 <= t < 17.0]
    assert len(before) >= 30 and len(after) >= 30
    rise_pa = (statistics.mean(after) - statistics.mean(before)) / 10
    expected = isa_pressure_pa(ON_THE_FLOOR_M) - isa_pressure_pa(STANDING_M)
    assert 8.2 < expected < 8.6                        # about 12 Pa a metre at sea level
    assert abs(rise_pa - expected) < 1.0, (rise_pa, expected)


def test_a_full_fifo_drops_the_oldest_and_keeps_the_last_73_frames():
    seen, part = run_baro("read", "600", "300", "1400")  # the first read after ~14 s of the part's
    first = seen["reads"][0][1]
    assert len(first) == FIFO_FRAMES and part.frames_dropped > 0
    values = drained(seen)
    # What the driver read is the last frames the part made before each read, in order.
    expected = model_dpa(part, part.log[part.frames_dropped:part.frames_dropped + len(values)])
    assert max(abs(a - b) for a, b in zip(values, expected)) <= 1


def test_the_fifo_keeps_its_seconds_through_a_deep_sleep():
    # The second boot finds the part running as it wants it and leaves it (and its FIFO) alone.
    seen, part = run_baro("rewake", "800")
    assert len(seen["after_wake"]) >= 40 and part.frames_dropped == 0
    assert part.log[0][0] == part.on_at + 1 / 6.25     # one normal-mode start: no second reset


def test_the_driver_steps_over_a_configuration_change_frame():
    seen, part = run_baro("reconfigure")
    assert part.config_change_frames == 2
    values = seen["values"]
    assert len(values) == part.frames_made >= 30                   # no frame lost behind the 0x48s
    assert max(abs(a - b) for a, b in zip(values, model_dpa(part, part.log))) <= 1


def test_the_compensation_matches_a_published_test_vector():
    # elixir-sensors/bmp3xx's test: this NVM and raw frame are 100876.006 Pa and 30.4993 degC.
    out = run_micropython(SCRIPT, "compensate", str(0x6D9F97), str(0x85D873), REAL_NVM.hex())
    assert out.returncode == 0, out.stderr
    assert "compensated: [1008760, 3050]" in out.stdout


# --- a driver nobody here wrote -----------------------------------------------------------------
class RegisterBus:
    """busio.I2C's calls for Adafruit's driver, carried as hwsim's I2C bus lines (hwsim/i2c.py):
    test plumbing between their driver and the model, not a model of anything."""

    def __init__(self, bus: I2CBus):
        self.bus = bus
        self.pointer: dict[int, int] = {}

    def try_lock(self) -> bool:
        return True

    def unlock(self) -> None:
        pass

    def _ask(self, line: str) -> str:
        answer = self.bus.transfer(line)
        if answer == "NACK":
            raise OSError(19, "no device")
        return answer

    def writeto(self, addr: int, buf, start: int = 0, end: int | None = None) -> None:
        data = bytes(buf[start:end])
        if not data:
            self._ask(f"R {addr} 0 1")               # the probe: an ACK or not
        elif len(data) == 1:
            self.pointer[addr] = data[0]             # the register the next read starts at
        else:
            self._ask(f"W {addr} {data[0]} {data[1:].hex()}")

    def readfrom_into(self, addr: int, buf, start: int = 0, end: int | None = None) -> None:
        end = len(buf) if end is None else end
        buf[start:end] = bytes.fromhex(self._ask(f"R {addr} {self.pointer.get(addr, 0)} {end - start}"))


def test_adafruits_driver_reads_the_same_pressure_as_ours_and_the_truth():
    import adafruit_bmp3xx

    truth = isa_pressure_pa(STANDING_M)
    part = Bmp390(lambda t: (truth, 25.0), time.monotonic, seed=7)   # the same part (seed) as the bench's
    bmp = adafruit_bmp3xx.BMP3XX_I2C(RegisterBus(I2CBus(Recorder(), {0x77: part})), 0x77)
    theirs = [bmp.pressure * 100 for _ in range(20)]     # hPa; forced mode, the reset's x4 oversampling
    raw_p, raw_t = part.out
    assert abs(theirs[-1] - part.cal.pressure(raw_p, part.cal.temperature(raw_t))) < 0.01
    assert abs(statistics.mean(theirs) - truth) <= ABSOLUTE_ACCURACY_PA
    seen, _ = run_baro("read", "1500", "300", seed=7)
    ours = [v / 10 for v in drained(seen)[5:]]
    # Same part, same offset: the two drivers agree to the noise of their means.
    assert abs(statistics.mean(ours) - statistics.mean(theirs)) < 1.0, (statistics.mean(ours), statistics.mean(theirs))


# --- a wrong register fails ---------------------------------------------------------------------
@pytest.mark.parametrize("right,wrong,check", [
    # ODR written to 0x1E (reserved): 200 Hz stays, too fast for x2/x1; the part refuses normal mode
    ("_REG_ODR = const(0x1D)", "_REG_ODR = const(0x1E)", "found"),
    # fifo_stop_on_full set: a full FIFO keeps its oldest frames, not the last seconds
    ("_FIFO_PT_OVERWRITE = const(0x19)", "_FIFO_PT_OVERWRITE = const(0x1B)", "overwrite"),
    # pressure x2 in osr_t's bits: x1 pressure, x2 temperature: noisier than the figures above
    ("_OSR_P2_T1 = const(0x01)", "_OSR_P2_T1 = const(0x08)", "registers"),
])
def test_a_driver_with_a_wrong_register_fails_these_tests(tmp_path, right, wrong, check):
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, firmware)
    source = (firmware / "hal" / "bmp390.py").read_text()
    assert right in source
    (firmware / "hal" / "bmp390.py").write_text(source.replace(right, wrong))
    if check == "found":
        seen, part = run_baro("read", "300", "100", firmware=firmware)
        assert seen["hz"] == 0 and part.regs[0x02] & 0x04                 # conf_err: no barometer
        assert "write to read-only 0x1E" in part.unmodelled
    elif check == "overwrite":
        seen, part = run_baro("read", "600", "300", "1400", firmware=firmware)
        first = seen["reads"][0][1]
        # Nothing dropped (the test above wants the oldest gone): the first read is the
        # first 73 frames the part made, seconds stale, and the newest were lost.
        assert part.frames_dropped == 0 and len(first) == FIFO_FRAMES
        assert max(abs(a - b) for a, b in zip(first, model_dpa(part, part.log[:FIFO_FRAMES]))) <= 1
    else:
        seen, part = run_baro("read", "300", "100", firmware=firmware)
        assert part.regs[0x1C] != 0x01


# --- in hwsim's watch ---------------------------------------------------------------------------
def test_the_simulated_board_finds_and_runs_the_barometer_a_scenario_fits(make_watch, cloud):
    # hal/sim.py probes the I2C bus as hal/esp32.py does; hwsim fits the part for [board] barometer.
    scenario = Scenario(name="baro", board=BoardSpec(barometer=True, barometer_addr=0x76))
    with make_watch(scenario) as w:
        assert w.wait_display("Ready", 20)
        part = w.baro_part
        assert part is not None and part.mode() == 3 and part.regs[0x1D] == 0x05 and part.unmodelled == []
        assert w.meter.state["baro"] == "normal"
        w.set_wrist_height(0.1)
        w.sleep(3)
        # The app drains it with the accelerometer's FIFO at each tick (app/sos.py): never
        # more than a couple of seconds of frames wait in it.
        assert w.baro_part.frames_made >= 15
        assert int.from_bytes(bytes.fromhex(w.i2c.transfer("R 118 18 2")), "little") <= 7 * 13
        assert w.world.wrist_height_m == 0.1
    with make_watch(Scenario(name="plain")) as w:
        assert w.wait_display("Ready", 20)
        assert w.baro_part is None and w.meter.state["baro"] == "absent"


def test_the_part_measures_through_the_simulated_watchs_deep_sleep_and_the_wake_keeps_it(make_watch, cloud):
    # deep_sleep_fall's watch (deep sleep 10 s after its check-in) with a barometer fitted.
    scenario = replace(load("deep_sleep_fall"), board=BoardSpec(barometer=True), timeline=[], expect=[])
    with make_watch(scenario) as w:
        assert w.wait_for(lambda e: e["type"] == "log" and "watch: deep sleep for" in e["line"], 120)
        part = w.baro_part
        started = part.on_at
        bursts = len(part.fifo_bursts)
        w.sleep(6)
        w.press("red", 1.5)                       # ext0: the ESP32 boots again
        assert w.wait_for(lambda e: e["type"] == "log" and "reset cause deepsleep" in e["line"], 60)
        # The second boot found the part running as the driver sets it and left it alone:
        # one normal-mode start, and every measurement since is still counted in order.
        assert part.on_at == started and part.regs[0x1B] == 0x33
        assert not [e for e in w.events if e["type"] == "log" and "barometer not configured" in e["line"]]
        # The app's first drain after the wake (app/sos.py, with the accelerometer's) takes
        # the seconds the part measured while the ESP32 slept: at least 6 s at 6.25 Hz.
        # A driver that reset the part at boot would hand over a frame or two.
        deadline = time.monotonic() + 30
        while len(part.fifo_bursts) <= bursts and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the part's own record until the app's read comes
        assert part.fifo_bursts[bursts] >= 7 * 37 and part.frames_dropped == 0, part.fifo_bursts[bursts:]
