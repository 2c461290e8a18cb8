"""Benchmark 3, connections: twins held by the embedded Mosquitto and the cloud.

Step 1 (with the cloud): N twins connect (auth + ACL + persistent session + will,
presence retained, first status), hold for a while with heartbeats; we record the
connect rate, CONNACK latency, errors, the RSS and CPU of the broker, the cloud and
the fleet process, and how much of the connect burst the cloud has stored (devices
marked online in the DB).
Step 2 (full mode only, broker alone): as many twins as this machine's open-file
limit allows (hard limit ~20,000 per process), to see what Mosquitto holds.
Writes bench/results/connections.json.
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


def _online(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")  # makes the engine
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM devices WHERE online")).scalar_one()


def step(devices: int, hold_s: float, with_cloud: bool, heartbeat_s: float) -> dict:
    env = Env(devices).setup()
    try:
        cloud = env.start_cloud() if with_cloud else None
        pids = {"broker": env.broker_pid}
        if cloud:
            pids["cloud"] = cloud.pid
        broker_rss0 = rss_mb(env.broker_pid)
        cloud_rss0 = rss_mb(cloud.pid) if cloud else None

        async def main():
            fleet = Fleet(env.creds, **env.device_link, connect_concurrency=200)
            sampler = Sampler(pids)
            sampler.start()
            await fleet.connect_all()
            after_connect = {"broker_rss_mb": rss_mb(env.broker_pid), "fleet_rss_mb": rss_mb(__import__("os").getpid())}
            await fleet.run_load(hold_s, loc_rate=0, heartbeat_s=heartbeat_s)
            procs = sampler.stop()
            rep = fleet.report()
            online = _online(env) if cloud else None
            t0 = time.perf_counter()
            await fleet.close()
            return rep, procs, after_connect, online, time.perf_counter() - t0

        rep, procs, after_connect, online, close_s = asyncio.run(main())
    finally:
        env.close()
    return {
        "devices": devices, "with_cloud": with_cloud, "hold_s": hold_s,
        "connected": rep["connected"], "connect_s": rep["connect_s"], "connect_per_s": rep["connect_per_s"],
        "connack_ms": rep["connect_ms"], "errors": rep["errors"], "errors_total": rep["errors_total"],
        "broker_rss_mb_idle": broker_rss0, "broker_rss_mb_connected": after_connect["broker_rss_mb"],
        "broker_kb_per_connection": round((after_connect["broker_rss_mb"] - broker_rss0) * 1024 / max(1, devices), 2),
        "cloud_rss_mb_idle": cloud_rss0,
        "fleet_rss_mb": after_connect["fleet_rss_mb"],
        "processes": procs,
        "devices_online_in_db_at_end": online,
        "disconnect_all_s": round(close_s, 2),
    }


def run(quick: bool = False, devices: int | None = None) -> dict:
    limit = raise_nofile()
    devices = devices or (50 if quick else 10000)
    hold = 2.0 if quick else 20.0
    steps = [step(devices, hold, True, heartbeat_s=10.0 if quick else 60.0)]
    if not quick:
        max_n = min(limit - 300, 19500)
        if max_n > devices:
            steps.append(step(max_n, 5.0, False, heartbeat_s=0))
    main_step = steps[0]
    out = {
        "quick": quick,
        "nofile_limit": limit,
        "connected_devices": main_step["connected"],
        "connect_per_s": main_step["connect_per_s"],
        "errors_total": sum(s["errors_total"] for s in steps),
        "broker_rss_mb": main_step["broker_rss_mb_connected"],
        "cloud_rss_mb": main_step["processes"].get("cloud", {}).get("rss_mb_max"),
        "max_connected_broker_only": max(s["connected"] for s in steps),
        "steps": steps,
        "targets": {"connected_devices_embedded": 10000, "connected_devices_mosquitto": 50000},
    }
    write_result("connections", out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--devices", type=int)
    a = p.parse_args(argv)
    r = run(a.quick, a.devices)
    print({k: r[k] for k in ("connected_devices", "connect_per_s", "errors_total", "broker_rss_mb", "cloud_rss_mb",
                             "max_connected_broker_only")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
