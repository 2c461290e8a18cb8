# The fall detector's stages on hand-built wrist samples (mg, 50 Hz), under the real
# MicroPython. The shapes follow what recorded wrist data shows (WEDA-FALL, see
# docs/figures.md), not hwsim's trace model: a fall is a short loss of support, a
# landing of several strikes over a few hundred ms, then the wrist lying turned; a
# hand hitting a table is one strike and a rest; a door slammed has no loss of
# support before its strike.
import mpytest
from mpytest import eq
from app.fall import FallDetector

UP = [0, 0, 1000]       # the wrist at rest, gravity along z
SIDE = [1000, 0, 0]     # turned 90 degrees


def hold(v, seconds):
    return [list(v) for _ in range(int(seconds * 50))]


def run(samples):
    logs = []
    d = FallDetector(50, None, log=logs.append)
    return d.feed(samples), logs


def test_fall_with_a_landing_and_the_wrist_turned():
    landing = [[0, 0, 4000], [0, 0, 600], [1500, 0, 2500], [900, 0, 300], [2200, 0, 1900],
               [400, 300, 800], [1800, 200, 1200], [1200, 0, 500], [1600, 0, 300], [1100, 0, 100]]
    fell, logs = run(hold(UP, 2) + hold([0, 0, 450], 0.2) + landing + hold(SIDE, 4))
    eq(fell, True)
    assert any("-> FALL" in m for m in logs), logs


def test_one_strike_on_a_table_is_rejected_at_the_landing():
    fell, logs = run(hold(UP, 2) + hold([0, 0, 300], 0.3) + [[0, 0, 4000]] + hold(SIDE, 4))
    eq(fell, False)
    assert any("rejected: landing" in m for m in logs), logs


def test_a_strike_without_a_loss_of_support_is_no_candidate():
    # A door slammed: the hand is pushing (above 1 g) until the door stops it.
    fell, logs = run(hold(UP, 2) + hold([0, 0, 1300], 0.4) + [[0, 0, 3500], [0, 0, 2500]] + hold(UP, 4))
    eq(fell, False)
    eq(logs, [])


def test_a_landing_then_walking_away_is_rejected():
    landing = [[0, 0, 4000], [0, 0, 600], [1500, 0, 2500], [900, 0, 300], [2200, 0, 1900], [400, 300, 800]]
    walk = [[0, 0, 1000 + (400 if i % 25 < 12 else -400)] for i in range(200)]
    fell, logs = run(hold(UP, 2) + hold([0, 0, 450], 0.2) + landing + walk)
    eq(fell, False)
    assert any("aftermath" in m and "rejected" in m for m in logs), logs


def test_the_verdict_waits_for_the_aftermath():
    # Fed in FIFO-sized chunks, as the firmware reads the part: no verdict until
    # post_ms after the impact, then exactly one.
    landing = [[0, 0, 4000], [0, 0, 600], [1500, 0, 2500], [900, 0, 300], [2200, 0, 1900],
               [400, 300, 800], [1800, 200, 1200], [1200, 0, 500], [1600, 0, 300], [1100, 0, 100]]
    samples = hold(UP, 2) + hold([0, 0, 450], 0.2) + landing + hold(SIDE, 4)
    d = FallDetector(50, None, log=lambda m: None)
    verdicts = [d.feed(samples[i:i + 32]) for i in range(0, len(samples), 32)]
    eq(verdicts.count(True), 1)
    eq(d.stage, "idle")


# With a barometer: pressures in dPa at 6.25 Hz (one per eight samples), 12 Pa a metre
# at sea level, fed 32 samples at a time with the pressures of their span.
LANDING = [[0, 0, 4000], [0, 0, 600], [1500, 0, 2500], [900, 0, 300], [2200, 0, 1900],
           [400, 300, 800], [1800, 200, 1200], [1200, 0, 500], [1600, 0, 300], [1100, 0, 100]]


def pa(h):
    return 1013250 - int(120 * h)


def run_baro(parts, wake=False):
    # parts: (samples, wrist height at the start, at the end): the height moves linearly
    samples, heights = [], []
    for part, h0, h1 in parts:
        for i, s in enumerate(part):
            samples.append(s)
            heights.append(h0 + (h1 - h0) * (i + 1) / len(part))
    logs = []
    d = FallDetector(50, None, log=logs.append, baro_hz=6.25)
    fell = False
    start = 0
    if wake:  # woken at sample `wake`: the barometer's FIFO holds seconds, the accelerometer's 32 samples
        start = wake
        fell = d.feed(samples[start - 32:start], [pa(heights[k]) for k in range(7, start, 8)])
    for c in range(start, len(samples), 32):
        ps = [pa(heights[k]) for k in range(c + 7, min(c + 32, len(samples)), 8)]
        if d.feed(samples[c:c + 32], ps):
            fell = True
    return fell, logs


