"""One scenario per behaviour of the watch: the real firmware under
MicroPython in hwsim, at N times real speed, against a real Mosquitto with paho
playing the cloud. Times below are scenario seconds."""
from __future__ import annotations

import json

from cloud.protocol import parse_up
from hwsim.scenario import CellSpec, ModemSpec, OperatorSpec, Scenario, WorldSpec

from .conftest import DEV


def valid(kind: str, payload: dict):
    msg = parse_up(f"pers/v1/{DEV}/{kind}", payload["_raw"])[2]
    assert getattr(msg, "flags", []) == [], msg.flags  # valid as sent, not salvaged by the cloud
    return msg


def ack_alert(cloud, mid, stage="received", cid=None, **kw):
    cloud.command(DEV, cid=cid or f"ack-{mid}-{stage}", type="alert_ack", ref=mid, stage=stage, **kw)


def logs(w, text):
    return [e["line"] for e in w.events if e["type"] == "log" and text in e["line"]]


def test_watch_face_shows_time_then_battery_then_sleeps(make_watch):
    scenario = Scenario(name="face", world=WorldSpec(start="2025-11-22T08:14:00Z", battery_pct=64))
    with make_watch(scenario) as w:
        assert w.wait_display("Ready", 20)
        # No time of its own: the watch knows it once the network has sent it.
        assert w.wait_for(lambda e: e["type"] == "modem" and e.get("state") == "network time", 60)
        w.press("black", 0.3)
        face = w.wait_for(lambda e: e["type"] == "display" and e["text"].startswith("08:1"), 10)
        assert face and face["text"].endswith("Sat 22 Nov"), w.displays
        assert w.wait_for(lambda e: e["type"] == "display" and e["text"].startswith("Battery 6"), 10)
        assert w.wait_for(lambda e: e["type"] == "display_off" and e["t"] > face["t"], 30)


def test_sos_needs_the_hold_and_vibrates_at_once(make_watch, cloud):
    with make_watch() as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 0.4)  # a brush against a sleeve
        w.sleep(5)
        assert "Calling for help" not in w.displays and not cloud.received("alert")
        start = len(w.events)
        w.press("red", 1.3)
        buzz = w.wait_for(lambda e: e["type"] == "vibrate", 5, start)
        shown = w.wait_for(lambda e: e["type"] == "display" and e["text"] == "Calling for help", 5, start)
        assert buzz and shown and buzz["t"] <= shown["t"] + 0.1
        assert valid("alert", cloud.wait("alert")[0]).kind == "sos"


def test_alert_has_cell_and_heart_rate_then_a_fix_and_tracking_follow(make_watch, cloud):
    with make_watch(Scenario(name="track", config={"track_s": 30})) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        alert = valid("alert", cloud.wait("alert")[0])
        assert alert.cell and alert.cell.mcc == 208 and alert.vitals and alert.vitals.hr
        assert alert.loc is None or alert.loc.src in ("last", "gnss")
        fix = valid("loc", cloud.wait("loc", lambda p: p.get("reason") == "fix", timeout=15)[0])
        assert fix.ref == alert.mid and fix.loc.src == "gnss" and fix.loc.acc
        track = cloud.wait("loc", lambda p: p.get("reason") == "alarm", timeout=15)[0]
        assert track["ref"] == alert.mid


def test_second_press_joins_the_case_and_black_cancels_within_the_window(make_watch, cloud):
    with make_watch() as w:
        cloud.wait("status")
        w.press("red", 1.2)
        first = cloud.wait("alert")[0]
        w.press("red", 1.2)
        second = cloud.wait("alert", lambda p: p["mid"] != first["mid"])[0]
        assert second["ref"] == first["mid"] and second["kind"] == "sos"
        w.press("black", 0.3)
        cancel = valid("alert", cloud.wait("alert", lambda p: p["kind"] == "cancel")[0])
        assert cancel.ref == first["mid"] and cancel.trigger == "user"
        assert w.wait_display("Cancelled - an operator will still check on you", 5)


