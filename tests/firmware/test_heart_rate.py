"""Heart rate: the board's MAX30102 driver (hal/max30102.py) runs under
MicroPython against hwsim's register-level MAX30102 on the simulated I2C bus,
which shines a PPG at the world's heart rate back at it."""
from __future__ import annotations

import pytest

from hwsim.scenario import Scenario, WorldSpec


def logs(w, text):
    return [e["line"] for e in w.events if e["type"] == "log" and text in e["line"]]


@pytest.mark.parametrize("bpm", [48, 72, 130])
def test_alert_carries_the_heart_rate_read_by_the_driver(make_watch, cloud, bpm):
    # From modem off: the reading (6 s) is done before the modem has booted (11 s).
    scenario = Scenario(name="pulse", world=WorldSpec(hr=bpm))
    with make_watch(scenario) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        alert = cloud.wait("alert", timeout=30)[0]
        assert abs(alert["vitals"]["hr"] - bpm) <= 3, alert
        assert logs(w, "vitals: added to alert %s" % alert["mid"])
        assert w.hr_sensor.reads > 10 and w.hr_sensor.samples_made >= 100
        assert w.meter.state["ppg"] == "off"  # shut down after the reading


def test_no_skin_contact_means_no_reading_and_no_guess(make_watch, cloud):
    with make_watch(Scenario(name="off-wrist", world=WorldSpec(skin_contact=False))) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        alert = cloud.wait("alert", timeout=30)[0]
        w.sleep(10)
        assert "vitals" not in alert and logs(w, "vitals: heart rate None")
        assert not [p for p in cloud.received("alert") if "vitals" in p]


def test_registered_sos_leaves_at_once_with_the_reading_of_the_last_minute(make_watch, cloud):
    with make_watch(Scenario(name="online", world=WorldSpec(hr=88), device={"linger_ms": 600_000})) as w:
        cloud.wait("status", timeout=30)
        assert w.wait_for(lambda e: e["type"] == "log" and "vitals: heart rate 8" in e["line"], 30)
        start = len(w.events)
        w.press("red", 1.2)
        press = w.wait_for(lambda e: e["type"] == "button" and e["down"], 5, start)
        alert = cloud.wait("alert", timeout=10)[0]
        assert abs(alert["vitals"]["hr"] - 88) <= 3
        shown = w.wait_for(lambda e: e["type"] == "display" and e["text"] == "Calling for help", 5, start)
        assert shown["t"] - press["t"] < 2.5  # the hold (1 s), then no wait for the sensor


def test_the_pulse_follows_the_alarm_in_its_position_reports(make_watch, cloud):
    # While the alarm keeps the radio on, a reading of the last minute goes with
    # each position report about it: the call centre sees the pulse change, and a
    # reading that came after the alert had left still reaches it.
    scenario = Scenario(name="pulse-track", world=WorldSpec(hr=76), config={"track_s": 30})
    with make_watch(scenario) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        alert = cloud.wait("alert", timeout=30)[0]
        report = cloud.wait("loc", lambda p: p.get("ref") == alert["mid"] and "vitals" in p, timeout=60)[0]
        assert abs(report["vitals"]["hr"] - 76) <= 3, report
