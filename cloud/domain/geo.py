"""Geometry and time windows used by routing, geofences and location labels.

Distances are geodesic (WGS-84, geopy): a haversine sphere is off by up to
0.5 %, which at a 50 km coverage edge is 250 m of the wrong centre."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geopy.distance import geodesic

if TYPE_CHECKING:
    from cloud.settings import Settings

log = logging.getLogger("pers.geo")

# Mobile country codes of the countries we meet (ITU E.212). A missing MCC
# just means "country unknown": routing then uses positions only.
MCC_COUNTRY = {
    202: "GR", 204: "NL", 206: "BE", 208: "FR", 212: "MC", 213: "AD", 214: "ES", 216: "HU", 218: "BA",
    219: "HR", 220: "RS", 222: "IT", 226: "RO", 228: "CH", 230: "CZ", 231: "SK", 232: "AT", 234: "GB",
    235: "GB", 238: "DK", 240: "SE", 242: "NO", 244: "FI", 246: "LT", 247: "LV", 248: "EE", 260: "PL",
    262: "DE", 268: "PT", 270: "LU", 272: "IE", 274: "IS", 278: "MT", 280: "CY", 284: "BG", 293: "SI",
    295: "LI", 302: "CA", 310: "US", 311: "US", 312: "US", 313: "US", 314: "US", 315: "US", 316: "US",
    505: "AU", 530: "NZ", 604: "MA", 605: "TN", 603: "DZ",
}


def country_of_mcc(mcc: int | None) -> str | None:
    return MCC_COUNTRY.get(mcc) if mcc is not None else None


def mcc_of_operator(op: str | None) -> int | None:
    """``net.op`` is the PLMN ("20801"): its first three digits are the MCC."""
    if op and len(op) >= 5 and op[:3].isdigit():
        return int(op[:3])
    return None


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic(a, b).meters)


def in_polygon(lat: float, lon: float, points: list[Any]) -> bool:
    """Ray casting on (lat, lon). Good for the city- or region-sized polygons
    of coverage areas and geofences; not for polygons crossing the antimeridian."""
    inside = False
    n = len(points)
    if n < 3:
        return False
    j = n - 1
    for i in range(n):
        yi, xi = points[i][0], points[i][1]
        yj, xj = points[j][0], points[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / ((yj - yi) or 1e-300) + xi:
            inside = not inside
        j = i
    return inside


def area_contains(area: dict[str, Any], lat: float, lon: float) -> bool:
    kind = area.get("type")
    if kind == "circle":
        return distance_m((area["lat"], area["lon"]), (lat, lon)) <= float(area["radius_m"])
    if kind == "polygon":
        return in_polygon(lat, lon, area.get("points") or [])
    return False


def validate_area(area: object) -> dict[str, Any]:
    """Raise ValueError with a clear message for a malformed coverage area or geofence."""
    if not isinstance(area, dict):
        raise ValueError("an area is an object")
    kind = area.get("type")
    if kind == "circle":
        lat, lon, r = area.get("lat"), area.get("lon"), area.get("radius_m")
        if not (isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and isinstance(r, (int, float))):
            raise ValueError("a circle needs numeric lat, lon and radius_m")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < r <= 5_000_000):
            raise ValueError("circle out of range (lat ±90, lon ±180, 0 < radius_m <= 5000 km)")
        return {"type": "circle", "lat": float(lat), "lon": float(lon), "radius_m": float(r)}
    if kind == "polygon":
        pts = area.get("points")
        if not isinstance(pts, list) or len(pts) < 3:
            raise ValueError("a polygon needs at least 3 points [lat, lon]")
        clean = []
        for p in pts:
            if (not isinstance(p, (list, tuple)) or len(p) != 2
                    or not all(isinstance(v, (int, float)) for v in p)
                    or not (-90 <= p[0] <= 90 and -180 <= p[1] <= 180)):
                raise ValueError(f"bad polygon point {p!r}: [lat, lon]")
            clean.append([float(p[0]), float(p[1])])
        return {"type": "polygon", "points": clean}
    raise ValueError("area type must be 'circle' or 'polygon'")


# --- time windows (centre hours, geofence schedules) -------------------------------

def _hm(text: str) -> int:
    hh, mm = text.split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60):
        raise ValueError(f"bad time {text!r}")
    return h * 60 + m


def validate_windows(windows: object) -> list[dict[str, Any]] | None:
    if windows is None:
        return None
    if not isinstance(windows, list):
        raise ValueError("hours/schedule is a list of {days, from, to}")
    out: list[dict[str, Any]] = []
    for w in windows:
        if not isinstance(w, dict):
            raise ValueError("each window is {days:[0-6], from:'HH:MM', to:'HH:MM'}")
        days = w.get("days", list(range(7)))
        if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        try:
            _hm(w["from"]), _hm(w["to"])
        except (KeyError, ValueError, AttributeError):
            raise ValueError("from/to are 'HH:MM'") from None
        out.append({"days": days, "from": w["from"], "to": w["to"]})
    return out


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone, using UTC", extra={"tz": tz})
        return ZoneInfo("UTC")


def within_windows(windows: list[Any] | None, tz: str | None, now_utc: datetime) -> bool:
    """True if ``now_utc`` (naive UTC) falls in one of the windows, in local time.
    No windows means always. A window whose ``to`` is before its ``from`` runs past
    midnight (a night shift 20:00-08:00 belongs to the day it starts)."""
    if not windows:
        return True
    local = now_utc.replace(tzinfo=UTC).astimezone(zone(tz))
    minute = local.hour * 60 + local.minute
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    for w in windows:
        start, end = _hm(w["from"]), _hm(w["to"])
        days = w.get("days", list(range(7)))
        if start <= end:
            if today in days and start <= minute < end:
                return True
        else:
            if (today in days and minute >= start) or (yesterday in days and minute < end):
                return True
    return False


# --- labels: reverse geocoding when configured, else "N m from home" -----------------

class Reverser(Protocol):
    """What ReverseGeocoder needs of a geopy geocoder (Nominatim, or a stand-in in tests)."""

    def reverse(self, query: tuple[float, float], *, exactly_one: bool, language: str) -> Any: ...


class ReverseGeocoder:
    """Wraps a geopy geocoder with an LRU cache keyed on ~10 m rounding.

    ``label()`` never blocks the caller (it is called while building case views,
    sometimes inside a transaction): a miss returns None and the lookup runs on a
    background thread; the next view has the address."""

    def __init__(self, geocoder: Reverser, max_entries: int = 10000, language: str = "fr") -> None:
        self.geocoder, self.max_entries, self.language = geocoder, max_entries, language
        self._cache: OrderedDict[tuple[float, float], str | None] = OrderedDict()
        self._pending: set[tuple[float, float]] = set()
        self._lock = threading.Lock()
        self.lookups = 0

    @staticmethod
    def key(lat: float, lon: float) -> tuple[float, float]:
        return (round(lat, 4), round(lon, 4))

    def label(self, lat: float, lon: float, *, wait: bool = False) -> str | None:
        k = self.key(lat, lon)
        with self._lock:
            if k in self._cache:
                self._cache.move_to_end(k)
                return self._cache[k]
            if k in self._pending and not wait:
                return None
            self._pending.add(k)
        if wait:
            return self._lookup(k)
        threading.Thread(target=self._lookup, args=(k,), daemon=True, name="geocode").start()
        return None

    def _lookup(self, k: tuple[float, float]) -> str | None:
        try:
            self.lookups += 1
            found = self.geocoder.reverse(k, exactly_one=True, language=self.language)
            text = getattr(found, "address", None) if found else None
        except Exception as exc:  # a geocoder outage must not break a case view
            log.warning("reverse geocoding failed", extra={"error": str(exc)[:200]})
            text = None
        with self._lock:
            self._pending.discard(k)
            self._cache[k] = text
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return text


_geocoder: ReverseGeocoder | None = None


def set_geocoder(g: ReverseGeocoder | None) -> None:
    """Configured once at start-up (build_services); None disables reverse geocoding."""
    global _geocoder
    _geocoder = g


def get_geocoder() -> ReverseGeocoder | None:
    return _geocoder


def make_geocoder(settings: Settings) -> ReverseGeocoder | None:
    if settings.geocoder == "none":
        return None
    from geopy.geocoders import Nominatim
    kw: dict[str, Any] = {"user_agent": settings.geocoder_user_agent, "timeout": 5}
    if settings.geocoder_url:
        kw["domain"] = settings.geocoder_url
    return ReverseGeocoder(Nominatim(**kw))


def about_m(metres: float) -> int:
    """A distance rounded to what it can mean on a screen: 2 significant figures
    (747 -> 750, 12.4 -> 12), never 0 for a positive one."""
    if metres < 10:
        return max(1, round(metres))
    step = 10 ** (len(str(int(metres))) - 2)
    return int(round(metres / step) * step)


def from_home_words(d: float, acc: float | None) -> str:
    """How far from home, never finer than the fix: within the accuracy circle the
    wearer may be at home; beyond it the distance is rounded to the accuracy."""
    acc = max(acc or 0.0, 0.0)
    if d <= max(acc, 50.0):
        return "at home" if acc <= 50 else f"at home or nearby (within about {about_m(acc)} m)"
    step = 10 ** max(0, len(str(int(acc))) - 1) if acc >= 10 else 1
    rounded = max(step, round(d / step) * step)
    far = f"{rounded} m from home" if rounded < 10000 else f"{rounded / 1000:.1f} km from home"
    return f"about {far}" + (f" (give or take {about_m(acc)} m)" if acc > 50 else "")


def location_label(lat: float | None, lon: float | None,
                   home: tuple[float, float] | None, acc: float | None = None) -> dict[str, Any] | None:
    """What the console shows next to the coordinates."""
    if lat is None or lon is None:
        return None
    out: dict[str, Any] = {"lat": lat, "lon": lon, "address": None, "from_home_m": None, "from_home": None,
                           "accuracy": f"about {about_m(acc)} m" if acc else None,
                           "text": f"{lat:.5f}, {lon:.5f}"}
    if home is not None and None not in home:
        d = distance_m(home, (lat, lon))
        out["from_home_m"] = round(d)
        out["text"] = out["from_home"] = from_home_words(d, acc)
    g = _geocoder
    if g is not None:
        addr = g.label(lat, lon)
        if addr:
            out["address"] = addr
            out["text"] = addr
    return out
