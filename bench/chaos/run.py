"""The chaos run: N SOS and fall alerts from device twins and from real firmware
watches while faults hit the system at random moments; then count what was lost
or duplicated.

Real processes: `pers broker` (Mosquitto, supervised) and `pers serve`
(PERS_BROKER=external) on a fresh SQLite database; the twins (hwsim.fleet,
gmqtt) and the firmware watches (the real firmware under `micropython`, in
hwsim) reach the broker through an MQTT-aware fault proxy (their radio link),
over TLS as deployed watches do: the proxy holds the broker's certificate and
dials the broker's TLS listener (bench/chaos/mqtt_fault_proxy.py); ``--plaintext``
runs the same on 1883, for the figure without TLS.

Faults (each at least once, at random moments):
- cloud_kill9       kill -9 the cloud process, restart it after a pause
- broker_kill9      kill -9 Mosquitto; `pers broker` restarts it
- db_unavailable    another process holds an exclusive lock on the database
- coverage_cut      every device link cut, new connections refused, for a while
- deliveries        PUBLISH packets dropped and duplicated in both directions
- clock_far_off     alerts stamped days in the past or a year ahead
- power_cut         a firmware watch loses power while its alarm is being
                    written to the flash outbox and sent; a second press follows
- factory_reset     a twin is wiped mid-run: its message ids start again from
                    the first, so the cloud sees old ids with new alarms
- poison            a twin sends alarms with poison values (NaN, Infinity, a
                    2^70 clock, an impossible position, NUL, an unknown kind),
                    unreadable bytes on its alert topic, and a poison report
- device_flood      one twin presses SOS as fast as it can (a stuck or hostile
                    button); the other devices' ack delay meanwhile is measured

Beside them, SeTracker and IW watch twins (hwsim/gateway_twin.py) alarm through
the watch gateway's TCP port, riding out the cloud's kill -9 and the held database:
each of their alarms is stored exactly once and answered.

Afterwards: every alert is stored exactly once (an id re-used after a reset is
a second alert, not a duplicate), every twin's alerts are in one case (presses
counted), every twin got `alert_ack` `received` for every alert, every case's
audit trail is in order, and the unreadable bytes are quarantined (dead
letters) with an alarm stored for each. Figures go to bench/results/chaos.json.

    python -m bench.chaos.run --alerts 1000 --twins 100      # make chaos
    python -m bench.chaos.run --quick                         # the CI form (tests/system/test_chaos.py)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos.drive import drive
from bench.chaos.system import ROOT, System
from bench.chaos.verify import verify, verify_gateway

RESULTS = ROOT / "bench" / "results"


def run(alerts: int, twins: int, spread_s: float, outage_s: float, seed: int, out: Path | None,
        watches: int = 2, flood: int = 3000, gateway_twins: int = 4, tls: bool = True) -> dict:
    data = Path(tempfile.mkdtemp(prefix="pers-chaos-"))
    system = System(data, tls=tls)
    creds, watch_creds, gateway = system.prepare(twins, watches, gateway_twins)
    system.start()
    t0 = time.monotonic()
    try:
        driven = asyncio.run(drive(system, creds, alerts=alerts, spread_s=spread_s, outage_s=outage_s, seed=seed,
                                   watch_creds=watch_creds, flood=flood, gateway=gateway))
    finally:
        system.stop()
    checked = verify(data / "pers.db", driven["sent"], driven["junk"])
    gateway_checked = verify_gateway(data / "pers.db", driven["gateway"]["alarms_sent"])
    ack_ms = driven["fleet"]["alert_ack_ms"]
    watch_delays = [w["delay_s"] for w in driven["watches"] if w["delay_s"] is not None]
    worst = max([(ack_ms["max"] or 0) / 1000, *watch_delays])
    result = {
        "alerts": len(driven["sent"]), "twins": twins, "watches": watches, "tls": tls,
        "firmware_alerts": sum(1 for d, _, _ in driven["sent"] if d.startswith("chaos-fw-")),
        "lost": checked["lost"], "duplicated": checked["duplicated"],
        "faults": driven["faults"], "worst_delay_s": round(worst, 3),
        "firmware_watches": driven["watches"],
        "alert_ack_ms": ack_ms, "all_acked": driven["all_acked"], "unacked": driven["unacked"],
        "cases": checked["cases"], "devices_alerting": checked["devices_alerting"],
        "presses_counted": checked["presses_counted"], "audit_out_of_order": checked["audit_out_of_order"],
        "cases_flagged_late": checked["cases_flagged_late"], "clock_skew_events": checked["clock_skew_events"],
        "lost_mids": checked["lost_mids"],
        "quarantined": checked["quarantined"], "quarantined_deliveries": checked["quarantined_deliveries"],
        "quarantined_with_case": checked["quarantined_with_case"],
        "unreadable_sent": checked["unreadable_sent"], "unreadable_alarms_stored": checked["unreadable_alarms_stored"],
        "flood": driven["flood"],
        "gateway": {**driven["gateway"], **gateway_checked},
        "proxy": driven["proxy"], "resent_alerts": driven["fleet"]["alerts"]["resent"],
        "duration_s": round(time.monotonic() - t0, 1), "data_dir": str(data),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=1000)
    p.add_argument("--twins", type=int, default=100)
    p.add_argument("--watches", type=int, default=4, help="real firmware watches (micropython) in the run")
    p.add_argument("--spread", type=float, default=120.0, help="seconds over which the alerts are sent")
    p.add_argument("--outage", type=float, default=120.0, help="seconds of each coverage cut")
    p.add_argument("--flood", type=int, default=3000, help="SOS presses from the flooding twin")
    p.add_argument("--gateway-twins", type=int, default=4, help="SeTracker and IW twins on the watch gateway")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--quick", action="store_true", help="the CI form: 200 alerts, short outages")
    p.add_argument("--plaintext", action="store_true", help="the devices on 1883, not TLS (a comparison figure)")
    p.add_argument("--out", type=Path, default=RESULTS / "chaos.json")
    a = p.parse_args(argv)
    if a.quick:
        a.alerts, a.twins, a.spread, a.outage = max(200, min(a.alerts, 200)), min(a.twins, 40), 30.0, 5.0
        a.watches = min(a.watches, 2)
        a.flood = min(a.flood, 300)
    result = run(a.alerts, a.twins, a.spread, a.outage, a.seed, a.out, a.watches, a.flood, a.gateway_twins,
                 tls=not a.plaintext)
    print(json.dumps({k: v for k, v in result.items() if k not in ("unacked", "lost_mids")}, indent=2))
    ok = (result["lost"] == 0 and result["duplicated"] == 0 and result["all_acked"] and not result["audit_out_of_order"]
          and result["unreadable_alarms_stored"] == result["unreadable_sent"] == result["quarantined_with_case"]
          and result["gateway"]["lost"] == 0 and result["gateway"]["duplicated"] == 0
          and result["gateway"]["all_answered"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
