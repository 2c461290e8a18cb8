"""A local profile from the cloud (a ``vsim`` command) that does not register
sends the watch back to its own (home) SIM, and an SOS raised during the switch
goes over whatever registers. (One that registers is used and reported:
tests/hwsim/test_traveller_border.py, against the real cloud.) Swisscom here takes the watch's French SIM as a
roaming partner (apn iot.home) and its own local profile (iot.ch)."""
from __future__ import annotations

from hwsim.scenario import CellSpec, OperatorSpec, Scenario, WorldSpec

from .conftest import DEV
from .test_behaviours import logs, valid

ABROAD = WorldSpec(lat=46.204, lon=6.135, cells=[CellSpec(228, 1, cid=21, rssi=-60)],
                   operators=[OperatorSpec(228, 1, "Swisscom", apns=["iot.home", "iot.ch"])])
HOME_SIM = {"apn": "iot.home", "linger_ms": 600_000}


def profile(apn):
    return [{"name": "ch-0001", "mccmnc": ["22801"], "apn": apn, "priority": 0, "cost": 0.0,
             "iccid": "8941011234567800012"}]


def test_a_local_profile_that_does_not_register_falls_back_and_the_sos_goes(make_watch, cloud):
    with make_watch(Scenario(name="fallback", world=ABROAD, device=HOME_SIM)) as w:
        cloud.wait("status", timeout=40)
        cloud.command(DEV, cid="v-1", type="vsim", profiles=profile("iot.nowhere"))  # nobody takes it
        assert w.wait_for(lambda e: e["type"] == "log" and "trying profile ch-0001" in e["line"], 30)
        w.press("red", 2.5)  # during the switch
        alert = valid("alert", cloud.wait("alert", lambda p: p["kind"] == "sos", timeout=60)[0])
        assert alert.net is None or alert.net.profile is None  # over the home SIM
        assert logs(w, "profile ch-0001 rejected on 22801")
        rejected = next(e["t"] for e in w.events if e["type"] == "log" and "rejected on 22801" in e["line"])
        home = [e["t"] for e in w.events if e["type"] == "log" and "registered with the home profile" in e["line"]]
        assert home and home[-1] > rejected
