"""Routing rules: coverage by position (geodesic circles, polygons) and country,
language, hours, operators present, contract-order fallback, the wearer's home."""
from sqlalchemy import update

from cloud.domain.routing import SEEN_WRITE_EVERY_S, record_operator_seen
from cloud.store.models import Operator, Wearer
from tests.cloud.helpers import (
    GENEVA,
    LYON,
    PARIS,
    PARIS_POLYGON,
    admin,
    alert,
    case,
    centre,
    circle,
    only_contract,
    operator,
    timeline,
)


def three_centres(world, **lyon_extra):
    lyon = centre(world, "Lyon 24/7", areas=[circle(LYON, 40)], languages=["fr"], **lyon_extra)
    geneva = centre(world, "Geneva", areas=[circle(GENEVA, 30)], languages=["fr", "de"], timezone="Europe/Zurich")
    paris = centre(world, "Paris", areas=[{"type": "polygon", "points": PARIS_POLYGON}], languages=["fr"])
    only_contract(world, paris["id"], geneva["id"], lyon["id"])
    return lyon["id"], geneva["id"], paris["id"]


def test_the_centre_covering_the_position_wins_over_contract_order(world):
    lyon, geneva, paris = three_centres(world)
    assert case(world, alert(world, "1.1", loc=GENEVA).case_id).centre_id == geneva
    world.svc.cases.resolve(operator(world, "sup", role="supervisor"), 1, "false_alarm", None)
    assert case(world, alert(world, "1.2", loc=LYON).case_id).centre_id == lyon
    world.svc.cases.resolve(operator(world, "sup2", role="supervisor"), 2, "false_alarm", None)
    c = case(world, alert(world, "1.3", loc=PARIS).case_id)
    assert c.centre_id == paris and c.status == "routed" and c.routed_at is not None
    routed = [d for a, d in timeline(world, c.id) if a == "routed"][0]
    assert routed["basis"] == "alert" and routed["path"][0] == paris


def test_geodesic_edge_of_a_circle(world):
    # 40 km around Lyon: Villefranche (~31 km north) is in, Mâcon (~64 km) is out.
    lyon, geneva, paris = three_centres(world)
    assert case(world, alert(world, "1.1", loc=(45.99, 4.72)).case_id).centre_id == lyon
    world.svc.cases.resolve(operator(world, "s", role="supervisor"), 1, "false_alarm", None)
    # Outside every area: the contract order decides (Paris first).
    c = case(world, alert(world, "1.2", loc=(46.31, 4.83)).case_id)
    assert c.centre_id == paris
    assert "no covering centre: contract order" in [d for a, d in timeline(world, c.id) if a == "routed"][0]["reasons"]


def test_country_coverage_from_the_cell_when_there_is_no_fix(world):
    swiss = centre(world, "Swiss national", countries=["CH"], languages=["fr", "de", "it"])
    lyon = centre(world, "Lyon only", areas=[circle(LYON, 40)])
    only_contract(world, lyon["id"], swiss["id"])
    out = alert(world, "1.1", loc=None, cell={"mcc": 228, "mnc": 99, "lac": 1, "cid": 1})  # a cell not in the CSV
    c = case(world, out.case_id)
    assert c.centre_id == swiss["id"]
    assert c.lat is None  # the home (Lyon) is not used: the cell says Switzerland


def test_language_filter_prefers_a_centre_speaking_the_wearers_language(world):
    fr = centre(world, "Geneva FR", areas=[circle(GENEVA, 30)], languages=["fr"])
    de = centre(world, "Geneva DE", areas=[circle(GENEVA, 30)], languages=["de"])
    only_contract(world, fr["id"], de["id"])
    with world.svc.sm() as s:
        s.execute(update(Wearer).where(Wearer.id == world.seed.wearer_id).values(language="de"))
        s.commit()
    c = case(world, alert(world, "1.1", loc=GENEVA).case_id)
    assert c.centre_id == de["id"]


def test_language_nobody_speaks_is_relaxed_not_unrouted(world):
    only_contract(world, centre(world, "Geneva DE", areas=[circle(GENEVA, 30)], languages=["de"])["id"])
    c = case(world, alert(world, "1.1", loc=GENEVA).case_id)
    assert c.status == "routed"
    assert any("relaxed" in r for r in [d for a, d in timeline(world, c.id) if a == "routed"][0]["reasons"])


