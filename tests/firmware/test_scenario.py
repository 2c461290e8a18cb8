"""The real firmware in hwsim against a real Mosquitto, the test playing the cloud."""
from __future__ import annotations

import json

from cloud.protocol import parse_up
from hwsim.cli import main as hwsim_main
from hwsim.events import Recorder
from hwsim.runner import Watch, run_scenario
from hwsim.scenario import Scenario, WorldSpec, load

from .conftest import DEV, SECRET  # the broker and cloud fixtures come from conftest.py

SPEED = 10  # realistic modem timings (11 s boot) at ten times real speed


def watch(broker, scenario: Scenario | None = None, **kw) -> Watch:
    scenario = scenario or Scenario(name="test")
    scenario.speed = SPEED
    return Watch(DEV, SECRET, ("127.0.0.1", broker.tls_port), scenario=scenario, ca=broker.tls.cafile, **kw)


def valid(kind: str, payload: dict):
    msg = parse_up(f"pers/v1/{DEV}/{kind}", payload["_raw"])[2]
    assert getattr(msg, "flags", []) == [], msg.flags  # valid as sent, not salvaged by the cloud
    return msg


def test_sos_reaches_the_cloud_and_help_is_coming(broker, cloud):
    with watch(broker) as w:
        cloud.wait("status")  # on the network: the modem knows its cell
        w.press("red", 1.5, wait=False)
        alert = valid("alert", cloud.wait("alert")[0])
        assert (alert.kind, alert.trigger) == ("sos", "button")
        assert alert.cell and alert.cell.mcc == 208 and alert.batt
        assert w.wait_display("Calling for help", 1)
        cloud.command(DEV, cid="c-100", type="alert_ack", ref=alert.mid, stage="received")
        assert w.wait_display("Help is coming", 15), w.displays
        ack = valid("ack", cloud.wait("ack", lambda p: p["cid"] == "c-100")[0])
        assert ack.ok and ack.err is None
        presence = [valid("presence", p) for p in cloud.received("presence")]
        assert presence and presence[0].online
        assert valid("status", cloud.wait("status")[0]).fw == "0.1.0"
        cloud.command(DEV, cid="c-101", type="alert_ack", ref=alert.mid, stage="operator",
                      text="An operator is with you")
        assert w.wait_display("An operator is with you", 15)
        cloud.command(DEV, cid="c-102", type="alert_ack", ref=alert.mid, stage="closed")
        assert w.wait_display("Alarm over", 15)


def test_alert_is_resent_until_alert_ack_then_stops(broker, cloud):
    with watch(broker, device_extra={"alert_retry_ms": 10000}) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2, wait=False)
        first = cloud.wait("alert")[0]
        sends = cloud.wait("alert", lambda p: p["mid"] == first["mid"], count=3, timeout=20)
        assert len({p["mid"] for p in sends}) == 1  # the same alert, so the cloud de-duplicates
        assert w.displays[-1] == "Calling for help"  # a PUBACK is not help
        cloud.command(DEV, cid="c-200", type="alert_ack", ref=first["mid"], stage="received")
        assert w.wait_display("Help is coming", 15)
        w.sleep(5)
        settled = len(cloud.received("alert"))
        w.sleep(40)
        assert len(cloud.received("alert")) == settled


def test_alert_waits_on_flash_for_coverage(broker, cloud):
    scenario = Scenario(name="no-coverage", world=WorldSpec(coverage=False))
    with watch(broker, scenario=scenario) as w:
        assert w.wait_display("Ready", 20)
        w.press("red", 1.2)
        assert w.wait_display("Calling for help", 2)
        w.sleep(30)
        assert cloud.received("alert") == []
        assert list((w.flash_dir / "outbox").glob("a*.msg")), "the alert must be on flash"
        w.set_coverage(True)
        alert = valid("alert", cloud.wait("alert", timeout=30)[0])
        assert alert.kind == "sos"


def test_repeated_command_is_acked_twice_acted_once(broker, cloud):
    with watch(broker) as w:
        cloud.wait("status")
        for _ in range(2):
            cloud.command(DEV, cid="m-1", type="message", text="Take your pills", ack_required=False)
        cloud.wait("ack", lambda p: p["cid"] == "m-1", count=2)
        assert w.displays.count("Take your pills") == 1


def test_safe_mode_when_black_held_at_boot(broker):
    with watch(broker, scenario=Scenario(name="safe", held_at_boot=["black"])) as w:
        assert w.wait_display("Safe mode", 10)
        assert w.wait_for(lambda e: e["type"] == "firmware" and e.get("state") == "exited", 10)
        assert "Ready" not in w.displays


def test_reset_cause_and_boot_counter_on_flash(broker, tmp_path):
    for _ in range(2):
        with watch(broker, flash_dir=tmp_path) as w:
            assert w.wait_display("Ready", 10)
    resets = json.loads((tmp_path / "resets.json").read_text())
    assert [r["boot"] for r in resets] == [1, 2]
    assert resets[0]["cause"] == "power_on"


def test_cli_runs_a_scenario_file(broker, cloud, tmp_path, capsys):
    def answer():
        alert = cloud.wait("alert")[0]
        cloud.command(DEV, cid="c-300", type="alert_ack", ref=alert["mid"], stage="received")
    import threading
    threading.Thread(target=answer, daemon=True).start()
    events = tmp_path / "events.jsonl"
    rc = hwsim_main(["run", "sos_demo", "--broker", f"127.0.0.1:{broker.port}", "--device-id", DEV,
                     "--secret", SECRET, "--events", str(events)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "button red pressed" in out and "display: Help is coming" in out and "PASS" in out
    kinds = {json.loads(line)["type"] for line in events.read_text().splitlines()}
    assert {"button", "display", "vibrate", "modem", "network", "link"} <= kinds


def test_cli_fails_with_a_reason(broker, tmp_path, capsys):
    quick = tmp_path / "quick.toml"
    quick.write_text('name = "quick"\n[[timeline]]\nat = 1.0\npress = "red"\nhold = 1.2\n'
                     '[[expect]]\ndisplay = "Help is coming"\nwithin = 6\n')
    rc = hwsim_main(["run", str(quick), "--broker", f"127.0.0.1:{broker.port}",
                     "--device-id", DEV, "--secret", SECRET])
    out = capsys.readouterr().out
    assert rc == 1
    assert 'FAIL: expected display "Help is coming" within 6s' in out
    assert hwsim_main(["run", "no_such_scenario", "--device-id", DEV, "--secret", SECRET]) == 2


def test_clock_from_the_network_fires_a_reminder_at_local_time(broker, cloud):
    # No time at boot; NITZ gives 13:59 UTC in a UTC-5 zone: the 09:00 reminder
    # fires a minute in (09:00 local), the 14:00 one, in the same minute, does not.
    rec = Recorder()
    ok, reason = run_scenario(load("reminder_local_time"), DEV, SECRET, ("127.0.0.1", broker.tls_port),
                              recorder=rec, ca=broker.tls.cafile)
    assert ok, reason
    shown = [e for e in rec.events if e["type"] == "display"]
    pills = [e for e in shown if e["text"] == "Take your pills"]
    assert pills and pills[0]["t"] >= 60, pills
    assert not [e for e in shown if e["text"] == "Wrong zone"]
    nitz = [e for e in rec.events if e["type"] == "modem" and e.get("state") == "network time"]
    assert nitz and nitz[0]["zone_q"] == -20
