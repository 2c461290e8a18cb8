"""Fault tests: what goes wrong in the field, under the real interpreter.
Times are scenario seconds; long outages run at high speed."""
from __future__ import annotations

import json
import shutil

from hwsim.firmware import FIRMWARE_DIR
from hwsim.scenario import Scenario, WorldSpec

from .conftest import DEV


def alert_mids(cloud):
    return {p["mid"] for p in cloud.received("alert")}


def test_reboot_with_alerts_in_the_outbox_sends_them_once(make_watch, cloud, tmp_path):
    with make_watch(Scenario(name="cellar", world=WorldSpec(coverage=False)), flash_dir=tmp_path) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        assert w.wait_display("Calling for help", 5)
        w.sleep(1)
        assert len(list((tmp_path / "outbox").glob("a*.msg"))) == 1
        w.power_cut()
        assert w.wait_for(lambda e: e["type"] == "firmware" and e.get("state") == "started"
                          and e["t"] > 0 and e.get("pid") != w.events[0].get("pid"), 10)
        w.sleep(5)
        assert w.displays[-1] == "Calling for help"  # the open alarm came back from flash
        w.set_coverage(True)
        alert = cloud.wait("alert", timeout=30)[0]
        cloud.command(DEV, cid="a-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 30)
        w.sleep(20)
    assert alert_mids(cloud) == {alert["mid"]}
    assert alert["mid"].split(".")[1] == "1"  # written before the cut, by the first boot


def test_power_cut_during_an_outbox_write_loses_nothing_and_duplicates_nothing(make_watch, cloud, tmp_path):
    # A cut in the middle of a write leaves the .tmp half: it must be dropped,
    # and the complete alert beside it sent exactly once.
    outbox = tmp_path / "outbox"
    outbox.mkdir(parents=True)
    alert = {"v": 1, "mid": "4.7", "ts": None, "kind": "sos", "trigger": "button", "fw": "0.1.0"}
    (outbox / "a00000004.00000007.msg").write_text(json.dumps({"kind": "alert", "payload": alert}))
    (outbox / "a00000004.00000008.msg.tmp").write_text('{"kind": "alert", "payl')
    (tmp_path / "boot").write_text("4")
    with make_watch(flash_dir=tmp_path) as w:
        got = cloud.wait("alert", timeout=30)[0]
        assert got["mid"] == "4.7"
        assert not list(outbox.glob("*.tmp"))
        cloud.command(DEV, cid="p-1", type="alert_ack", ref="4.7", stage="received")
        assert w.wait_display("Help is coming", 20)
        w.sleep(10)
    assert alert_mids(cloud) == {"4.7"}


def test_power_cuts_at_random_moments_around_a_press(make_watch, cloud, tmp_path):
    # The watch is cut a few times while the alarm is being stored and sent;
    # every alert that exists reaches the cloud, with one mid per press.
    with make_watch(flash_dir=tmp_path) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        assert w.wait_display("Calling for help", 5)
        for delay in (0.05, 0.4, 1.5):
            w.sleep(delay)
            w.power_cut()
        alert = cloud.wait("alert", timeout=30)[0]
        cloud.command(DEV, cid="c-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 30)
        w.sleep(20)
    assert alert_mids(cloud) == {alert["mid"]}
    assert not list((tmp_path / "outbox").glob("a*.msg"))


def test_broker_down_for_ten_minutes_during_an_alarm(make_watch, cloud):
    with make_watch(speed=50) as w:
        cloud.wait("status")
        w.set_broker(False)
        w.press("red", 1.2)
        assert w.wait_display("Calling for help", 5)
        w.sleep(600)
        assert not cloud.received("alert")
        assert w.running()
        w.set_broker(True)
        alert = cloud.wait("alert", timeout=10)[0]  # back-off is capped at a minute
        cloud.command(DEV, cid="b-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 120)
    refused = [e for e in w.events if e["type"] == "link" and e.get("reason") == "broker down"]
    gaps = [b["t"] - a["t"] for a, b in zip(refused, refused[1:])]
    assert gaps and max(gaps) <= 75  # jittered back-off, capped


def test_alert_ack_lost_means_the_alert_is_sent_again_with_back_off(make_watch, cloud):
    with make_watch(Scenario(name="lost-ack", device={"alert_retry_ms": 5000})) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        first = cloud.wait("alert")[0]
        # the ack goes to a mid the watch never sent: as if the real one was lost
        cloud.command(DEV, cid="x-1", type="alert_ack", ref="99.99", stage="received")
        sends = cloud.wait("alert", lambda p: p["mid"] == first["mid"], count=3, timeout=20)
        assert len(sends) >= 3 and w.displays[-1] == "Calling for help"
        cloud.command(DEV, cid="x-2", type="alert_ack", ref=first["mid"], stage="received")
        assert w.wait_display("Help is coming", 30)


def test_no_gnss_fix_indoors_alert_goes_with_the_cell(make_watch, cloud):
    with make_watch(Scenario(name="kitchen", world=WorldSpec(indoors=True), config={"track_s": 30})) as w:
        cloud.wait("status")
        w.press("red", 1.2)
        alert = cloud.wait("alert")[0]
        assert alert["cell"]["cid"] == 67890 and "loc" not in alert
        track = cloud.wait("loc", lambda p: p["reason"] == "alarm", timeout=15)[0]
        assert track["ref"] == alert["mid"] and "loc" not in track and track["cell"]
        assert not [p for p in cloud.received("loc") if p["reason"] == "fix"]


def test_modem_reboot_in_the_middle_of_an_alarm(make_watch, cloud):
    with make_watch() as w:
        cloud.wait("status")
        w.press("red", 1.2)
        alert = cloud.wait("alert")[0]
        w.modem_reboot()
        assert w.wait_for(lambda e: e["type"] == "log" and "rebooted by itself" in e["line"], 30)
        assert w.wait_for(lambda e: e["type"] == "modem" and e.get("state") == "registered"
                          and e["t"] > 20, 60)
        cloud.command(DEV, cid="m-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 60)
        assert w.running()


def test_a_hung_task_stops_the_feeding_and_the_watchdog_resets_the_watch(make_watch, tmp_path):
    # A copy of the firmware with one planted fault: the periodic checks (the
    # fall detector's task) hang for good after a few seconds, while the main
    # loop goes on running. The watchdog must no longer be fed, and hwsim's
    # watchdog (as the ESP32's) restarts the watch with reset cause "wdt".
    fw = tmp_path / "fw"
    shutil.copytree(FIRMWARE_DIR, fw, ignore=shutil.ignore_patterns("__pycache__"))
    routine = fw / "app" / "routine.py"
    src = routine.read_text()
    anchor = "            self.ticked = self.clock.ticks_ms()\n"
    assert anchor in src
    routine.write_text(src.replace(anchor, anchor + "            if n == 20:\n"
                                   "                await asyncio.Event().wait()  # planted: hangs\n"))
    with make_watch(firmware_dir=fw, flash_dir=tmp_path / "flash", speed=20) as w:
        assert w.wait_display("Ready", 20)
        assert w.wait_for(lambda e: e["type"] == "firmware" and e.get("reset_cause") == "wdt", 120)
        assert any(e["type"] == "watchdog" for e in w.events)
