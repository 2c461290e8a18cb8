"""The CI form of the chaos run (bench/chaos/run.py --quick): 200 alerts from
device twins and two real firmware watches with every fault kind injected at least once, against real
processes (a factory reset, poison and a flooding device among them), the devices over TLS as
deployed (the fault proxy holds the broker's certificate and dials its TLS listener). Nothing lost,
nothing duplicated, every alert acked, audit in order, the unreadable quarantined; the
same for the SeTracker and IW twins on the watch gateway."""
import json
import subprocess
import sys

from bench.chaos.drive import FAULTS
from tests.conftest import ROOT


def test_chaos_quick(tmp_path):
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, "-m", "bench.chaos.run", "--quick", "--seed", "11", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["alerts"] >= 200
    assert result["tls"]
    assert set(result["faults"]) == set(FAULTS) and all(n >= 1 for n in result["faults"].values())
    assert result["lost"] == 0, result["lost_mids"]
    assert result["duplicated"] == 0
    assert result["all_acked"], result["unacked"]
    assert result["audit_out_of_order"] == []
    assert result["cases_flagged_late"] >= 1  # the far-off clocks were noticed
    # The faults really hit: packets dropped and duplicated, real firmware power-cut mid-alarm.
    assert result["proxy"].get("dropped_up", 0) + result["proxy"].get("dropped_down", 0) >= 1, result["proxy"]
    assert result["proxy"].get("duplicated_up", 0) + result["proxy"].get("duplicated_down", 0) >= 1
    assert result["firmware_alerts"] >= 2 and all(w["acked"] and w["outbox_left"] == 0
                                                  for w in result["firmware_watches"])
    # A wiped twin re-used its ids (stored again, not taken for duplicates); poison alarms were
    # stored and acked; unreadable bytes were quarantined, each with an alarm that opened a case.
    assert result["faults"]["factory_reset"] >= 1 and result["faults"]["poison"] >= 1
    assert result["quarantined"] >= 1
    assert result["unreadable_alarms_stored"] == result["unreadable_sent"] == result["quarantined_with_case"] >= 1
    # A flooding twin did not hold up the others (the figure is bench/device_flood_bench.py's;
    # this bound is loose on purpose: CI machines are noisy).
    assert result["flood"]["other_alerts_acked_meanwhile"] >= 1, result["flood"]
    assert result["flood"]["other_worst_ack_ms"] < 5000, result["flood"]
    # SeTracker and IW twins on the watch gateway rode out the same faults: every alarm
    # stored once and answered.
    gw = result["gateway"]
    assert gw["stored"] >= 1 and gw["lost"] == 0 and gw["duplicated"] == 0 and gw["all_answered"], gw
    assert proc.returncode == 0
