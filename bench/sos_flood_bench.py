"""SOS latency while the cloud is flooded: an alert must not wait behind the backlog.

The worst hour of an alarm centre is a reconnect storm: every watch comes back
at once and the cloud is offered far more than it can store. Then the broker
holds the backlog for the cloud's session, in one FIFO per session. Two trials,
same run, same machine, same flood (twins publishing ``loc`` as fast as the
broker PUBACKs them, several times what the cloud stores), SOS alerts sent from
other twins while the backlog builds:

- ``one_session``: the cloud subscribes to everything on one connection
  (``PERS_MQTT_ALERT_CONNECTION=false``): the baseline;
- ``alert_session``: alerts and acks on their own session (the default).

Figures: SOS PUBLISH -> ``alert_ack`` received p50/p99/max in each trial, alerts
re-sent by their twin, and the backlog the cloud had at the end.
Writes bench/results/sos_flood.json.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Env, write_result  # noqa: E402
from hwsim.fleet import Fleet, raise_nofile  # noqa: E402


def trial(alert_session: bool, devices: int, seconds: float, alerts: int) -> dict:
    env = Env(devices + alerts).setup()
    try:
        cloud = env.start_cloud(PERS_MQTT_ALERT_CONNECTION="true" if alert_session else "false")

        async def main():
            flooders = Fleet(env.creds[:devices], **env.device_link)
            callers = Fleet(env.creds[devices:], **env.device_link, alert_resend_s=10.0)
            await flooders.connect_all()
            await callers.connect_all()
            flood = asyncio.create_task(flooders.run_load(seconds, max_rate=True))
            await asyncio.sleep(seconds / 3)  # let the backlog build
            await callers.sos(alerts, interval_s=seconds / 2 / alerts)
            offered = await flood
            acked = await callers.wait_alerts_acked(timeout=180)
            rep = callers.report()
            await flooders.close()
            await callers.close()
            return offered, acked, rep

        t0 = time.monotonic()
        offered, acked, rep = asyncio.run(main())
        stored = env.db_count("location_points")
        ingested = cloud.ingested()
    finally:
        env.close()
    return {"alert_session": alert_session, "flood_loc_offered": offered["loc"],
            "flood_offered_per_s": round(offered["loc"] / offered["seconds"], 1),
            "loc_stored_by_end": stored, "alerts": alerts, "all_acked": acked,
            "alerts_resent": rep["alerts"]["resent"], "sos_to_ack_ms": rep["alert_ack_ms"],
            "alerts_ingested": ingested.get("alert", 0), "seconds": round(time.monotonic() - t0, 1)}


def run(quick: bool, devices: int, seconds: float, alerts: int) -> dict:
    raise_nofile()
    if quick:
        devices, seconds, alerts = min(devices, 20), min(seconds, 3.0), min(alerts, 5)
    baseline = trial(False, devices, seconds, alerts)
    ours = trial(True, devices, seconds, alerts)
    return {
        "quick": quick,
        "sos_flood_p99_ms_one_session": baseline["sos_to_ack_ms"].get("p99"),
        "sos_flood_p99_ms_alert_session": ours["sos_to_ack_ms"].get("p99"),
        "trials": {"one_session": baseline, "alert_session": ours},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200, help="flooding twins")
    p.add_argument("--seconds", type=float, default=15.0, help="flood duration")
    p.add_argument("--alerts", type=int, default=30)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    result = run(a.quick, a.devices, a.seconds, a.alerts)
    path = write_result("sos_flood", result)
    for name, t in result["trials"].items():
        print(name, t["sos_to_ack_ms"], "resent", t["alerts_resent"], "acked", t["all_acked"])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
