"""The virtual-SIM country from GNSS: with no cell known, the last GNSS
fix says which country the watch is in, so the profile remembered for that
country is tried first, before the slow scan, even when a stronger network of
the neighbour country is heard (a watch in Geneva hears French cells)."""
from __future__ import annotations

import json

from hwsim.scenario import CellSpec, OperatorSpec, Scenario, WorldSpec

PROFILES = [{"name": "fr", "mccmnc": ["20801"], "apn": "iot.fr", "priority": 1, "cost": 1.0},
            {"name": "ch", "mccmnc": ["22801"], "apn": "iot.ch", "priority": 2, "cost": 3.0}]
GENEVA = {"lat": 46.204, "lon": 6.135, "acc": 4.5, "src": "gnss", "ts": 1763780000, "sats": 9}
BORDER = WorldSpec(lat=46.204, lon=6.135,
                   cells=[CellSpec(208, 1, cid=11, rssi=-60), CellSpec(228, 1, cid=21, rssi=-75)],
                   operators=[OperatorSpec(208, 1, "Orange F", apns=["iot.fr"]),
                              OperatorSpec(228, 1, "Swisscom", apns=["iot.ch"])])


def logs(w, text):
    return [e["line"] for e in w.events if e["type"] == "log" and text in e["line"]]


def seed_flash(tmp_path, last):
    (tmp_path / "last.json").write_text(json.dumps(last))
    (tmp_path / "vsim.json").write_text(json.dumps({"208": ["fr", "20801"], "228": ["ch", "22801"]}))


def test_no_cell_known_the_gnss_country_picks_the_remembered_profile(make_watch, cloud, tmp_path):
    seed_flash(tmp_path, {"fix": GENEVA})
    scenario = Scenario(name="geneva", world=BORDER, device={"profiles": PROFILES})
    with make_watch(scenario, flash_dir=tmp_path) as w:
        status = cloud.wait("status", timeout=40)[0]
        assert status["net"]["profile"] == "ch" and status["net"]["op"] == "22801"
        assert logs(w, "country 228 from GNSS (cell: None)")
        assert logs(w, "registered with profile ch")
        assert not logs(w, "networks in range")  # no 25 s scan
        assert not logs(w, "trying profile fr")


def test_without_a_fix_the_cheaper_stronger_neighbour_wins(make_watch, cloud, tmp_path):
    # The control: the same place with no fix on flash goes by cost and signal.
    (tmp_path / "vsim.json").write_text(json.dumps({"208": ["fr", "20801"], "228": ["ch", "22801"]}))
    scenario = Scenario(name="geneva-nofix", world=BORDER, device={"profiles": PROFILES})
    with make_watch(scenario, flash_dir=tmp_path) as w:
        status = cloud.wait("status", timeout=60)[0]
        assert status["net"]["profile"] == "fr"
        assert logs(w, "networks in range") and not logs(w, "from GNSS")
