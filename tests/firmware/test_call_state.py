"""The real firmware under MicroPython in hwsim tells the cloud what its calls do,
from the modem's own lines, in statuses that the cloud's contract accepts as
sent. Paho plays the cloud (tests/firmware/cloudsim.py). Scenario seconds."""
from __future__ import annotations

from cloud.protocol import parse_up
from hwsim.scenario import FarEndSpec, Scenario

from .conftest import DEV

CENTRE = "+33400000000"


def calls_told(cloud, until_state="ended", timeout=40) -> list:
    """The call parts of the statuses the watch sent, once one says ``until_state``."""
    cloud.wait("status", lambda p: (p.get("call") or {}).get("state") == until_state, timeout=timeout)
    models = [parse_up(f"pers/v1/{DEV}/status", p["_raw"])[2] for p in cloud.received("status")]
    return [m.call for m in models if m.call is not None]


def test_a_call_back_is_reported_from_dialling_to_its_end_with_the_modem_duration(make_watch, cloud):
    scenario = Scenario(name="call", far_end=FarEndSpec(answer_after_s=4, hangup_after_s=75))
    with make_watch(scenario) as w:
        cloud.wait("status")
        cloud.command(DEV, cid="call-7", type="call", number=CENTRE)
        told = calls_told(cloud)
        assert [c.state for c in told] == ["dialing", "alerting", "active", "ended"], told
        assert all((c.dir, c.number, c.cid) == ("out", CENTRE, "call-7") for c in told)
        assert (told[-1].end, told[-1].dur) == ("completed", 75)  # "VOICE CALL: END: 000115"
        assert w.wait_for(lambda e: e["type"] == "audio" and e["state"] == "off", 5)
        assert cloud.wait("ack", lambda p: p["cid"] == "call-7")[0]["ok"]


def test_a_call_back_nobody_answers_is_reported_not_answered(make_watch, cloud):
    scenario = Scenario(name="no-answer", far_end=FarEndSpec(answer="no_answer", no_answer_s=45))
    with make_watch(scenario):
        cloud.wait("status")
        cloud.command(DEV, cid="call-8", type="call", number=CENTRE)
        told = calls_told(cloud)
        assert [(c.state, c.end) for c in told] == [("dialing", None), ("alerting", None), ("ended", "no_answer")]
        assert told[-1].dur is None


def test_the_centre_calling_is_answered_and_reported_in_and_out(make_watch, cloud):
    scenario = Scenario(name="centre-calls", config={"callcenter_number": CENTRE},
                        device={"linger_ms": 3_600_000})
    with make_watch(scenario) as w:
        cloud.wait("status")
        w.incoming_call(CENTRE)
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "answered", 15)
        w.sleep(20)
        w.hangup()
        told = calls_told(cloud)
        assert [c.state for c in told] == ["incoming", "active", "ended"], told
        assert all(c.dir == "in" and c.number == CENTRE and c.cid is None for c in told)
        modem_end = w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "end", 5)
        assert told[-1].end == "completed" and told[-1].dur == modem_end["duration_s"] >= 20