def test_with_a_barometer_a_fall_to_the_floor_is_a_fall():
    fell, logs = run_baro([(hold(UP, 3), 0.8, 0.8), (hold([0, 0, 450], 0.2), 0.8, 0.1),
                           (LANDING, 0.1, 0.1), (hold(SIDE, 4), 0.1, 0.1)])
    eq(fell, True)
    assert any("drop 69 cm" in m and "-> FALL" in m for m in logs), logs  # 0.7 m: 84 dPa


def test_with_a_barometer_the_same_landing_on_a_sofa_is_not():
    fell, logs = run_baro([(hold(UP, 3), 0.8, 0.8), (hold([0, 0, 450], 0.2), 0.8, 0.55),
                           (LANDING, 0.55, 0.55), (hold(SIDE, 4), 0.55, 0.55)])
    eq(fell, False)
    assert any("drop 2" in m and "rejected" in m for m in logs), logs


def test_a_landing_in_a_bus_going_downhill_is_not_a_fall():
    # the height keeps changing over the aftermath: 0.5 m/s
    fell, logs = run_baro([(hold(UP, 3), 3.0, 1.5), (hold([0, 0, 450], 0.2), 1.5, 1.4),
                           (LANDING, 1.4, 1.3), (hold(SIDE, 4), 1.3, -0.7)])
    eq(fell, False)
    assert any("drift" in m and "rejected" in m for m in logs), logs


def test_a_slump_with_no_impact_is_found_by_the_height_and_the_turn():
    slide = [[0, 0, 900] for _ in range(100)]
    fell, logs = run_baro([(hold(UP, 6), 0.8, 0.8), (slide, 0.8, 0.1), (hold(SIDE, 6), 0.1, 0.1)])
    eq(fell, True)
    assert any("sank" in m for m in logs), logs


def test_a_lift_going_down_is_not_a_slump():
    # the same height lost, standing still: the forearm does not turn
    fell, logs = run_baro([(hold(UP, 6), 0.8, 0.8), (hold(UP, 2), 0.8, -2.2), (hold(UP, 6), -2.2, -2.2)])
    eq(fell, False)
    assert any("sank" in m for m in logs) and any("rejected" in m for m in logs), logs


def test_after_a_deep_sleep_the_barometer_fifo_gives_the_before():
    # woken by the fall: the first batch carries 32 samples and seconds of pressures
    # the loss of support starts at sample 300, the impact at 310: the interrupt wakes
    # the board and the app reads both FIFOs at 320
    fell, logs = run_baro([(hold(UP, 6), 0.8, 0.8), (hold([0, 0, 450], 0.2), 0.8, 0.1),
                           (LANDING, 0.1, 0.1), (hold(SIDE, 4), 0.1, 0.1)], wake=320)
    eq(fell, True)
    assert any("drop 69 cm" in m for m in logs), logs


def test_pressures_the_part_cannot_give_are_dropped_and_counted_and_the_fall_still_found():
    # A glitching bus or a broken part: zeros, a negative, a huge value among the
    # frames. Nothing raises, they are counted, and the accelerometer and the good
    # pressures still find the fall.
    samples, heights = [], []
    for part, h in ((hold(UP, 3), 0.8), (hold([0, 0, 450], 0.2), 0.1), (LANDING, 0.1), (hold(SIDE, 4), 0.1)):
        samples += part
        heights += [h] * len(part)
    logs = []
    d = FallDetector(50, None, log=logs.append, baro_hz=6.25)
    fell = False
    for c in range(0, len(samples), 32):
        ps = [pa(heights[k]) for k in range(c + 7, min(c + 32, len(samples)), 8)]
        ps[0:0] = [0, -5, 1 << 29] if c % 64 == 0 else []
        if d.feed(samples[c:c + 32], ps):
            fell = True
    eq(fell, True)
    assert d.bad_pressures >= 9, d.bad_pressures
    assert any("drop 69 cm" in m for m in logs), logs


def test_a_broken_barometer_leaves_the_accelerometers_verdict():
    # Every pressure out of range: no height to judge, the accelerometer alone decides.
    d = FallDetector(50, None, log=lambda m: None, baro_hz=6.25)
    samples = hold(UP, 3) + hold([0, 0, 450], 0.2) + LANDING + hold(SIDE, 4)
    fell = False
    for c in range(0, len(samples), 32):
        if d.feed(samples[c:c + 32], [0, 0, 0, 0]):
            fell = True
    eq(fell, True)


def test_heights_from_the_standard_atmospheres_pressures():
    # ISO 2533 (the ICAO standard atmosphere): 101325.0 Pa at sea level, 101316.59 at
    # 0.7 m; 84555.99 at 1500 m, 84548.73 at 1500.7 m. Both are 0.7 m: 70 cm, within 1.
    from app.fall import _cm
    for low, high in ((1013250, 1013166), (845560, 845487)):
        cm = _cm((low - high) << 4, high << 4)
        assert 69 <= cm <= 71, (low, cm)


mpytest.run(globals())