def test_hours_filter_skips_a_closed_centre(world):
    # The FakeClock starts on Sunday 2026-11-22 08:00 UTC (09:00 in Lyon).
    weekdays = centre(world, "Lyon weekdays", areas=[circle(LYON, 40)],
                      hours=[{"days": [0, 1, 2, 3, 4], "from": "08:00", "to": "20:00"}], timezone="Europe/Paris")
    night = centre(world, "Lyon nights", areas=[circle(LYON, 40)],
                   hours=[{"days": list(range(7)), "from": "20:00", "to": "08:00"}], timezone="Europe/Paris")
    weekend = centre(world, "Lyon weekend", areas=[circle(LYON, 40)],
                     hours=[{"days": [5, 6], "from": "08:30", "to": "18:00"}], timezone="Europe/Paris")
    only_contract(world, weekdays["id"], night["id"], weekend["id"])
    assert case(world, alert(world, "1.1").case_id).centre_id == weekend["id"]
    world.svc.cases.resolve(operator(world, "s", role="supervisor"), 1, "false_alarm", None)
    world.clock.advance(-3600)  # 08:00 in Lyon: the night shift (20:00-08:00) has just ended, weekend not open
    # Nobody open: relaxed to contract order.
    assert case(world, alert(world, "1.2").case_id).centre_id == weekdays["id"]
    world.clock.advance(-2 * 3600)  # 06:00 in Lyon on Sunday: the night shift that began Saturday 20:00
    world.svc.cases.resolve(operator(world, "s2", role="supervisor"), 2, "false_alarm", None)
    assert case(world, alert(world, "1.3").case_id).centre_id == night["id"]


def test_a_centre_with_operators_present_is_preferred(world):
    a = centre(world, "Lyon A", areas=[circle(LYON, 40)])
    b = centre(world, "Lyon B", areas=[circle(LYON, 40)])
    only_contract(world, a["id"], b["id"])
    op_b = operator(world, "bob", centre_id=b["id"])
    assert record_operator_seen(world.svc.sm, world.clock, op_b.id) is True
    c = case(world, alert(world, "1.1").case_id)
    assert c.centre_id == b["id"]
    # Presence fades: after the window, contract order again.
    world.svc.cases.resolve(op_b, c.id, "false_alarm", None)
    world.clock.advance(world.svc.settings.operator_present_s + 1)
    assert case(world, alert(world, "1.2").case_id).centre_id == a["id"]


def test_operator_presence_writes_are_throttled(world):
    op = operator(world, "ann")
    assert record_operator_seen(world.svc.sm, world.clock, op.id) is True
    world.clock.advance(SEEN_WRITE_EVERY_S - 1)
    assert record_operator_seen(world.svc.sm, world.clock, op.id) is False
    world.clock.advance(2)
    assert record_operator_seen(world.svc.sm, world.clock, op.id) is True
    assert world.svc.accounts.touch(op.id) is False  # the same, through AccountService (for deps.py)
    with world.svc.sm() as s:
        assert s.get(Operator, op.id).last_seen_at == world.clock.now()


def test_no_position_routes_by_the_wearers_home(world):
    lyon, geneva, paris = three_centres(world)
    c = case(world, alert(world, "1.1", loc=None).case_id)
    assert c.centre_id == lyon
    assert [d for a, d in timeline(world, c.id) if a == "routed"][0]["basis"] == "home"


def test_no_contract_leaves_the_case_new_and_the_ticker_routes_it_later(world):
    from sqlalchemy import delete

    from cloud.store.models import Contract
    with world.svc.sm() as s:
        s.execute(delete(Contract).where(Contract.tenant_id == world.seed.tenant_id))
        s.commit()
    c = case(world, alert(world, "1.1").case_id)
    assert c.status == "new" and c.centre_id is None
    geneva = centre(world, "Any")
    world.svc.ticker.tick()
    c = case(world, c.id)
    assert (c.status, c.centre_id) == ("routed", geneva["id"])


def test_bad_coverage_is_refused_with_a_clear_message(world):
    import pytest

    from cloud.domain.errors import Invalid
    with pytest.raises(Invalid) as err:
        centre(world, "Bad", areas=[{"type": "circle", "lat": 95, "lon": 0, "radius_m": 10}])
    assert "out of range" in err.value.message
    with pytest.raises(Invalid):
        centre(world, "Bad2", areas=[{"type": "polygon", "points": [[1, 2], [3, 4]]}])
    with pytest.raises(Invalid):
        centre(world, "Bad3", hours=[{"days": [9], "from": "08:00", "to": "09:00"}])
    # Nothing half-made was left behind.
    assert [c["name"] for c in world.svc.admin.list_centres(admin(world))] == ["Lyon Alarm Centre"]
