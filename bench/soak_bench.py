"""The soak: is the cloud's memory flat under steady load? (issue 8's target:
"flat memory over a 10-minute soak, no growth trend").

1,000 twins connect; then, for ``--minutes`` (10 by default), they send 200
location reports/s fleet-wide, a status heartbeat each per minute, and an SOS
every 10 s (acked, so cases accumulate as they would on a real night). The
cloud's RSS and the broker's (the baseline: a C program that should not grow)
are sampled every 5 s. After a warm-up (the first fifth: caches, the SQLite page
cache and the Python allocator's arenas fill up), a least-squares line through
the RSS samples gives the trend in MB per hour, and the figure for "flat" is
that slope against the warm RSS: growth % per hour.

Not part of `make bench` (it alone takes longer than the five benchmarks):
`make soak` writes bench/results/soak.json.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Env, Sampler, write_result  # noqa: E402
from hwsim.fleet import Fleet, raise_nofile  # noqa: E402


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mx) * (v - my) for t, v in points) / var * 3600


def trend(samples: list[tuple[float, float, float]], warmup_fraction: float = 0.2) -> dict:
    if not samples:
        return {}
    start = samples[-1][0] * warmup_fraction
    warm = [(t, rss) for t, _, rss in samples if t >= start]
    slope = slope_per_hour(warm)
    base = warm[0][1] if warm else samples[0][2]
    return {"rss_mb_first": round(samples[0][2], 1), "rss_mb_warm": round(base, 1),
            "rss_mb_last": round(samples[-1][2], 1), "rss_mb_max": round(max(s[2] for s in samples), 1),
            "slope_mb_per_hour": round(slope, 2), "growth_pct_per_hour": round(100 * slope / base, 2) if base else None,
            "samples": len(samples)}


def run(minutes: float, devices: int, loc_rate: float, sos_every_s: float) -> dict:
    raise_nofile()
    env = Env(devices).setup()
    try:
        cloud = env.start_cloud()

        async def main():
            fleet = Fleet(env.creds, env.settings.mqtt_host, env.settings.mqtt_port, alert_resend_s=5.0)
            await fleet.connect_all()
            sampler = Sampler({"cloud": cloud.pid, "broker": env.broker_pid}, interval=5.0)
            sampler.start()
            stop = asyncio.Event()

            async def sos_loop():
                i = 0
                while not stop.is_set():
                    fleet.twins[i % len(fleet.twins)].send_alert("sos")
                    i += 1
                    try:
                        await asyncio.wait_for(stop.wait(), sos_every_s)
                    except asyncio.TimeoutError:
                        pass
                return i

            sos_task = asyncio.create_task(sos_loop())
            offered = await fleet.run_load(minutes * 60, loc_rate=loc_rate, heartbeat_s=60)
            stop.set()
            sos_sent = await sos_task
            acked = await fleet.wait_alerts_acked(timeout=60)
            sampler.stop()
            rep = fleet.report()
            await fleet.close()
            return offered, sampler.samples, sos_sent, acked, rep

        offered, samples, sos_sent, acked, rep = asyncio.run(main())
        persisted = env.db_count("location_points")
    finally:
        env.close()
    cloud_trend, broker_trend = trend(samples.get("cloud", [])), trend(samples.get("broker", []))
    return {
        "minutes": minutes, "devices": devices, "connected": rep["connected"],
        "loc_offered": offered["loc"], "loc_persisted": persisted, "status_offered": offered["status"],
        "sos_sent": sos_sent, "sos_all_acked": acked, "alert_ack_ms": rep.get("alert_ack_ms"),
        "cloud": cloud_trend, "broker_baseline": broker_trend,
        "soak_cloud_growth_pct_per_hour": cloud_trend.get("growth_pct_per_hour"),
        "soak_broker_growth_pct_per_hour": broker_trend.get("growth_pct_per_hour"),
        "rss_series_cloud": [(round(t), round(r, 1)) for t, _, r in samples.get("cloud", [])],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--loc-rate", type=float, default=200.0)
    p.add_argument("--sos-every", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="15 s, 100 devices (the smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.minutes, a.devices, a.loc_rate = min(a.minutes, 0.25), min(a.devices, 100), min(a.loc_rate, 50)
        a.sos_every = min(a.sos_every, 3.0)
    result = run(a.minutes, a.devices, a.loc_rate, a.sos_every)
    path = write_result("soak", {"quick": a.quick, **result})
    print({k: v for k, v in result.items() if k != "rss_series_cloud"})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