def test_black_after_the_cancel_window_does_not_cancel(make_watch, cloud):
    with make_watch(Scenario(name="late", config={"cancel_window_s": 5})) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        cloud.wait("alert")
        w.sleep(8)
        w.press("black", 0.3)
        w.sleep(10)
        assert not [p for p in cloud.received("alert") if p["kind"] == "cancel"]


def test_fall_starts_a_countdown_then_a_fall_alert_with_a_raised_heart_rate(make_watch, cloud):
    with make_watch(Scenario(name="fall", config={"fall_countdown_s": 10})) as w:
        cloud.wait("status")
        w.accel("fall_forward", seed=1)
        assert w.wait_display("Fall detected - press to cancel 10", 15), w.displays
        alert = valid("alert", cloud.wait("alert", timeout=20)[0])
        assert (alert.kind, alert.trigger) == ("fall", "fall_detector")
        assert alert.vitals.hr > 72
        assert logs(w, "fall: candidate 1 impact") and logs(w, "fall: candidate 1 landing") and logs(w, "-> FALL")
        buzzes = [e for e in w.events if e["type"] == "vibrate"]
        assert len(buzzes) >= 10  # the countdown is felt every second


def test_fall_countdown_cancelled_by_the_wearer(make_watch, cloud):
    with make_watch(Scenario(name="fall-cancel", config={"fall_countdown_s": 15})) as w:
        cloud.wait("status")
        w.accel("fall_sideways", seed=2)
        assert w.wait_display("Fall detected - press to cancel 14", 15), w.displays
        w.press("black", 0.3)
        assert w.wait_display("Fall alarm cancelled", 5)
        w.sleep(25)
        assert not cloud.received("alert")


def test_daily_moves_log_candidates_but_raise_no_alarm(make_watch, cloud):
    with make_watch() as w:
        cloud.wait("status")
        for label in ("walking", "clapping", "stairs"):
            w.accel(label, seed=3)
            w.sleep(8)
        assert not any(t.startswith("Fall detected") for t in w.displays)
        assert not cloud.received("alert")


def test_call_command_dials_and_the_end_of_the_call_is_seen(make_watch, cloud):
    with make_watch() as w:
        cloud.wait("status")
        w.press("red", 1.2)
        cloud.wait("alert")
        cloud.command(DEV, cid="call-1", type="call", number="+33400000000")
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "active", 20)
        assert w.wait_for(lambda e: e["type"] == "audio" and e["state"] == "on", 5)
        w.hangup()
        assert w.wait_for(lambda e: e["type"] == "audio" and e["state"] == "off", 10)
        assert w.wait_for(lambda e: e["type"] == "log" and "call: ended +33400000000" in e["line"], 5)
        assert cloud.wait("ack", lambda p: p["cid"] == "call-1")[0]["ok"]


CALL_RULES = {"callcenter_number": "+33400000000", "whitelist": ["+33611111111"], "kids_mode": True}


def test_kids_mode_lets_only_the_call_centre_and_whitelist_through(make_watch, cloud):
    scenario = Scenario(name="kids", config=CALL_RULES, device={"linger_ms": 3_600_000})
    with make_watch(scenario) as w:
        cloud.wait("status")
        w.incoming_call("+33799999999")
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "end"
                          and e.get("why") == "watch hung up", 15)
        w.incoming_call("+33400000000")
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "answered", 15)
        w.hangup()
        w.sleep(3)
        w.incoming_call("+33611111111")
        assert w.wait_display("Call from +33611111111", 15)
        w.press("black", 0.3)
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "answered"
                          and e.get("number") == "+33611111111", 15)
        w.hangup()
        w.sleep(3)
        w.incoming_sms("+33799999999", "free candy")
        assert w.wait_for(lambda e: e["type"] == "sms" and e.get("state") == "deleted", 15)
        assert "free candy" not in w.displays
        w.incoming_sms("+33611111111", "dinner at 7")
        assert w.wait_display("dinner at 7", 15)


