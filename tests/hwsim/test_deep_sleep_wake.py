"""hwsim's ESP32 in deep sleep: only the LIS3DH's INT1, raised from the registers
the firmware's driver writes, wakes it (ext1), and the sensor's 32-deep FIFO
keeps what came before the board reads it. The register values are the free-fall
set-up of ST's AN3308 (6.3, "Free-fall detection": INT1_CFG 0x95, AND of the
three low events; 350 mg; latched with LIR_INT1), here at 50 Hz, +-4 g (32 mg a
threshold step: 11 = 352 mg) and 2 samples (40 ms: recorded wrist falls stay
low for only 2 to 6 samples, docs/figures.md), as firmware/hal/lis3dh.py writes
them (an independent driver says the same: the AND of the low events, 350 mg
for over 30 ms, git.scientificdatasystems.co.uk/william/lis3dh example/README.md);
tests/firmware/test_board_drivers.py runs that driver itself against the same model.
With AOI cleared (0x15, OR of the lows) a worn watch at rest is already "low"
on two axes: the wrong register wakes the board all the time."""
from __future__ import annotations

import pytest

from hwsim import traces
from hwsim.board import DEEP_WAKE_TO_READ_S, BoardBus
from hwsim.events import Recorder
from hwsim.lis3dh import FIFO_CTRL, FIFO_DEPTH, INT1_CFG, INT1_DURATION, INT1_THS, Lis3dh, OnTheBus
from hwsim.scenario import WorldSpec
from hwsim.world import World

DRIVER_WRITES = [(0x20, 0x47), (0x21, 0x00), (0x22, 0x40), (0x23, 0x18), (0x24, 0x48), (0x25, 0x00),
                 (FIFO_CTRL, 0x80), (INT1_THS, 11), (INT1_DURATION, 2), (INT1_CFG, 0x95)]


def sleeping_board(int1_cfg: int = 0x95) -> tuple[BoardBus, Lis3dh]:
    rec = Recorder()
    bus = BoardBus(World(WorldSpec(), rec.now), rec)
    part = Lis3dh(lambda t: (0.0, 0.0, 1000.0))
    bus.accel_part = part
    reg = OnTheBus(part)
    for r, v in DRIVER_WRITES:
        reg.write(r, bytes((int1_cfg if r == INT1_CFG else v,)))
    reg.read(0x31, 1)
    bus._handle({"ev": "deep_sleep", "ms": 3_600_000, "wake": ["red", "accel"]})
    return bus, part


def play(bus: BoardBus, label: str) -> None:
    samples = traces.generate(label, 1)
    for i in range(0, len(samples), 25):
        bus._send({"ev": "accel", "hz": traces.HZ, "s": samples[i:i + 25]})


def test_walking_does_not_wake_the_deep_sleeping_watch_and_a_fall_does():
    bus, part = sleeping_board()
    play(bus, "walking")
    assert not bus.deep_woken and part.int1() == 0 and part.int1_edges == []
    play(bus, "forward")
    assert bus.deep_woken and bus.deep_wake_source == "accel"
    # The FIFO as the board's first read finds it: 32 samples ending
    # DEEP_WAKE_TO_READ_S after the trigger, the free fall and the impact in them.
    fifo = [[part_value(v) for v in s] for s in part.fifo]
    assert len(fifo) == FIFO_DEPTH
    assert any(all(abs(a) < 352 for a in s) for s in fifo)
    assert any(max(abs(a) for a in s) > 2000 for s in fifo)
    assert DEEP_WAKE_TO_READ_S * traces.HZ < FIFO_DEPTH
    # the samples after the read wait for the app (they are not lost, nor in the FIFO)
    assert bus._after_boot and bus._fifo_feed_left == 0


def test_the_wrong_interrupt_register_wakes_it_at_rest():
    bus, part = sleeping_board(int1_cfg=0x15)
    play(bus, "walking")
    assert bus.deep_woken and bus.deep_wake_source == "accel"


@pytest.mark.parametrize("source", ["red", "timer"])
def test_the_button_and_the_timer_are_wake_reasons_too(source):
    bus, _ = sleeping_board()
    if source == "red":
        bus.set_button("red", True)
    else:
        bus.deep_sleep_until = bus.rec.now()
    assert bus.deep_wake_due() and bus.deep_wake_source == source


def part_value(raw: int) -> int:
    # 12-bit left-justified, 2 mg a digit at +-4 g HR (LIS3DH datasheet table 4)
    v = raw - 65536 if raw & 0x8000 else raw
    return (v >> 4) * 2


def test_rtc_memory_survives_deep_sleep_and_not_a_power_on():
    bus, _ = sleeping_board()
    bus._handle({"ev": "rtc_mem", "hex": b"checkin 3600".hex()})
    bus.reset_cause = "deepsleep"
    bus._handle({"ev": "hello"})
    assert bus.rtc_memory == b"checkin 3600"
    bus.reset_cause = "power_on"
    bus._handle({"ev": "hello"})
    assert bus.rtc_memory == b""
