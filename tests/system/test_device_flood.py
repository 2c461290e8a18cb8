"""One watch sends SOS presses as fast as it can (stuck button or hostile device): another
wearer's SOS must still be acked at once.

The requirement: another device's SOS PUBLISH -> ``alert_ack`` ``received`` at p99 <= 300 ms
while one device sends 3,000 presses as fast as it can (figure:
``bench/device_flood_bench.py``, ``device_flood_other_sos_ack_p99_ms``). This test runs the
same measurement, smaller, against a real Mosquitto and the real cloud process
(``bench/harness.py``), and holds a LOOSE bound: every other watch's SOS is acked, none
later than 2 s (CI machines are noisy; the figure itself comes from the bench). It also
holds what must be true whatever the speed: every press is stored and acked once, never
re-sent, and they all merge into the flooder's one open case.

Nothing here sleeps before an assertion: the run waits for the acks (each sent after its
commit) before the database is read.
"""
import pytest

from bench.device_flood_bench import run

PRESSES = 1500
OTHERS = 10
PER_DEVICE = 2
BOUND_MS = 2000


@pytest.fixture(scope="module")
def flood():
    # the other watches' SOS go out over the first 2 s of the flood, while it is being worked off
    return run(presses=PRESSES, others=OTHERS, per_device=PER_DEVICE, spread=2.0, quiet=1,
               drain_timeout=90.0, wait_lane_clear=False)


def _figures(r: dict) -> str:
    f = r["flood"]
    return (f"other-device SOS ack ms {r['other_sos_ack_ms']}, re-sent {r['other_sos_resent']}; "
            f"quiet {r['quiet_sos_ack_ms']}; flood {f['presses_acked']}/{f['presses_sent']} acked, "
            f"drained in {f['drain_s']} s")


def test_every_other_watch_is_acked_within_the_bound_during_the_flood(flood):
    assert flood["other_sos_sent"] == OTHERS * PER_DEVICE, flood["callers"]
    assert flood["other_sos_all_acked"] and flood["other_sos_acked"] == OTHERS * PER_DEVICE, _figures(flood)
    # they were sent while the flood was being worked off, or the test measured nothing
    assert flood["other_sos_ack_ms_during_flood"]["n"] > 0, _figures(flood)
    assert flood["other_sos_ack_max_ms"] < BOUND_MS, _figures(flood)


def test_the_flood_is_stored_acked_and_merged_into_one_case(flood):
    f, cases = flood["flood"], flood["cases"]
    assert f["errors"] == {} and f["presses_resent"] == 0, f
    assert f["presses_sent"] == f["presses_pubacked"] == PRESSES, f
    assert f["drained"] and f["presses_acked"] == PRESSES, _figures(flood)
    assert f["commands_received"].get("alert_ack") == PRESSES, f["commands_received"]
    assert cases["flooder_alerts_stored"] == PRESSES, cases
    # exactly one open case for the flooder, holding every press
    assert [(c["press_count"], c["status"] in ("new", "routed", "claimed", "in_call"))
            for c in cases["flooder"]] == [(PRESSES, True)], cases
    # and one case per other watch, each with its own presses
    assert cases["other_devices_with_one_case"] == OTHERS and cases["other_press_counts"] == [PER_DEVICE], cases
    assert cases["one_per_device"] and cases["total"] == 1 + OTHERS + 1, cases
