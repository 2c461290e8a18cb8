"""The audit trail never goes back in time: event times follow event ids, even
when every reading of the clock moves it (as a real clock does)."""
from sqlalchemy import select

from cloud.domain.clock import FakeClock
from cloud.store.models import CaseEvent
from tests.cloud.helpers import LYON, alert, centre, circle, only_contract


class MovingClock(FakeClock):
    def now(self):
        self.advance(0.001)
        return super().now()


def test_timeline_times_follow_ids_through_routing_and_escalation(world):
    clock = MovingClock(world.clock.now())
    for svc_part in (world.svc.ingestor, world.svc.ticker.escalator, world.svc.ticker.presence, world.svc.ticker,
                     world.svc.admin):
        svc_part.clock = clock
    world.clock = clock
    a = centre(world, "A", areas=[circle(LYON, 40)])
    b = centre(world, "B", areas=[circle(LYON, 40)])
    only_contract(world, a["id"], b["id"])
    c = alert(world, "1.1").case_id
    alert(world, "1.2")
    clock.advance(world.svc.settings.escalate_unclaimed_s + 1)
    world.svc.ticker.tick()
    with world.svc.sm() as s:
        events = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == c).order_by(CaseEvent.id)))
    assert [e.action for e in events][:3] == ["opened", "routed", "alert_joined"]
    assert "escalated" in [e.action for e in events]
    assert all(x.at <= y.at for x, y in zip(events, events[1:])), [(e.action, e.at) for e in events]
