"""The modem as the SIMCom manuals describe it, not as kind as the firmware
might wish: registration as URCs after AT+COPS answers, 2G fallback, URCs
inside answers, ATH that leaves a voice call alone, a variant with no GNSS, a
modem that never answers. The real firmware in hwsim, a real Mosquitto."""
from __future__ import annotations

import json

from cloud.protocol import parse_up
from hwsim.scenario import CellSpec, ModemSpec, Scenario, WorldSpec, load

from .conftest import DEV


def valid(kind: str, payload: dict):
    msg = parse_up(f"pers/v1/{DEV}/{kind}", payload["_raw"])[2]
    assert getattr(msg, "flags", []) == [], msg.flags
    return msg


def modem_events(w, state):
    return [e for e in w.events if e["type"] == "modem" and e.get("state") == state]


def test_sos_without_gnss_goes_with_the_cell(make_watch, cloud):
    with make_watch(load("modem_without_gnss"), speed=10) as w:
        assert w.wait_for(lambda e: e["type"] == "log" and "modem: no GNSS" in e["line"], 60)
        cloud.wait("status", timeout=60)  # on the network: the modem knows its cell
        w.press("red", 1.5, wait=False)
        alert = valid("alert", cloud.wait("alert", timeout=60)[0])
        assert alert.cell and (alert.cell.mcc, alert.cell.cid) == (208, 67890)
        assert alert.loc is None or alert.loc.src != "gnss"
        cloud.command(DEV, cid="c-1", type="alert_ack", ref=alert.mid, stage="received")
        assert w.wait_display("Help is coming", 30)
        w.sleep(10)  # the alarm's location reports: still no GNSS asked for
        assert not [e for e in w.events if e["type"] == "gnss"], "the model says no GNSS: never asked"


def test_gsm_fallback_counts_as_registered(make_watch, cloud):
    # Only a 2G cell: +CREG/+CGREG say registered, +CEREG never does.
    scenario = Scenario(name="gsm", world=WorldSpec(cell=CellSpec(208, 1, rat="GSM", rssi=-75)))
    with make_watch(scenario, speed=10) as w:
        cloud.wait("status", timeout=90)  # registered, and the data link up, over 2G
        w.sleep(5)  # a poll or two: the serving cell read from +CPSI
        w.press("red", 1.5, wait=False)
        alert = valid("alert", cloud.wait("alert", timeout=60)[0])
        assert alert.cell and alert.cell.rat == "GSM" and alert.cell.rssi == -75


def test_a7670_cell_signal_is_converted_from_report_values(make_watch, cloud):
    scenario = Scenario(name="a7670", modem=ModemSpec(family="A7670"),
                        world=WorldSpec(cell=CellSpec(208, 1, rssi=-85)))
    with make_watch(scenario, speed=10) as w:
        cloud.wait("status", timeout=90)
        w.sleep(5)  # a poll or two: the serving cell read from +CPSI
        w.press("red", 1.5, wait=False)
        alert = valid("alert", cloud.wait("alert", timeout=60)[0])
        assert alert.cell and alert.cell.rssi == -85  # the RSSI report value 16


def test_call_arriving_amid_answers_is_still_answered(make_watch, cloud):
    # Seeded: half the URCs wait for the next command and land between its lines.
    scenario = Scenario(name="interleaved", modem=ModemSpec(urc_interleave_seed=5),
                        config={"callcenter_number": "+33400000000"}, device={"linger_ms": 3_600_000})
    with make_watch(scenario, speed=10) as w:
        cloud.wait("status", timeout=90)
        w.incoming_call("+33400000000")
        assert w.wait_for(lambda e: e["type"] == "call" and e.get("state") == "answered", 30)
        w.hangup()
        assert w.wait_for(lambda e: e["type"] == "log" and "call: ended" in e["line"], 30)
        w.incoming_sms("+33400000000", "on our way")
        assert w.wait_display("on our way", 30)
        last = json.loads((w.flash_dir / "last.json").read_text())
        assert last["cell"]["mcc"] == 208 and last["cell"]["rssi"] == -85  # +CPSI parsed amid the URCs


def test_dead_modem_is_powered_off_between_attempts_that_back_off(make_watch):
    scenario = Scenario(name="dead", modem=ModemSpec(answers=False))
    with make_watch(scenario, speed=5) as w:  # slow: the gaps are measured in scenario seconds
        assert w.wait_display("Ready", 20)
        w.press("red", 1.5, wait=False)  # an alarm keeps the radio wanted
        assert w.wait_for(lambda e: len(modem_events(w, "power on")) >= 4, 400)
        ons = [e["t"] for e in modem_events(w, "power on")]
        offs = modem_events(w, "off")
        assert not modem_events(w, "left on"), "never left on to drain the battery"
        assert all(e.get("how") == "pwrkey" for e in offs)  # it never heard AT+CPOF
        # each try is off before the next: an off between every two power-ons
        for a, b in zip(ons, ons[1:]):
            assert any(a < e["t"] < b for e in offs), (a, b, offs)
        gaps = [b - min(e["t"] for e in offs if e["t"] > a) for a, b in zip(ons, ons[1:])]
        assert gaps[0] < gaps[1] < gaps[2] and gaps[2] > gaps[0] + 10, gaps  # 5 s, 10 s, 20 s
