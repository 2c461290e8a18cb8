"""A call-back, end to end: the real firmware under `micropython` in hwsim ->
Mosquitto -> the real cloud, the operator acting through the HTTP API. The
watch dials the centre, the far end (hwsim's, from the bundled scenario) rings
and answers or is busy, and the case's timeline says so from the watch's own
reports, with the call's duration as the modem counted it."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from cloud.seed import DEMO_OPERATOR
from hwsim.runner import Watch
from hwsim.scenario import Scenario, load

CENTRE = "+33400000000"  # the demo seed's Lyon centre


def call_states(api: httpx.Client, case_id: int, until, watch: Watch, timeout: float = 60) -> tuple[list[dict], dict]:
    """The case's call_state events once ``until(events)`` holds (the cloud's own record).
    The call lasts 13.8 s here (4 s ringing and 134 s connected, at speed 10); its end
    reaches the cloud within a second of it, so 60 s is four times what it takes."""
    deadline = time.monotonic() + timeout
    while True:
        case = api.get(f"/api/cases/{case_id}").json()
        events = [e["detail"] for e in case["timeline"] if e["action"] == "call_state"]
        if until(events):
            # Read again: the case row and its timeline are two reads, and on
            # PostgreSQL the row may predate the event the second read saw.
            return events, api.get(f"/api/cases/{case_id}").json()
        assert time.monotonic() < deadline, f"the cloud's call events so far: {events}\n{story(watch)}"
        time.sleep(0.2)


def story(watch: Watch, last: int = 60) -> str:
    """What the watch did, for a failure: its log lines and the modem's and the link's events."""
    lines = [f"[{e['t']:7.1f}s] {e.get('line') or {k: v for k, v in e.items() if k != 't'}}"
             for e in watch.events if e["type"] in ("log", "call", "modem", "link", "display")
             and not str(e.get("line", "")).startswith(("mem ", "heap:"))]
    return "the watch's last events:\n" + "\n".join(lines[-last:])


def call_back(stack, scenario: str | Scenario) -> tuple[list[dict], dict, Watch]:
    with Watch(stack.seed.device_id, stack.seed.device_secret,
               scenario=load(scenario) if isinstance(scenario, str) else scenario,
               broker=(stack.settings.mqtt_host, stack.settings.mqtt_tls_port), ca=stack.broker.tls.cafile) as watch, \
            httpx.Client(base_url=stack.url) as api:
        csrf = {"X-CSRF-Token": api.post("/api/auth/login", json={
            "username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]}).json()["csrf_token"]}
        watch.press("red", hold_s=1.5)
        assert watch.wait_display("Help is coming", timeout=60), story(watch)
        (case,) = api.get("/api/cases").json()
        assert api.post(f"/api/cases/{case['id']}/claim", headers=csrf).status_code == 200
        r = api.post(f"/api/cases/{case['id']}/call", headers=csrf, json={})
        assert r.status_code == 200, r.text
        assert watch.wait_for(lambda e: e["type"] == "call" and e.get("state") == "dial"
                              and e.get("number") == CENTRE, timeout=30), story(watch)
        events, case = call_states(api, case["id"], lambda evs: any(e["state"] == "ended" for e in evs), watch)
        return events, case, watch


def test_the_centre_answers_and_the_timeline_shows_connected_and_how_long(stack):
    events, case, watch = call_back(stack, "call_back_answered")
    assert [e["state"] for e in events] == ["dialing", "alerting", "active", "ended"], events
    assert all(e["dir"] == "out" and e["number"] == CENTRE and e["cid"].startswith("c-") for e in events)
    assert events[-1]["end"] == "completed"
    assert events[-1]["dur"] == 134  # the modem's "VOICE CALL: END: 000214", 2 min 14 s
    modem_end = [e for e in watch.events if e["type"] == "call" and e.get("state") == "end"]
    assert modem_end[-1]["duration_s"] == 134 and modem_end[-1]["why"] == "far end hung up"
    assert case["status"] == "claimed"  # the call is over, the case is not


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the cloud's side is the one above
def test_late_modem_answers_during_the_call_lose_nothing(stack):
    # Every 29th AT command answered 3 s late, beyond the firmware's 2 s wait (a busy
    # modem, or a busy host: at speed 10 that wait is 0.2 s of real time). The late
    # answer once passed for the next command's, every answer after it came one
    # behind, and a stale OK ended an AT+CCERTDOWN before its ">": the modem took
    # the next commands for the CA's bytes, the firmware thought it deaf, cut its
    # power in the middle of the call, and the call's end never reached the case.
    scenario = load("call_back_answered")
    scenario = replace(scenario, modem=replace(scenario.modem, late_every=29, late_answer_s=3.0))
    events, case, watch = call_back(stack, scenario)
    assert [e["state"] for e in events] == ["dialing", "alerting", "active", "ended"], events
    assert events[-1]["end"] == "completed" and events[-1]["dur"] == 134, events[-1]
    ends = [e for e in watch.events if e["type"] == "call" and e.get("state") == "end"]
    assert [e["why"] for e in ends] == ["far end hung up"], story(watch)  # never the modem's power cut
    assert not [e for e in watch.events if e["type"] == "modem" and e.get("state") == "certificate written"
                and e.get("bytes") != len(Path(stack.broker.tls.cafile).read_bytes())], story(watch)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the same path as above: one database is enough
def test_a_busy_centre_is_a_call_that_ended_busy_and_never_connected(stack):
    events, case, _ = call_back(stack, "call_back_busy")
    assert [(e["state"], e.get("end")) for e in events] == [("dialing", None), ("alerting", None), ("ended", "busy")]
    assert "dur" not in events[-1]
    assert case["status"] == "claimed"
