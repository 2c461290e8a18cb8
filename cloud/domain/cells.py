"""Cell-tower positions from an OpenCelliD-format CSV, offline.

Used when an alert arrives without a GNSS fix: the serving cell gives a
position within its range (hundreds of metres in a city, kilometres in the
country), enough to route the alarm and to send help in the right direction
while the watch keeps trying for a fix."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pers.cells")

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "cells-sample.csv"


@dataclass(frozen=True)
class CellFix:
    lat: float
    lon: float
    range_m: float
    radio: str
    exact: bool  # False: an average of the cells of the same area (LAC/TAC)


class CellDB:
    def __init__(self) -> None:
        self.cells: dict[tuple[int, int, int, int], CellFix] = {}
        self._areas: dict[tuple[int, int, int], list[CellFix]] = {}

    @classmethod
    def load(cls, path: Path | str | None = None) -> CellDB:
        db = cls()
        path = Path(path) if path else SAMPLE
        skipped = 0
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    key = (int(row["mcc"]), int(row["net"]), int(row["area"]), int(row["cell"]))
                    fix = CellFix(float(row["lat"]), float(row["lon"]), float(row.get("range") or 1000),
                                  row.get("radio") or "?", True)
                    if not (-90 <= fix.lat <= 90 and -180 <= fix.lon <= 180):
                        raise ValueError("position out of range")
                except (KeyError, ValueError, TypeError):
                    skipped += 1  # OpenCelliD dumps do hold junk rows; one must not stop the load
                    continue
                db.cells[key] = fix
                db._areas.setdefault(key[:3], []).append(fix)
        log.info("cell database loaded", extra={"path": str(path), "cells": len(db.cells), "skipped": skipped})
        return db

    def lookup(self, mcc: int, mnc: int, lac: int | None, cid: int | None) -> CellFix | None:
        if lac is None:
            return None
        if cid is not None:
            hit = self.cells.get((mcc, mnc, lac, cid))
            if hit is not None:
                return hit
        # An unknown cell in a known area: the area's centroid, with a range that covers its cells.
        peers = self._areas.get((mcc, mnc, lac))
        if not peers:
            return None
        lat = sum(p.lat for p in peers) / len(peers)
        lon = sum(p.lon for p in peers) / len(peers)
        from cloud.domain.geo import distance_m
        reach = max(distance_m((lat, lon), (p.lat, p.lon)) + p.range_m for p in peers)
        return CellFix(lat, lon, reach, peers[0].radio, False)