def test_message_is_shown_and_acked_only_when_the_wearer_presses(make_watch, cloud):
    with make_watch(Scenario(name="msg", device={"linger_ms": 600_000})) as w:
        cloud.wait("status")
        cloud.command(DEV, cid="msg-1", type="message", text="Take your pills", ack_required=True)
        assert w.wait_display("Take your pills", 10)
        w.sleep(10)
        assert not cloud.received("ack")
        w.press("black", 0.3)
        ack = valid("ack", cloud.wait("ack", lambda p: p["cid"] == "msg-1")[0])
        assert ack.ok


def test_ring_locate_track_and_vsim_commands(make_watch, cloud):
    with make_watch(Scenario(name="cmds", device={"linger_ms": 600_000})) as w:
        cloud.wait("status")
        cloud.command(DEV, cid="r-1", type="ring", seconds=5)
        assert w.wait_for(lambda e: e["type"] == "vibrate" and e["ms"] == 5000, 10)
        cloud.command(DEV, cid="l-1", type="locate")
        assert cloud.wait("loc", lambda p: p["reason"] == "request")
        cloud.command(DEV, cid="t-1", type="track", interval_s=20, duration_s=60)
        assert len(cloud.wait("loc", lambda p: p["reason"] == "periodic", count=2, timeout=15)) >= 2
        profiles = [{"name": "fr-1", "mccmnc": ["20801"], "apn": "iot.fr", "priority": 1, "cost": 1.0}]
        cloud.command(DEV, cid="v-1", type="vsim", profiles=profiles)
        acks = {p["cid"]: p["ok"] for p in cloud.wait("ack", count=4)}
        assert acks == {"r-1": True, "l-1": True, "t-1": True, "v-1": True}


def test_reminder_fires_at_its_time_of_day(make_watch):
    scenario = Scenario(name="pills", world=WorldSpec(start="2025-11-22T07:59:20Z"),
                        config={"reminders": [{"at": "08:00", "text": "Take your pills"}]})
    with make_watch(scenario) as w:
        assert w.wait_display("Take your pills", 90)


def test_idle_means_modem_off_and_the_heartbeat_wakes_it(make_watch, cloud):
    scenario = Scenario(name="standby", config={"heartbeat_s": 300}, device={"linger_ms": 5000})
    with make_watch(scenario, speed=50) as w:
        cloud.wait("status")
        assert w.wait_for(lambda e: e["type"] == "modem" and e.get("state") == "off", 60)
        assert w.meter.state["modem"] == "off" and w.meter.state["gnss"] == "off"
        # queued while the modem is off: the persistent session delivers it at the next wake
        cloud.command(DEV, cid="q-1", type="ring", seconds=1)
        statuses = cloud.wait("status", count=2, timeout=20)
        assert statuses[1]["uptime"] >= 290
        assert cloud.wait("ack", lambda p: p["cid"] == "q-1", timeout=10)


def test_low_battery_is_sent_once_per_discharge(make_watch, cloud, tmp_path):
    scenario = Scenario(name="low", world=WorldSpec(battery_pct=12))
    with make_watch(scenario, flash_dir=tmp_path) as w:
        low = valid("alert", cloud.wait("alert", lambda p: p["kind"] == "low_battery")[0])
        assert low.trigger == "battery" and low.batt.pct <= 12
        ack_alert(cloud, low.mid)
        w.power_cut()
        cloud.wait("status", count=2)
        w.sleep(70)
    assert len([p for p in cloud.received("alert") if p["kind"] == "low_battery"]) == 1


