"""The location history's retention job: old points go, in bounded chunks,
on the ticker's schedule; newer points, alerts and cases stay."""
from sqlalchemy import func, select

from cloud.domain.retention import LocationRetention
from cloud.store.models import Alert, AlertCase, LocationPoint
from tests.cloud.helpers import LYON, alert, loc_report

DAY = 86400


def points(world) -> int:
    with world.svc.sm() as s:
        return s.scalar(select(func.count()).select_from(LocationPoint))


def test_points_older_than_the_retention_go_and_the_rest_stays(world):
    for i in range(30):
        assert loc_report(world, f"1.{i}", *LYON).accepted
        world.clock.advance(60)
    assert alert(world, "1.100").accepted  # its case, with the position on it, is kept for ever
    world.clock.advance(31 * DAY)
    for i in range(20):
        assert loc_report(world, f"2.{i}", *LYON).accepted
    assert points(world) == 50

    result = world.svc.ticker.tick()
    assert result.pruned == 30 and points(world) == 20
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(AlertCase)) == 1
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        assert s.scalar(select(AlertCase.lat)) == LYON[0]
        assert s.scalar(select(func.min(LocationPoint.mid))) == "2.0"

    # Hourly, not every tick: a day later the 20 are old too, but not before the hour.
    world.clock.advance(30 * DAY)
    assert world.svc.ticker.tick().pruned == 0 and points(world) == 20
    world.clock.advance(3600)
    assert world.svc.ticker.tick().pruned == 20 and points(world) == 0


def test_a_run_works_in_chunks_and_stops_at_its_bound(world):
    for i in range(25):
        assert loc_report(world, f"1.{i}", *LYON).accepted
    world.clock.advance(2 * DAY)
    job = LocationRetention(world.svc.sm, world.clock, keep_days=1, chunk=4, max_chunks_per_run=3)
    assert job.run() == 12 and points(world) == 13  # 3 chunks of 4, then the next run carries on
    assert job.run() == 12 and job.run() == 1 and points(world) == 0
    assert job.run() == 0


def test_zero_days_keeps_everything(world):
    assert loc_report(world, "1.1", *LYON).accepted
    world.clock.advance(400 * DAY)
    job = LocationRetention(world.svc.sm, world.clock, keep_days=0)
    assert not job.due(world.clock.now()) and points(world) == 1
