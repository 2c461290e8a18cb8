"""Properties of the geometry that routing and geofences rely on."""
from datetime import datetime, timedelta

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain import geo

lat = st.floats(min_value=-60, max_value=60, allow_nan=False)
lon = st.floats(min_value=-170, max_value=170, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lat, lon, st.floats(min_value=0, max_value=359), st.floats(min_value=10, max_value=50_000),
       st.floats(min_value=0.05, max_value=0.95))
def test_circle_membership_follows_geodesic_distance(clat, clon, bearing, radius, frac):
    inside = geodesic(meters=radius * frac).destination((clat, clon), bearing)
    outside = geodesic(meters=radius * (2 - frac)).destination((clat, clon), bearing)
    area = {"type": "circle", "lat": clat, "lon": clon, "radius_m": radius}
    assert geo.area_contains(area, inside.latitude, inside.longitude)
    assert not geo.area_contains(area, outside.latitude, outside.longitude)


@settings(max_examples=200, deadline=None)
@given(lat, lon, st.floats(min_value=0.001, max_value=1), st.floats(min_value=0.001, max_value=1),
       st.floats(min_value=0.01, max_value=0.99), st.floats(min_value=0.01, max_value=0.99))
def test_a_rectangle_holds_its_inner_points_and_not_its_outer_ones(la, lo, h, w, fy, fx):
    pts = [[la, lo], [la, lo + w], [la + h, lo + w], [la + h, lo]]
    assert geo.in_polygon(la + h * fy, lo + w * fx, pts)
    assert not geo.in_polygon(la + h * (1 + fy), lo + w * fx, pts)
    assert not geo.in_polygon(la + h * fy, lo - w * fx, pts)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=23), st.integers(min_value=1, max_value=23),
       st.integers(min_value=0, max_value=7 * 24 * 60 - 1))
def test_a_window_and_its_complement_cover_every_minute_exactly_once(start_h, length_h, minute):
    end_h = (start_h + length_h) % 24
    if end_h == start_h:
        return
    window = [{"days": list(range(7)), "from": f"{start_h:02d}:00", "to": f"{end_h:02d}:00"}]
    complement = [{"days": list(range(7)), "from": f"{end_h:02d}:00", "to": f"{start_h:02d}:00"}]
    now = datetime(2026, 11, 23) + timedelta(minutes=minute)
    assert geo.within_windows(window, "UTC", now) != geo.within_windows(complement, "UTC", now)