def test_first_profile_rejected_the_next_one_registers_and_is_reported(make_watch, cloud, tmp_path):
    profiles = [{"name": "cheap", "mccmnc": ["20801"], "apn": "iot.cheap", "priority": 1, "cost": 0.5},
                {"name": "roam", "mccmnc": ["20801"], "apn": "iot.roam", "priority": 2, "cost": 2.0}]
    scenario = Scenario(name="vsim", device={"profiles": profiles},
                        world=WorldSpec(operators=[OperatorSpec(208, 1, "Orange F", apns=["iot.roam"])]))
    with make_watch(scenario, flash_dir=tmp_path) as w:
        status = valid("status", cloud.wait("status", timeout=30)[0])
        assert status.net.profile == "roam"
        assert logs(w, "profile cheap rejected on 20801")
    assert json.loads((tmp_path / "vsim.json").read_text()) == {"208": ["roam", "20801"]}


def test_in_an_alarm_with_no_profile_registering_the_watch_dials_the_emergency_number(make_watch):
    profiles = [{"name": "home", "mccmnc": ["20801"], "apn": "iot.home", "priority": 1, "cost": 1.0}]
    scenario = Scenario(name="nowhere", device={"profiles": profiles}, config={"emergency_number": "112"},
                        world=WorldSpec(operators=[OperatorSpec(208, 1, apns=["other"])]))
    with make_watch(scenario) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "dial"
                          and e.get("number") == "112", 200)
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "active", 20)


def test_a7670_family_layouts_work_end_to_end(make_watch, cloud):
    scenario = Scenario(name="a7670", modem=ModemSpec(family="A7670", cpin="+CPIN:READY"))
    with make_watch(scenario) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        alert = valid("alert", cloud.wait("alert")[0])
        assert alert.cell.rssi == -85
        fix = valid("loc", cloud.wait("loc", lambda p: p.get("reason") == "fix", timeout=15)[0])
        assert abs(fix.loc.lat - 45.764) < 1e-4 and fix.loc.acc == 4.5
        assert w.modem.gnss_on_at is not None


def test_flat_battery_shuts_down_cleanly_and_the_next_boot_knows_it(make_watch, tmp_path):
    with make_watch(Scenario(name="flat", world=WorldSpec(battery_pct=1)), flash_dir=tmp_path) as w:
        assert w.wait_display("Battery empty", 30)
        assert w.wait_for(lambda e: e["type"] == "board" and e.get("state") == "power_off", 30)
        assert w.wait_for(lambda e: e["type"] == "firmware" and e.get("state") == "exited", 30)
        w.power_on()
        assert w.wait_for(lambda e: e["type"] == "log" and "after a clean shutdown" in e["line"], 30)
    resets = json.loads((tmp_path / "resets.json").read_text())
    assert resets[0]["clean"] is False and resets[1]["clean"] is True
    assert resets[1]["shutdown"] == "battery empty"


def test_dead_data_link_fails_over_to_the_next_profile_and_is_remembered(make_watch, cloud, tmp_path):
    profiles = [{"name": "cheap", "mccmnc": ["20801"], "apn": "iot.cheap", "priority": 1, "cost": 1.0},
                {"name": "other", "mccmnc": ["20810"], "apn": "iot.other", "priority": 2, "cost": 2.0}]
    world = WorldSpec(cells=[CellSpec(208, 1, cid=1, rssi=-80), CellSpec(208, 10, cid=2, rssi=-85)],
                      operators=[OperatorSpec(208, 1, "Orange F", apns=["iot.cheap"], data=False),
                                 OperatorSpec(208, 10, "SFR", apns=["iot.other"])])
    scenario = Scenario(name="deadlink", world=world, device={"profiles": profiles})
    with make_watch(scenario, flash_dir=tmp_path) as w:
        status = valid("status", cloud.wait("status", timeout=40)[0])
        assert status.net.profile == "other" and status.net.op == "20810"
        assert logs(w, "registered with profile cheap") and logs(w, "data link dead on cheap")
    with make_watch(scenario, flash_dir=tmp_path) as w:  # next boot: straight to the good one, no scan
        cloud.wait("status", lambda p: p["mid"].split(".")[1] == "2", timeout=30)
        assert logs(w, "registered with profile other") and not logs(w, "networks in range")
