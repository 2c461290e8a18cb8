# The coarse GNSS country table and the virtual-SIM country policy.
import mpytest
from mpytest import eq
from app import flash
from app.country import mcc_at
from app.vsim import Profiles, choose_country

GENEVA = {"lat": 46.204, "lon": 6.135, "src": "gnss"}
LYON = {"lat": 45.764, "lon": 4.8357, "src": "gnss"}


def test_cities_fall_in_their_country():
    for lat, lon, mcc in ((45.764, 4.836, 208), (48.857, 2.352, 208), (46.204, 6.143, 228),
                          (47.37, 8.54, 228), (46.0, 8.95, 228), (52.52, 13.4, 262),
                          (48.58, 7.75, 208), (48.57, 7.82, 262), (45.46, 9.19, 222),
                          (41.39, 2.17, 214), (38.72, -9.14, 268), (50.85, 4.35, 206),
                          (49.61, 6.13, 270), (52.37, 4.90, 204), (48.21, 16.37, 232),
                          (51.5, -0.12, 234), (46.193, 6.245, 208)):  # Annemasse: France, 5 km from Geneva
        eq(mcc_at(lat, lon), mcc)


def test_outside_the_table_is_none():
    eq(mcc_at(0.0, 0.0), None)
    eq(mcc_at(40.7, -74.0), None)  # New York
    eq(mcc_at(None, 4.8), None)


def test_country_policy():
    # no cell known: the fix decides, even an old one
    eq(choose_country(None, GENEVA, False), (228, "gnss"))
    # a border: a French cell heard in Geneva; a fresh fix wins
    eq(choose_country(208, GENEVA, True), (228, "gnss"))
    # an old fix does not overrule the cell
    eq(choose_country(208, GENEVA, False), (208, "cell"))
    eq(choose_country(208, None, True), (208, "cell"))
    eq(choose_country(None, None, False), (None, None))
    eq(choose_country(None, {"lat": 0.0, "lon": 0.0}, True), (None, None))


def test_ranking_prefers_the_country_at_equal_cost():
    d = mpytest.tmpdir("country")
    fr = {"name": "fr", "mccmnc": ["20801"], "apn": "iot.fr", "priority": 1, "cost": 1.0}
    ch = {"name": "ch", "mccmnc": ["22801"], "apn": "iot.ch", "priority": 2, "cost": 1.0}
    p = Profiles([fr, ch], flash.join(d, "vsim.json"))
    visible = ["20801", "22801"]  # the French cell is the stronger one
    eq([x[0]["name"] for x in p.ranked(visible)], ["fr", "ch"])
    eq([x[0]["name"] for x in p.ranked(visible, country=228)], ["ch", "fr"])
    ch["cost"] = 3.0  # cost still comes first outside an alarm
    eq([x[0]["name"] for x in p.ranked(visible, country=228)], ["fr", "ch"])
    eq([x[0]["name"] for x in p.ranked(visible, alarm=True, country=228)], ["ch", "fr"])


mpytest.run(globals())
