"""A wearer-day: how many of each daily activity an older wearer does, to turn the
fall detector's per-trace false alarms into false alarms per day.

Counts are per day; for the activities in hwsim.wrist_motion.CONTINUOUS a count is
minutes (one trace is one minute). Sources, or ASSUMPTION where none was found:
- walking: healthy older adults average 2,000-9,000 steps a day (Tudor-Locke et
  al., IJBNPA 8:80, 2011); 4,500 steps at ~100 steps/min is 45 minutes.
- sitting down: the mean number of daily sit-to-stands in adults ranges from 33 to
  71, at least 45 in most groups (Bohannon, J Phys Ther Sci 27:939, 2015); 48 a
  day, of which ASSUMPTION one in six is "hard" (the last part of the descent
  dropped rather than controlled), the rest gentle.
- the others are ASSUMPTIONS for an older adult living at home, stated so that a
  partner can put their own population's figures in.
"""
from __future__ import annotations

DIARY: dict[str, float] = {
    "walking": 45,          # minutes
    "stairs": 4,            # flights down
    "sitting_down": 40,
    "sitting_hard": 8,
    "sofa_flop": 2,         # ASSUMPTION
    "arm_drop_table": 6,    # ASSUMPTION: a tired forearm let fall onto a table or armrest
    "clapping": 0.3,        # ASSUMPTION: a few bouts a week
    "brushing_teeth": 4,    # minutes: twice a day, two minutes
    "car_door": 0.5,        # ASSUMPTION
    "bus_ride": 10,         # minutes. ASSUMPTION: a 20-minute ride every other day
}


def false_alarms_per_day(alarm_rate: dict[str, float], diary: dict[str, float] = DIARY) -> dict[str, float]:
    """Expected false alarms a day from each activity: its count a day times the share
    of its traces the detector called a fall. Activities missing from ``alarm_rate``
    are not counted (the result names what it counted)."""
    return {label: count * alarm_rate[label] for label, count in diary.items() if label in alarm_rate}


def upper_bound_per_day(alarms: dict[str, int], traces: dict[str, int], diary: dict[str, float] = DIARY) -> float:
    """A 95 % upper bound on false alarms a day: for each activity the one-sided 95 %
    bound on its rate (the "rule of three", 3/n, when none of n traces alarmed; the
    Wilson score bound otherwise), times its count a day."""
    total = 0.0
    for label, count in diary.items():
        n = traces.get(label, 0)
        if n == 0:
            continue
        k = alarms.get(label, 0)
        total += count * (3.0 / n if k == 0 else _wilson_upper(k, n))
    return total


def _wilson_upper(k: int, n: int, z: float = 1.645) -> float:
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5)
    return min(1.0, (centre + spread) / (1 + z * z / n))
