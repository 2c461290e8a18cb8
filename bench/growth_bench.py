"""Benchmark 4, growth: the cloud's CPU and memory per 1,000 devices at 1 report/min,
and database bytes per device-day.

For each fleet size (full: 1,000 and 10,000; quick: 50): N twins connect, the cloud
first works off the connect burst (presence + status per twin; bounded wait), then
every twin sends one ``loc`` report a minute (N/60 per second, spread evenly) plus
an hourly heartbeat, for a measured window. Figures: cloud CPU % (of one core) and
RSS, both also per 1,000 devices; rows persisted vs offered (does it keep up?);
database bytes per stored report from the size delta, x 1,440 reports a day.

50,000 devices do not fit on this machine: the hard open-file limit (~20,000 per
process, the broker included) caps one broker and one fleet process below it, so
that step is extrapolated from the measured slope and marked as such.
Writes bench/results/growth.json.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Env, write_result  # noqa: E402
from bench.measure import Sampler, rss_mb  # noqa: E402
from hwsim.fleet import Fleet, raise_nofile  # noqa: E402

REPORTS_PER_DAY = 1440


def _online(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM devices WHERE online")).scalar_one()


def step(devices: int, window_s: float, drain_max_s: float) -> dict:
    env = Env(devices).setup()
    try:
        cloud = env.start_cloud()
        cloud_rss_idle = rss_mb(cloud.pid)

        async def main():
            fleet = Fleet(env.creds, **env.device_link)
            await fleet.connect_all()
            # let the cloud work off the connect burst (bounded), so the window measures the steady state
            t0 = time.monotonic()
            await asyncio.to_thread(cloud.wait_ingested, "presence", devices, drain_max_s)
            await asyncio.to_thread(cloud.wait_ingested, "status", devices,
                                    max(1.0, drain_max_s - (time.monotonic() - t0)))
            burst_s = time.monotonic() - t0
            online = _online(env)
            m0 = await asyncio.to_thread(cloud.ingested)
            rows0, bytes0 = env.db_count("location_points"), env.db_bytes()
            sampler = Sampler({"cloud": cloud.pid, "broker": env.broker_pid}, interval=1.0)
            sampler.start()
            offered = await fleet.run_load(window_s, loc_rate=devices / 60.0, heartbeat_s=3600)
            procs = sampler.stop()
            rows1, bytes1 = env.db_count("location_points"), env.db_bytes()
            m1 = await asyncio.to_thread(cloud.ingested)
            accepted = {k: int(m1.get(k, 0) - m0.get(k, 0)) for k in m1}
            rep = fleet.report()
            await fleet.close()
            return offered, procs, rows1 - rows0, bytes1 - bytes0, burst_s, online, rep, accepted

        offered, procs, rows, dbytes, burst_s, online, rep, accepted = asyncio.run(main())
        db_total = env.db_bytes()
    finally:
        env.close()
    c = procs.get("cloud", {})
    per_k = devices / 1000
    bytes_per_row = dbytes / rows if rows > 100 else None
    return {
        "devices": devices, "window_s": window_s, "connected": rep["connected"],
        "connect_burst_drain_s": round(burst_s, 1), "online_in_db_before_window": online,
        "offered_loc": offered["loc"], "offered_per_s": round(offered["loc"] / offered["seconds"], 1),
        "persisted_loc": rows, "persisted_per_s": round(rows / window_s, 1),
        "kept_up": rows >= 0.95 * offered["loc"],
        "cloud_accepted_in_window_by_kind": accepted,
        "cloud_cpu_pct_mean": c.get("cpu_pct_mean"), "cloud_rss_mb_idle": cloud_rss_idle,
        "cloud_rss_mb_end": c.get("rss_mb_end"), "cloud_rss_mb_max": c.get("rss_mb_max"),
        "cloud_cpu_pct_per_1k_devices": round(c.get("cpu_pct_mean", 0) / per_k, 2),
        "cloud_rss_mb_per_1k_devices": round((c.get("rss_mb_max", 0) - cloud_rss_idle) / per_k, 2),
        "broker": procs.get("broker"),
        "db_bytes_per_report": round(bytes_per_row, 1) if bytes_per_row else None,
        "db_bytes_per_device_day": round(bytes_per_row * REPORTS_PER_DAY) if bytes_per_row else None,
        "db_bytes_total": db_total,
        "fleet_errors": rep["errors"],
    }


def run(quick: bool = False, sizes: list[int] | None = None) -> dict:
    raise_nofile()
    sizes = sizes or ([50] if quick else [1000, 10000])
    window = 3.0 if quick else 45.0
    steps = [step(n, window, 5.0 if quick else 90.0) for n in sizes]
    last = steps[-1]
    # linear extrapolation to 50k from the measured per-1k figures of the largest step
    extra = None
    if not quick and last.get("cloud_cpu_pct_per_1k_devices") is not None:
        extra = {"devices": 50000, "measured": False,
                 "note": "extrapolated linearly from the largest measured step; one cloud process is "
                         "single-threaded for ingest, so above ~100% CPU it cannot keep up at all",
                 "cloud_cpu_pct": round(last["cloud_cpu_pct_per_1k_devices"] * 50, 1),
                 "offered_per_s": round(50000 / 60, 1),
                 "cloud_rss_mb": round(last["cloud_rss_mb_idle"] + last["cloud_rss_mb_per_1k_devices"] * 50, 1),
                 "db_bytes_per_day": (last["db_bytes_per_device_day"] or 0) * 50000}
    out = {
        "quick": quick,
        "steps": steps,
        "extrapolated_50k": extra,
        "cloud_cpu_pct_per_1k_devices": last["cloud_cpu_pct_per_1k_devices"],
        "cloud_rss_mb_per_1k_devices": last["cloud_rss_mb_per_1k_devices"],
        "cloud_rss_mb": max(s["cloud_rss_mb_max"] or 0 for s in steps),
        "db_bytes_per_device_day": last["db_bytes_per_device_day"] or steps[0]["db_bytes_per_device_day"],
    }
    write_result("growth", out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 1000,10000")
    a = p.parse_args(argv)
    r = run(a.quick, a.sizes)
    print({k: r[k] for k in ("cloud_cpu_pct_per_1k_devices", "cloud_rss_mb", "db_bytes_per_device_day")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
