"""The independent fall traces respect the LIS3DH as the firmware configures it, and
the tuning and test sets never share a draw. No detector figure is asserted here."""
import math
import os
import random
import statistics
import subprocess
import sys

from hwsim import wearer_day, wrist_motion
from hwsim.accel_readout import FIRMWARE_CONFIG, Readout
from hwsim.baro_readout import BaroReadout


def test_readout_is_the_firmware_configuration_of_the_datasheet():
    # LIS3DH datasheet (ST DocID17530) table 4: +-4 g, high-resolution: 2 mg/digit, 12-bit;
    # firmware/hal/esp32.py converts raw >> 4 << 1, so every reading is an even mg
    assert FIRMWARE_CONFIG.lsb_mg == 2.0 and FIRMWARE_CONFIG.bits == 12
    assert FIRMWARE_CONFIG.code_limits() == (-2048, 2047)
    assert FIRMWARE_CONFIG.range_mg == 4094


def test_every_trace_stays_in_range_on_the_lsb_grid():
    for label in wrist_motion.FALLS + wrist_motion.ACTIVITIES:
        samples = wrist_motion.generate(label, "test", 0)
        assert samples and all(len(s) == 3 for s in samples)
        for s in samples:
            for v in s:
                assert -4096 <= v <= 4094 and v % 2 == 0, (label, s)


def test_an_impact_beyond_the_range_saturates_at_the_last_code():
    m = wrist_motion.Motion(random.Random(0))
    m.still(1.0, pitch=0.0, jitter_mg=0.0)
    m.impact(20000, 0.020, direction=(0.0, 0.0, 1.0), at=0.5)   # 12.7 g over the sample
    m.impact(20000, 0.020, direction=(0.0, 0.0, -1.0), at=0.7)
    z = [s[2] for s in m.read()]
    assert max(z) == 4094 and min(z) == -4096


def test_noise_is_the_datasheet_density_over_the_bandwidth():
    # 220 ug/sqrt(Hz) over ODR/2 = 25 Hz is 1.1 mg rms; 2 mg steps add 2/sqrt(12) = 0.58 mg
    rng = random.Random(1)
    z = [Readout().sample((0.0, 0.0, 1000.0), rng)[2] for _ in range(20000)]
    sd = statistics.pstdev(z)
    expected = math.hypot(0.22 * math.sqrt(25), 2 / math.sqrt(12))
    assert abs(sd - expected) < 0.25, sd
    assert abs(statistics.fmean(z) - 999) < 0.5  # the ADC truncates: half an LSB low on average


def test_a_short_impact_is_averaged_over_its_sample():
    # a 10 ms half-sine of 3 g inside one 20 ms sample: its mean over the sample is
    # 3000 * (2/pi) * (10/20) = 955 mg on top of gravity
    m = wrist_motion.Motion(random.Random(0))
    m.still(1.0, pitch=0.0, jitter_mg=0.0)
    m.impact(3000, 0.010, at=0.5 + 0.004)
    z = [s[2] for s in m.read(Readout(noise_ug_rthz=0.0))]
    assert abs(z[25] - (1000 + 3000 * 2 / math.pi / 2)) <= 10  # 20 sub-steps: within 1 %
    assert z[24] == z[26] == 1000


def test_tuning_and_test_sets_share_no_draw_and_each_is_reproducible():
    for label in ("fall_forward", "arm_drop_table"):
        a = wrist_motion.generate(label, "tuning", 3)
        assert a == wrist_motion.generate(label, "tuning", 3)
        assert a != wrist_motion.generate(label, "test", 3)


def test_false_alarms_per_wearer_day_weight_each_activity_by_its_count():
    diary = {"walking": 45, "sitting_hard": 8}
    fa = wearer_day.false_alarms_per_day({"walking": 0.0, "sitting_hard": 0.25}, diary)
    assert fa == {"walking": 0.0, "sitting_hard": 2.0}
    # none of 30 walking minutes alarmed: the rule of three bounds the rate at 3/30
    bound = wearer_day.upper_bound_per_day({"walking": 0}, {"walking": 30}, {"walking": 45})
    assert bound == 45 * 3 / 30


# --- the barometer's view of the same motions (hwsim/baro_readout.py) -----------------

def test_a_barometer_leaves_the_accelerometer_traces_as_they_were():
    for label in wrist_motion.FALLS + wrist_motion.ACTIVITIES:
        accel, pressures = wrist_motion.generate_with_pressure(label, "tuning", 1)
        assert accel == wrist_motion.generate(label, "tuning", 1), label
        assert pressures and all(isinstance(p, int) for p in pressures)


def test_pressures_are_the_same_in_every_process():
    # the heights' random source is derived from the motion's: it must not depend on
    # anything a new interpreter draws afresh (hash(None) does, before Python 3.12)
    code = ("from hwsim import wrist_motion as w; "
            "print(w.generate_with_pressure('fall_from_chair', 'test', 2)[1][:40])")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1, runs


def test_the_readout_is_as_noisy_as_the_part_model_frame_by_frame():
    # a still wrist with still air: the trace readout's spread per frame is what
    # hwsim's BMP390 register model gives at the same settings (0.73 Pa)
    quiet = BaroReadout().read([0.8] * 50 * 200, 50, random.Random(4), place="still")
    diffs = [(b - a) / 10 for a, b in zip(quiet, quiet[1:])]
    # successive frames of an IIR(1) over white noise: sd of the difference = sd * sqrt(2 (1 - rho)), rho = 1/2
    frame_sd = statistics.pstdev(diffs) / math.sqrt(2 * (1 - 0.5))
    assert 0.6 < frame_sd < 0.9, frame_sd


def test_the_heights_of_a_fall_and_of_sitting_down_are_apart_as_the_anthropometry_says():
    def lost(label, i):
        m = wrist_motion.motion(label, "tuning", i)
        return m.height[0] - m.height[-1]
    falls = [lost("fall_forward", i) for i in range(30)]
    sofa = [lost("sofa_flop", i) for i in range(30)]
    # standing wrist 0.485 x 1.50-1.85 m = 0.73-0.90 m; on the floor 0.03-0.25 m
    assert 0.47 < min(falls) and max(falls) < 0.88
    # a sofa's seat 0.38-0.46 m, the thigh 0.13-0.18 m, or an armrest
    assert max(sofa) < 0.40
