"""A call's state as the watch reports it (a status with a ``call`` part) on the
case's timeline, on SQLite and PostgreSQL: the case whose call command asked for
it, redeliveries recorded once, the case back to "claimed" when the call ends,
pushed live, and nothing recorded for a call outside any case."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cloud import protocol
from cloud.store.models import Command, Device
from tests.cloud.domain.test_lifecycle_escalation import claim_op
from tests.cloud.helpers import alert, case, timeline


def status(world, mid, call, ts=None):
    body = {"v": 1, "mid": mid, "ts": ts, "batt": {"pct": 61}, "call": call}
    return world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/status", json.dumps(body).encode())


def call_events(world, case_id):
    return [d for a, d in timeline(world, case_id) if a == "call_state"]


def test_a_call_back_is_followed_on_its_case_from_dialling_to_its_end(world):
    op = claim_op(world)
    case_id = alert(world, "1.1").case_id
    world.svc.cases.claim(op, case_id)
    world.svc.cases.call_back(op, case_id)
    (cmd,) = [c for _, c in world.sender.sent if c["type"] == "call"]
    assert case(world, case_id).status == "in_call"  # the request (cases.py), not yet the watch

    out = {"state": "dialing", "dir": "out", "number": "+33400000000", "cid": cmd["cid"]}
    for mid, call in (("1.2", out), ("1.3", {**out, "state": "alerting"}), ("1.4", {**out, "state": "active"}),
                      ("1.5", {**out, "state": "ended", "end": "completed", "dur": 134})):
        assert status(world, mid, call, ts=1763780000).accepted
    status(world, "1.5", {**out, "state": "ended", "end": "completed", "dur": 134})  # redelivered

    events = call_events(world, case_id)
    assert [(e["state"], e.get("end"), e.get("dur")) for e in events] == [
        ("dialing", None, None), ("alerting", None, None), ("active", None, None), ("ended", "completed", 134)]
    assert all(e["cid"] == cmd["cid"] and e["watch_ts"] == 1763780000 for e in events)
    assert case(world, case_id).status == "claimed"  # the call is over; the case is not
    cases_pushed = [e for e in world.events.of_type("case") if e["case"]["id"] == case_id]
    assert cases_pushed[-1]["case"]["status"] == "claimed"
    with world.svc.sm() as s:
        last = s.get(Device, world.seed.device_id).last_status
        assert last["batt"] == {"pct": 61} and "call" not in last  # a caller's number is not device state


@pytest.mark.parametrize("end", ["busy", "no_answer", "failed"])
def test_a_call_that_never_connects_says_why(world, end):
    op = claim_op(world)
    case_id = alert(world, "1.1").case_id
    world.svc.cases.claim(op, case_id)
    world.svc.cases.call_back(op, case_id)
    with world.svc.sm() as s:
        cid = s.scalar(select(Command.cid).where(Command.type == "call"))
    status(world, "1.2", {"state": "dialing", "dir": "out", "cid": cid})
    status(world, "1.3", {"state": "ended", "dir": "out", "cid": cid, "end": end})
    assert [(e["state"], e.get("end")) for e in call_events(world, case_id)] == [("dialing", None), ("ended", end)]
    assert case(world, case_id).status == "claimed"


def test_an_answered_incoming_call_puts_a_claimed_case_in_call(world):
    op = claim_op(world)
    case_id = alert(world, "1.1").case_id
    world.svc.cases.claim(op, case_id)
    status(world, "1.2", {"state": "incoming", "dir": "in", "number": "+33400000000"})
    status(world, "1.3", {"state": "active", "dir": "in", "number": "+33400000000"})
    assert case(world, case_id).status == "in_call"
    status(world, "1.4", {"state": "ended", "dir": "in", "end": "completed", "dur": 17})
    assert case(world, case_id).status == "claimed"
    assert [e["state"] for e in call_events(world, case_id)] == ["incoming", "active", "ended"]


def test_a_call_outside_any_case_is_not_recorded_and_the_status_still_counts(world):
    out = status(world, "1.1", {"state": "incoming", "dir": "in", "number": "+33611111111"})
    assert out.accepted and out.case_id is None
    with world.svc.sm() as s:
        assert s.get(Device, world.seed.device_id).last_status["batt"] == {"pct": 61}
    assert world.events.of_type("case") == []


@pytest.mark.parametrize("call", [{"state": "on hold"}, {"state": "ended", "dur": -1},
                                  {"state": "ended", "dur": 360000}, {"state": "active", "number": "x" * 33},
                                  {"dir": "out"}])
def test_a_bad_call_part_is_refused_with_its_reason(call):
    body = json.dumps({"v": 1, "mid": "1.1", "call": call}).encode()
    with pytest.raises(protocol.Rejected) as err:
        protocol.parse_up("pers/v1/watch-1/status", body)
    assert err.value.reason == "invalid" and err.value.detail.startswith("call")
