"""The world around the watch: where it is, the radio networks it can hear, the
time of day, the wearer's body (heart rate) and the air at the wrist (pressure).

Signal falls with distance from each cell (log-distance path loss), walls cost
a fixed loss, and a coverage hole (cellar, lift) silences every cell. A world
with no positioned cells keeps the single ``cell`` next to the wearer.
"""
from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hwsim.bmp390 import isa_pressure_pa
from hwsim.scenario import CellSpec, OperatorSpec, WorldSpec

PATH_LOSS_EXPONENT = 3.5   # suburban macro cells
REFERENCE_M = 100.0        # a cell's rssi is given at this distance from its site
INDOOR_LOSS_DB = 12
SENSITIVITY_DBM = -120     # below this a cell is not heard at all
EARTH_M = 6371000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass
class Heard:
    cell: CellSpec
    rssi: int


class World:
    def __init__(self, spec: WorldSpec, now: Callable[[], float]):
        self.spec = spec
        self.now = now
        self.lat, self.lon = spec.lat, spec.lon
        self.indoors = spec.indoors
        self.coverage = spec.coverage
        self.coverage_since = 0.0  # scenario time coverage (re)appeared
        self.cell = spec.cell
        self.cells = spec.cells or [spec.cell]
        self.operators = {o.mccmnc: o for o in spec.operators}
        self.broker_up = True
        self.hr_base = spec.hr
        self.skin_contact = spec.skin_contact  # False: the watch is off the wrist
        self._hr_event: tuple[float, int] | None = None  # (when, extra beats per minute)
        self._wall0 = _parse_start(spec.start) if spec.start else time.time()
        self._was_covered = self.covered()
        # The wrist's height above the floor, each change with its time: a barometer's FIFO
        # is filled later (when it is read) with the height each measurement saw.
        self._heights: list[tuple[float, float]] = [(float("-inf"), spec.wrist_height_m)]

    # --- the air at the wrist ----------------------------------------------------------
    @property
    def wrist_height_m(self) -> float:
        """Metres above the floor; set it to move the wrist from now on."""
        return self._heights[-1][1]

    @wrist_height_m.setter
    def wrist_height_m(self, metres: float) -> None:
        self._heights.append((self.now(), float(metres)))

    def set_wrist_height_at(self, t: float, metres: float) -> None:
        """The wrist at ``metres`` from scenario time ``t`` on (a motion played ahead of
        the part's reading: hwsim/board.py play_accel). Times must not go backwards."""
        if t < self._heights[-1][0]:
            raise ValueError(f"wrist height at {t:.3f} s: before the last one set ({self._heights[-1][0]:.3f} s)")
        self._heights.append((t, float(metres)))

    def wrist_height_at(self, t: float) -> float:
        for since, metres in reversed(self._heights):
            if since <= t:
                return metres
        return self._heights[0][1]

    def pressure_pa(self, t: float | None = None) -> float:
        """The true pressure at the wrist (ICAO standard atmosphere, the site's altitude plus
        the wrist's height), now or at scenario time t."""
        h = self.wrist_height_m if t is None else self.wrist_height_at(t)
        return isa_pressure_pa(self.spec.altitude_m + h, self.spec.sea_level_pa)

    def air_at(self, t: float) -> tuple[float, float]:
        """(pressure Pa, temperature degC) at the wrist at scenario time t: a barometer's input."""
        return self.pressure_pa(t), self.spec.air_temp_c

    # --- where the wearer is -----------------------------------------------------
    def position(self) -> tuple[float, float, bool]:
        """(lat, lon, indoors) now: the route if there is one, else the last move."""
        route = self.spec.route
        if route:
            t = self.now()
            if t <= route[0].at:
                w = route[0]
                return w.lat, w.lon, self._indoors(w)
            for a, b in zip(route, route[1:]):
                if a.at <= t <= b.at:
                    f = (t - a.at) / (b.at - a.at) if b.at > a.at else 1.0
                    return (a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f, self._indoors(a))
            w = route[-1]
            return w.lat, w.lon, self._indoors(w)
        return self.lat, self.lon, self.indoors

    def _indoors(self, w) -> bool:
        return self.indoors if w.indoors is None else w.indoors

    def in_hole(self) -> bool:
        lat, lon, _ = self.position()
        return any(distance_m(lat, lon, h.lat, h.lon) <= h.radius_m for h in self.spec.holes)

    # --- radio ----------------------------------------------------------------------
    def heard(self) -> list[Heard]:
        """The cells the modem can hear now, strongest first."""
        if not self.coverage or self.in_hole():
            return []
        lat, lon, indoors = self.position()
        out = []
        for c in self.cells:
            if c.lat is None:
                rssi = c.rssi
            else:
                d = max(REFERENCE_M, distance_m(lat, lon, c.lat, c.lon))
                rssi = c.rssi - 10 * PATH_LOSS_EXPONENT * math.log10(d / REFERENCE_M)
                if indoors:
                    rssi -= INDOOR_LOSS_DB
            if rssi >= SENSITIVITY_DBM:
                out.append(Heard(c, int(round(rssi))))
        return sorted(out, key=lambda h: -h.rssi)

    def covered(self) -> bool:
        return bool(self.heard())

    def operator(self, mccmnc: str) -> OperatorSpec:
        return self.operators.get(mccmnc) or OperatorSpec(int(mccmnc[:3]), int(mccmnc[3:]))

    def check_coverage(self) -> bool:
        """Notes when coverage comes back (registration takes time from then)."""
        now_covered = self.covered()
        if now_covered and not self._was_covered:
            self.coverage_since = self.now()
        self._was_covered = now_covered
        return now_covered

    def set_coverage(self, on: bool) -> None:
        self.coverage = on
        self.check_coverage()

    # --- time and body ----------------------------------------------------------------
    def utc(self) -> float:
        """The true time (satellites and the network know it even when the watch does not)."""
        return self._wall0 + self.now()

    def body_shock(self, extra_bpm: int = 40) -> None:
        """A fall: the heart races, then settles over a few minutes."""
        self._hr_event = (self.now(), extra_bpm)

    def heart_rate(self) -> int:
        hr = self.hr_base
        if self._hr_event:
            since, extra = self.now() - self._hr_event[0], self._hr_event[1]
            rise = min(1.0, since / 10.0)         # climbs over ten seconds
            decay = math.exp(-max(0.0, since - 10.0) / 300.0)  # settles over five minutes
            hr += int(extra * rise * decay)
        return hr


def _parse_start(text: str) -> float:
    return float(calendar.timegm(time.strptime(text.replace("Z", ""), "%Y-%m-%dT%H:%M:%S")))
