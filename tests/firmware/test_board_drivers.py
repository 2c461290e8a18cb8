"""The board file's drivers at register level: hal/esp32.py itself runs under
MicroPython (tests/firmware/mpy/hw_board.py) with the machine stand-in wired to
hwsim's models of the parts (hwsim/wires.py): the ST7789 decodes the SPI
stream (D/CX, CSX) into its frame memory, the LIS3DH samples a motion trace
into its FIFO and raises INT1 on a free fall, the ADC reads a cell through the
divider, the PWM log keeps every duty the board set. The models are written
from the parts' datasheets (cited in each), so a driver that sends a wrong
register fails here: two such mistakes are made on purpose at the end."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from hwsim.analog import BatteryAdc
from hwsim.firmware import FIRMWARE_DIR, find_micropython
from hwsim.lis3dh import Lis3dh
from hwsim.st7789 import St7789
from hwsim.wires import Wires

from .helpers import MPY_TESTS, ROOT, run_micropython

ARTIFACTS = ROOT / "test-artifacts"
SCRIPT = MPY_TESTS / "hw_board.py"


def pin_map() -> dict[str, int]:
    """The original ESP32's pins, from hal/esp32.py's own pin_map (plain Python)."""
    tree = ast.parse((FIRMWARE_DIR / "hal" / "esp32.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "pin_map")
    scope: dict = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "pin_map", "exec"), scope)
    return scope["pin_map"]("")


def still_then_fall(t: float) -> tuple[float, float, float]:
    # Worn at rest for 1 s (1 g on z), 0.35 s of free fall (near 0 g), the
    # impact, then lying on the floor on its side.
    if t < 1.0:
        return (30.0, -40.0, 1000.0)
    if t < 1.35:
        return (60.0, -80.0, 90.0)
    if t < 1.40:
        return (900.0, 2600.0, -1500.0)
    return (1000.0, 20.0, 40.0)


def run_board(step: str, *args: str, cell_mv: float = 3805, firmware: Path = FIRMWARE_DIR):
    pins = pin_map()
    panel = St7789(240, 240)
    accel = Lis3dh(still_then_fall)
    with Wires(pins, panel, accel, BatteryAdc(cell_mv)) as wires:
        out = run_micropython(SCRIPT, step, *args, timeout=60, PERS_HWSIM_WIRES=str(wires.port),
                              MICROPYPATH=f".frozen:{firmware}:{MPY_TESTS}")
    assert out.returncode == 0, out.stdout + out.stderr
    seen = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(": ")
        if key.isidentifier() and key != "display":  # the board's console echo is not a report
            seen[key] = json.loads(value)
    assert seen.get("done"), out.stdout
    assert wires.errors == [], wires.errors
    return seen, panel, accel, wires


def font(text: str) -> dict[str, list[int]]:
    """MicroPython's built-in 8x8 glyphs (framebuf), straight from the interpreter."""
    probe = ("import framebuf\nb=bytearray(8)\nf=framebuf.FrameBuffer(b,8,8,framebuf.MONO_HLSB)\n"
             f"for c in {sorted(set(text))!r}:\n f.fill(0);f.text(c,0,0,1);print(c+'|'+bytes(b).hex())\n")
    import subprocess
    lines = subprocess.run([find_micropython(), "-c", probe], capture_output=True, text=True, timeout=10).stdout
    return {ln[0]: list(bytes.fromhex(ln[2:])) for ln in lines.splitlines() if "|" in ln}


def rgb565(r: int, g: int, b: int) -> int:
    return (r & 0xF8) << 8 | (g & 0xFC) << 3 | b >> 3


# --- the panel -------------------------------------------------------------------------
@pytest.mark.parametrize("text,band", [("Calling for help", rgb565(200, 0, 0)),
                                       ("Cancelled - an operator will still check on you", rgb565(255, 176, 0))])
