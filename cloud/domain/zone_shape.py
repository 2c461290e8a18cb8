"""The shape of a geofence: what a zone may be, and which side of its edge a fix is on.

A fix counts only when its whole accuracy circle is on one side of the edge, and
then by a margin (``edge_margin_m``): inside means the circle lies at least the
margin within the edge, outside at least the margin beyond it. Between the two
the last side holds, so a watch walking along the fence, or GNSS noise around it,
never flips the state back and forth (a hysteresis band twice the margin wide).

Polygons are school- or park-sized: their edges are measured on a local flat
projection around the fix (equirectangular, with the WGS-84 radii of curvature at
the fix), within a fraction of a percent of the geodesic over a few kilometres."""
from __future__ import annotations

import math
from typing import Any

from cloud.domain.geo import distance_m, in_polygon

RADIUS_MIN_M = 20.0       # below a GNSS fix's own accuracy, a zone would only flap
RADIUS_MAX_M = 50_000.0   # a geofence is a place, not a region (coverage areas are separate)
POLYGON_MAX_POINTS = 200
POLYGON_MAX_SPAN_DEG = 1.0  # ~110 km: the flat projection stays honest below this
WGS84_A = 6_378_137.0               # semi-major axis, metres
WGS84_E2 = 6.694379990141317e-3     # first eccentricity squared (f = 1/298.257223563)


def edge_margin_m(radius_m: float | None) -> float:
    """The hysteresis margin: 10 % of a circle's radius, from 10 m to 50 m (25 m for a polygon)."""
    if radius_m is None:
        return 25.0
    return min(50.0, max(10.0, 0.1 * radius_m))


def _flat(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """(x east, y north) in metres from (lat0, lon0), with the ellipsoid's radii of
    curvature there (meridian M, prime vertical N): a sphere would be off by up to 0.6 %."""
    phi = math.radians(lat0)
    w = 1 - WGS84_E2 * math.sin(phi) ** 2
    m, n = WGS84_A * (1 - WGS84_E2) / w ** 1.5, WGS84_A / math.sqrt(w)
    return math.radians(lon - lon0) * n * math.cos(phi), math.radians(lat - lat0) * m


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def polygon_edge_distance_m(lat: float, lon: float, points: list[Any]) -> float:
    """The distance from (lat, lon) to the nearest edge of the polygon, in metres."""
    flat = [_flat(lat, lon, p[0], p[1]) for p in points]
    n = len(flat)
    return min(_segment_distance(0.0, 0.0, *flat[i], *flat[(i + 1) % n]) for i in range(n))


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_meet(p1: tuple[float, float], p2: tuple[float, float],
                   q1: tuple[float, float], q2: tuple[float, float]) -> bool:
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: float) -> bool:
        return d == 0 and min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return on(q1, q2, p1, d1) or on(q1, q2, p2, d2) or on(p1, p2, q1, d3) or on(p1, p2, q2, d4)


def polygon_problem(points: list[list[float]]) -> str | None:
    """Why this ring of [lat, lon] cannot be a zone, or None: too few or too many
    points, too wide, or not simple (two edges cross or touch, a repeated point)."""
    if len(points) < 3:
        return "a polygon needs at least 3 points"
    if len(points) > POLYGON_MAX_POINTS:
        return f"a polygon has at most {POLYGON_MAX_POINTS} points"
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    if max(lats) - min(lats) > POLYGON_MAX_SPAN_DEG or max(lons) - min(lons) > POLYGON_MAX_SPAN_DEG:
        return "a polygon spans at most 1 degree (about 110 km)"
    pts = [(p[1], p[0]) for p in points]
    n = len(pts)
    if len(set(pts)) != n:
        return "the polygon repeats a point"
    for i in range(n):
        a1, a2 = pts[i], pts[(i + 1) % n]
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _segments_meet(a1, a2, pts[j], pts[(j + 1) % n]):
                return "the polygon's edges cross: draw it without crossing lines"
    if n == 3 and _cross(pts[0], pts[1], pts[2]) == 0:
        return "the polygon's points are on one line"
    return None


def radius_problem(radius_m: float) -> str | None:
    if not RADIUS_MIN_M <= radius_m <= RADIUS_MAX_M:
        return f"the radius is from {RADIUS_MIN_M:g} m to {RADIUS_MAX_M / 1000:g} km"
    return None


def side(area: dict[str, Any], lat: float, lon: float, acc: float | None) -> bool | None:
    """True when the fix (with its accuracy circle) is surely inside the zone by the
    margin, False surely outside by the margin, None in the band between."""
    acc = max(acc or 0.0, 0.0)
    if area["type"] == "circle":
        margin = edge_margin_m(area["radius_m"])
        d = distance_m((area["lat"], area["lon"]), (lat, lon))
        if d + acc <= area["radius_m"] - margin:
            return True
        if d - acc >= area["radius_m"] + margin:
            return False
        return None
    points = area.get("points") or []
    if len(points) < 3:
        return None
    clearance = polygon_edge_distance_m(lat, lon, points) - acc - edge_margin_m(None)
    if clearance < 0:
        return None
    return in_polygon(lat, lon, points)
