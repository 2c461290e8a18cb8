"""The fall detector with a barometer, end to end: hwsim's watch plays one of
hwsim/wrist_motion.py's motions (the accelerometer's samples over the board's bus,
the wrist's height into the world's air), the BMP390 register model measures that
air into its FIFO, and the firmware's own driver (hal/bmp390.py) drains it over I2C
for app/fall.py, under MicroPython. The same flop onto a sofa is a fall to a watch
without a barometer and not to one with it; a fall to the floor is a fall to both."""
from __future__ import annotations

import re

import pytest

from hwsim.scenario import BoardSpec, Scenario

# Motions of the test set (hwsim/wrist_motion.py), picked from the bench's per-trace
# verdicts: a sofa flop the accelerometer alone calls a fall, and a fall forward.
SOFA = ("sofa_flop", "test", 0)
FALL = ("fall_forward", "test", 0)


def judged(w, timeout: float = 60) -> str:
    """The detector's verdict line on the first candidate (the app logs every stage)."""
    ev = w.wait_for(lambda e: e["type"] == "log" and "aftermath" in e["line"], timeout)
    assert ev is not None, [e["line"] for e in w.events if e["type"] == "log"][-30:]
    return ev["line"]


@pytest.mark.parametrize("barometer", [False, True], ids=["accelerometer only", "with a barometer"])
def test_a_flop_onto_a_sofa(make_watch, cloud, barometer):
    with make_watch(Scenario(name="sofa", board=BoardSpec(barometer=barometer)), speed=10) as w:
        assert w.wait_display("Ready", 30)
        w.sleep(8)  # seconds of air before: the barometer's "before"
        w.motion(*SOFA)
        line = judged(w)
        if barometer:
            lost = int(re.search(r"drop (-?\d+) cm", line).group(1))
            assert lost < 40 and line.endswith("rejected"), line
            assert not any(d.startswith("Fall detected") for d in w.displays), w.displays
        else:
            assert "drop" not in line and line.endswith("FALL"), line
            assert w.wait_display("Fall detected - press to cancel 15", 10), w.displays


def test_a_fall_to_the_floor_with_a_barometer(make_watch, cloud):
    with make_watch(Scenario(name="fall", board=BoardSpec(barometer=True)), speed=10) as w:
        assert w.wait_display("Ready", 30)
        w.sleep(8)
        w.motion(*FALL)
        line = judged(w)
        lost = int(re.search(r"drop (-?\d+) cm", line).group(1))
        assert 45 <= lost <= 90 and line.endswith("FALL"), line
        assert w.wait_display("Fall detected - press to cancel 15", 10), w.displays
