"""The world around the watch: where it is, whether there is coverage, what time it is."""
from __future__ import annotations

import time
from typing import Callable

from hwsim.scenario import WorldSpec


class World:
    def __init__(self, spec: WorldSpec, now: Callable[[], float]):
        self.spec = spec
        self.now = now
        self.lat, self.lon = spec.lat, spec.lon
        self.indoors = spec.indoors
        self.coverage = spec.coverage
        self.coverage_since = 0.0  # scenario time coverage (re)appeared
        self.cell = spec.cell
        self.battery = {"pct": spec.battery_pct, "mv": spec.battery_mv}

    def set_coverage(self, on: bool) -> None:
        if on and not self.coverage:
            self.coverage_since = self.now()
        self.coverage = on

    def wall(self) -> float | None:
        """Real UTC; scenarios may start the watch with no clock."""
        return time.time() if self.spec.wall_clock else None