def test_the_panel_shows_the_message_in_large_type(text, band):
    seen, panel, _, _ = run_board("display", text)
    assert panel.violations == [], panel.violations          # every datasheet delay kept
    assert panel.commands[:2] == [0x01, 0x11]                  # SWRESET, SLPOUT
    assert {0x3A, 0x36, 0x21, 0x29} <= set(panel.commands)     # COLMOD, MADCTL, INVON, DISPON
    assert panel.colmod == 0x55 and panel.refused_pixels == 0
    png = panel.png(ARTIFACTS / f"panel-{text.split()[0].lower()}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert panel.pixel(2, 2) == band                           # the state's colour, title band
    scale, lines = seen["layout"]
    assert lines and " ".join(lines) == text
    assert scale >= 3 and (len(lines) <= 3 or scale == 3)   # large type: 24 or 32 pixels
    # Every glyph where the layout puts it (centred lines, 10*scale apart below
    # the 28-pixel band), pixel for pixel against the interpreter's own font.
    glyphs = font(text)
    step = 9 * scale
    y = 28 + (240 - 28 - step * len(lines)) // 2
    fg = 0xFFFF
    for line in lines:
        x = (240 - 8 * scale * len(line)) // 2
        for ch in line:
            for r, bits in enumerate(glyphs[ch]):
                for c in range(8):
                    lit = panel.pixel(x + c * scale + scale // 2, y + r * scale + scale // 2) == fg
                    assert lit == bool(bits & (0x80 >> c)), (line, ch, r, c)
            x += 8 * scale
        y += step
    lit = sum(1 for yy in range(28, 240) for xx in range(240) if panel.pixel(xx, yy) == fg)
    assert lit > 40 * len(text.replace(" ", "")), lit


def test_the_panel_sleeps_with_the_display_and_keeps_the_sleep_timings():
    seen, panel, _, _ = run_board("off")
    assert seen["on"] is False
    assert panel.asleep and not panel.display_on and panel.pixel(120, 120) == 0
    assert panel.commands.count(0x10) == 2 and panel.commands.count(0x11) == 2  # SLPIN, SLPOUT twice
    assert panel.violations == [], panel.violations            # 120 ms between SLPIN and SLPOUT


# --- the accelerometer -------------------------------------------------------------------
def test_a_free_fall_raises_int1_and_wakes_the_sleeping_board():
    seen, _, accel, _ = run_board("fall")
    assert seen["accel_ok"] is True
    assert accel.regs[0x20] >> 4 == 4 and accel.unmodelled == []   # 50 Hz; nothing outside the datasheet
    # INT1 went up in the free fall (1.0-1.35 s after power-up), never at rest:
    # first after 3 samples of it at 50 Hz, again each time the latch was
    # cleared while the fall went on.
    edges = [t - accel.on_at for t in accel.int1_edges]
    assert edges and 1000 < edges[0] <= 1000 + 4 * 20, edges
    assert all(1000 < t <= 1350 + 80 for t in edges), edges
    assert seen["woke"] == "accel" and seen["free_falls"] == 1
    assert seen["slept_ms"] < 2000                                 # the interrupt ended it, not the timer
    # The FIFO held the fall: samples near 0 g on every axis, in milli-g as the trace.
    falling = [s for s in seen["samples"] if all(abs(a) < 350 for a in s)]
    assert falling and all(s == [60, -80, 90] for s in falling), seen["samples"]
    assert [30, -40, 1000] in seen["samples"] or len(falling) >= 3
    # Reading INT1_SRC cleared the latch: a sleep after the fall runs to its timer.
    assert seen["second_woke"] is None and seen["second_sleep_ms"] >= 290
    assert accel.int1() == 0


# --- motor, buzzer, battery -----------------------------------------------------------------
def test_sos_on_the_motor_and_buzzer_and_the_battery_through_the_divider():
    seen, _, _, wires = run_board("haptics", cell_mv=3805)
    pins = pin_map()
    motor = wires.pwm.bursts(pins["vibration"])
    buzzer = wires.pwm.bursts(pins["buzzer"])
    # ... --- ... then the 200 ms buzz: dots are short, dashes three times as long.
    lengths = [b[1] for b in motor]
    assert len(lengths) == 10, motor
    dot = min(lengths[:9])
    kinds = "".join("-" if n > 2 * dot else "." for n in lengths[:9])
    assert kinds == "...---...", lengths
    assert all(b[2] == 20000 and 0 < b[3] < 65535 for b in motor)       # above hearing, not full on
    assert [b[1] > 2 * dot for b in buzzer] == [k == "-" for k in kinds]
    assert all(b[2] == 3000 and b[3] == 32768 for b in buzzer)          # the SOS tone, 50% duty
    # 3.805 V is 50% on the kernel's curve (sp9860g-1h10.dts, ocv-capacity-table-0).
    assert seen["battery"] == {"mv": 3805, "pct": 50}
    assert seen["percent"][:3] == [100, 100, 50] and 45 < seen["percent"][3] < 50
    assert seen["percent"][4:] == [0, 0]


def test_an_adc_left_at_0_db_saturates_and_the_gauge_would_read_empty():
    # The model is no kinder than the chip: at 0 dB the ADC reads at most 950 mV.
    assert BatteryAdc(4100).read_uv(0) == 950_000 and BatteryAdc(4100).read_uv(3) == 2_050_000


# --- a wrong register fails -------------------------------------------------------------
HIGH_FIRST = "p[0] = start >> 8\n        p[1] = start & 0xFF\n        p[2] = end >> 8\n        p[3] = end & 0xFF"


def test_the_activity_interrupt_sees_the_jolt_not_gravity():
    # AN3308 6.2.2: high-pass filtered, OR of the high events past the threshold.
    # Still on the wrist (1 g on z, a constant the filter takes out), the fall and its
    # impact, then lying on the side (gravity moved to x: a step the filter forgets).
    seen, _, accel, _ = run_board("activity")
    assert seen["at_rest"] is False and seen["after_fall"] is True and seen["lying_still"] is False, seen
    assert accel.regs[0x34] == 0x2A and accel.regs[0x21] & 0x02 and accel.regs[0x24] & 0x02
    edges = [t - accel.on_at for t in accel.int2_edges]
    # First in the fall; again only while the filter forgets the impact (it was read at 1.6 s).
    assert edges and 1000 <= edges[0] <= 1450 and all(1000 <= t <= 2200 for t in edges), edges
    assert accel.int1_edges, "the free-fall interrupt is unchanged beside it"


@pytest.mark.parametrize("path,right,wrong,step", [
    # CASET's start and end each high byte first (ST7789V 9.1.20): low byte first moves the window off the memory
    ("hal/st7789.py", HIGH_FIRST, HIGH_FIRST.replace(">> 8", "@").replace("& 0xFF", ">> 8").replace("@", "& 0xFF"),
     "display"),
    # INT1_CFG with AOI clear ORs the low events: x and y are "low" at rest (AN3308 6.3)
    ("hal/lis3dh.py", "FREE_FALL_CFG = const(0x95)", "FREE_FALL_CFG = const(0x15)", "fall"),
    # Activity on the low events (OR): a wrist at rest is "moving" all the time.
    ("hal/lis3dh.py", "ACTIVITY_CFG = const(0x2A)", "ACTIVITY_CFG = const(0x15)", "activity"),
])
def test_a_driver_with_a_wrong_register_fails_these_tests(tmp_path, path, right, wrong, step):
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE_DIR, firmware)
    source = (firmware / path).read_text()
    assert right in source
    (firmware / path).write_text(source.replace(right, wrong))
    # The run itself goes through; what the models saw is what a test above rejects.
    if step == "display":
        _, panel, _, _ = run_board("display", "Calling for help", firmware=firmware)
        assert panel.refused_pixels > 0 and panel.pixel(2, 2) != rgb565(200, 0, 0)
    elif step == "activity":
        seen, _, accel, _ = run_board("activity", firmware=firmware)
        assert seen["at_rest"] is True
    else:
        seen, _, accel, _ = run_board("fall", firmware=firmware)
        assert accel.int1_edges[0] - accel.on_at < 1000 and seen["slept_ms"] < 900  # raised at rest
