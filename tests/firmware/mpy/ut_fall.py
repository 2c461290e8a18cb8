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


mpytest.run(globals())
