"""Energy: each part's current by state, integrated over scenario time, drains the battery.

Figures are datasheet values (ESP32, SIMCom A7670/SIM7600) where the datasheets
give them; the ones marked "estimate" are typical bench readings of such parts.
"""
from __future__ import annotations

from collections.abc import Callable

CURRENT_MA = {
    "mcu": {"deep_sleep": 0.01, "light_sleep": 0.8, "active": 30.0},  # active: estimate (80 MHz, radio off)
    "modem": {"off": 0.02, "booting": 60.0, "searching": 80.0,      # booting/searching: estimate
              "idle": 23.0, "transmit": 500.0, "call": 250.0},      # call: estimate
    "gnss": {"off": 0.0, "acquiring": 30.0, "tracking": 25.0},      # tracking: estimate
    "display": {"off": 0.0, "on": 8.0},                             # small OLED: estimate
    "vibration": {"off": 0.0, "on": 70.0},                          # coin motor: estimate
    "ppg": {"off": 0.001, "on": 1.2},  # MAX30102: 0.7 uA shut down; 0.6 mA + two 7 mA LEDs at 4 % duty
    # BMP390, when fitted (hwsim/bmp390.py): 1.4 uA asleep (datasheet Table 1); in normal mode
    # the part sets its own figure from its oversampling and rate (Meter.set_current).
    "baro": {"absent": 0.0, "sleep": 0.0014, "normal": 0.0174},
}
TX_BURST_S = 0.05  # radio time per chunk of data sent (one LTE scheduling burst)

# Li-ion open-circuit voltage by remaining charge (a typical 1S cell curve).
OCV = [(0, 3300), (5, 3500), (10, 3600), (20, 3700), (40, 3780), (60, 3870), (80, 3980), (100, 4150)]


class Meter:
    """Integrates the current of every part; answers charge used and battery state."""

    def __init__(self, now: Callable[[], float], capacity_mah: float = 600.0, start_pct: float = 100.0):
        self.now = now
        self.capacity_mah = capacity_mah
        self.used_mah = capacity_mah * (100.0 - start_pct) / 100.0
        self.currents = {part: dict(states) for part, states in CURRENT_MA.items()}  # this watch's parts
        self.state = {part: next(iter(states)) for part, states in CURRENT_MA.items()}
        self.state["mcu"] = "active"
        self.by_part = {part: 0.0 for part in CURRENT_MA}
        self._since = now()
        self._bursts_until = 0.0
        # Every change of a part's state and every burst on the air, with its time, once
        # record_timeline() is called: hwsim/power_model.py integrates it from datasheets.
        self.timeline: list[tuple[float, str, str]] | None = None

    def record_timeline(self) -> None:
        t = self.now()
        self.timeline = [(t, part, st) for part, st in self.state.items()]

    def _settle(self) -> None:
        t = self.now()
        dt_h = max(0.0, t - self._since) / 3600.0
        for part, st in self.state.items():
            ma = self.currents[part][st]
            if part == "modem" and st == "idle" and self._bursts_until > self._since:
                burst = min(t, self._bursts_until) - self._since
                extra = (self.currents["modem"]["transmit"] - ma) * burst / 3600.0
                self.by_part[part] += extra
                self.used_mah += extra
            self.by_part[part] += ma * dt_h
            self.used_mah += ma * dt_h
        self._since = t

    def set(self, part: str, state: str) -> None:
        if state not in self.currents[part]:
            raise ValueError(f"{part} has no state {state}")
        self._settle()
        if self.timeline is not None and self.state[part] != state:
            self.timeline.append((self.now(), part, state))
        self.state[part] = state

    def set_current(self, part: str, state: str, ma: float) -> None:
        """A part whose current in a state depends on how it is configured (the barometer's
        normal mode): from now on, for this watch."""
        self._settle()
        self.currents[part][state] = ma

    def transmit(self) -> None:
        """One chunk of data on the air: a burst at transmit current."""
        self._settle()
        if self.timeline is not None:
            self.timeline.append((self.now(), "air", "burst"))
        self._bursts_until = max(self._bursts_until, self.now()) + TX_BURST_S

    def current_ma(self) -> float:
        return sum(self.currents[p][s] for p, s in self.state.items())

    def used(self) -> float:
        self._settle()
        return self.used_mah

    def battery(self) -> dict:
        pct = max(0.0, 100.0 * (1 - self.used() / self.capacity_mah))
        for (p0, v0), (p1, v1) in zip(OCV, OCV[1:]):
            if pct <= p1:
                mv = v0 + (v1 - v0) * (pct - p0) / (p1 - p0)
                break
        else:
            mv = OCV[-1][1]
        return {"pct": int(pct), "mv": int(mv)}

    def report(self) -> dict:
        self._settle()
        return {"used_mah": round(self.used_mah, 4), "by_part_mah": {k: round(v, 4) for k, v in self.by_part.items()},
                "state": dict(self.state)}


def standby_days(capacity_mah: float, cycle_mah: float, cycle_s: float, sleep_ma: float,
                 heartbeat_s: float) -> float:
    """Days on one charge when every heartbeat costs ``cycle_mah`` over ``cycle_s`` and
    the rest of the time the watch draws ``sleep_ma``."""
    per_beat_mah = cycle_mah + sleep_ma * max(0.0, heartbeat_s - cycle_s) / 3600.0
    beats = capacity_mah / per_beat_mah
    return beats * heartbeat_s / 86400.0
