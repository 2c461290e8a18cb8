"""Which side of a zone's edge a fix is on, with its accuracy and the hysteresis
margin, checked against geopy's geodesic (Karney's algorithms, GeographicLib):
a fix is placed with the *direct* problem (``destination``), which nothing in
cloud/domain computes, and the zone's verdict must agree with where it was put."""
import math

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain import zone_shape
from cloud.domain.zone_shape import edge_margin_m, polygon_edge_distance_m, polygon_problem, side

lat = st.floats(min_value=-60, max_value=60, allow_nan=False)
lon = st.floats(min_value=-170, max_value=170, allow_nan=False)
radius = st.floats(min_value=zone_shape.RADIUS_MIN_M, max_value=zone_shape.RADIUS_MAX_M)
acc = st.floats(min_value=0, max_value=500)
bearing = st.floats(min_value=0, max_value=359.9)


def put(centre, metres, towards):
    p = geodesic(meters=metres).destination(centre, towards)
    return p.latitude, p.longitude


@settings(max_examples=150, deadline=None)
@given(lat, lon, radius, acc, bearing, st.floats(min_value=0, max_value=3))
def test_a_circle_counts_a_fix_only_when_its_whole_accuracy_circle_clears_the_band(clat, clon, r, a, b, f):
    area = {"type": "circle", "lat": clat, "lon": clon, "radius_m": r}
    d = r * f
    got = side(area, *put((clat, clon), d, b), a)
    m = edge_margin_m(r)
    tol = 1e-6 * r + 0.01  # the round trip through degrees
    if d - a >= r + m + tol:
        assert got is False
    elif d + a <= r - m - tol:
        assert got is True
    elif abs(d - r) < a or abs(d - r) < m - tol:
        assert got is None  # the accuracy circle straddles the edge, or the fix is in the band


@settings(max_examples=150, deadline=None)
@given(lat, lon, radius, acc, bearing, st.floats(min_value=-1, max_value=1))
def test_walking_along_the_fence_never_decides(clat, clon, r, a, b, u):
    """Anywhere within the margin of the edge, whatever the accuracy: no side, so no crossing."""
    m = edge_margin_m(r)
    area = {"type": "circle", "lat": clat, "lon": clon, "radius_m": r}
    assert side(area, *put((clat, clon), r + 0.95 * m * u, b), a) is None


@settings(max_examples=120, deadline=None)
@given(st.floats(min_value=-60, max_value=60), lon, st.floats(min_value=200, max_value=5000),
       st.floats(min_value=1, max_value=2000), st.floats(min_value=0.1, max_value=0.9))
def test_the_distance_to_a_polygon_edge_matches_the_geodesic(la, lo, size, d, along):
    """A point put d metres due north of the middle of a rectangle's top edge (GeographicLib)
    is d from the polygon within 0.5 % + 0.5 m (the flat projection's allowance)."""
    top = put((la, lo), size, 0)[0]
    east = put((la, lo), size, 90)[1]
    rect = [[la, lo], [la, east], [top, east], [top, lo]]
    foot = (top, lo + (east - lo) * along)
    poly = {"type": "polygon", "points": rect}
    p = put(foot, d, 0)
    assert math.isclose(polygon_edge_distance_m(*p, rect), d, rel_tol=0.005, abs_tol=0.5)
    m = edge_margin_m(None)
    assert side(poly, *p, 0) is (False if d >= 1.01 * m + 1 else side(poly, *p, 0))
    assert side(poly, *p, 0) is not True
    # And as far inside, away from every edge: inside once past the margin, never outside.
    e = min(d, 0.45 * size, 0.9 * along * size, 0.9 * (1 - along) * size)
    q = put(foot, e, 180)
    assert side(poly, *q, 0) is (True if e >= 1.01 * m + 1 else side(poly, *q, 0))
    assert side(poly, *q, 0) is not False


def test_a_coarse_fix_near_a_polygon_decides_nothing():
    park = [[45.760, 4.840], [45.760, 4.860], [45.740, 4.860], [45.740, 4.840]]
    near_edge_outside = (45.7610, 4.850)  # ~110 m north of the top edge
    assert side({"type": "polygon", "points": park}, *near_edge_outside, 10) is False
    assert side({"type": "polygon", "points": park}, *near_edge_outside, 900) is None


@settings(max_examples=120, deadline=None)
@given(lat, lon, st.integers(min_value=4, max_value=12), st.floats(min_value=0.001, max_value=0.4),
       st.lists(st.floats(min_value=0.1, max_value=0.9), min_size=12, max_size=12), st.integers(min_value=0))
def test_a_convex_ring_is_simple_and_swapping_two_neighbours_makes_it_cross(la, lo, n, size, jitter, k):
    """Corners at increasing angles around a centre make a convex ring, which is simple.
    Swapping two consecutive corners of a convex ring of 4+ points makes the chords
    (i-1, i+1) and (i, i+2) edges, and their ends interleave: they cross."""
    step = 2 * math.pi / n
    ring = [[la + size * math.sin(step * (i + jitter[i] - 0.5)), lo + size * math.cos(step * (i + jitter[i] - 0.5))]
            for i in range(n)]
    assert polygon_problem(ring) is None
    i = k % n
    j = (i + 1) % n
    ring[i], ring[j] = ring[j], ring[i]
    assert polygon_problem(ring) == "the polygon's edges cross: draw it without crossing lines"


def test_shapes_that_are_no_zone_are_named():
    bowtie = [[45.0, 4.0], [45.0, 4.001], [45.001, 4.0], [45.001, 4.001]]
    assert (polygon_problem(bowtie) or "").startswith("the polygon's edges cross")
    assert polygon_problem([[45.0, 4.0], [45.0, 4.001]]) == "a polygon needs at least 3 points"
    assert polygon_problem([[45.0, 4.0], [45.0, 4.001], [45.0, 4.002]]) is not None  # on one line
    assert polygon_problem([[45.0, 4.0], [45.0, 4.001], [45.0, 4.0], [45.001, 4.0]]) == "the polygon repeats a point"
    assert polygon_problem([[45.0, 4.0], [45.0, 6.0], [46.0, 5.0]]) is not None  # 150 km wide
    assert zone_shape.radius_problem(5) and zone_shape.radius_problem(60_000) and not zone_shape.radius_problem(150)
