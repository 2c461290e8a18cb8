"""The independent fall traces respect the LIS3DH as the firmware configures it, and
the tuning and test sets never share a draw. No detector figure is asserted here."""
import math
import random
import statistics

from hwsim import wearer_day, wrist_motion
from hwsim.accel_readout import FIRMWARE_CONFIG, Readout


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
