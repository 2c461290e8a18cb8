"""The soak: is the cloud's memory flat under steady load? (the target:
"flat memory over a 10-minute soak, no growth trend").

1,000 twins connect; then, for ``--minutes`` (10 by default), they send 200
location reports/s fleet-wide, a status heartbeat each per minute, and an SOS
every 10 s (acked, so cases accumulate as they would on a real night). The
cloud's RSS and the broker's (the baseline: a C program that should not grow)
are sampled every 5 s. A least-squares line through the RSS samples of the
``--minutes`` that follow a ``--warmup`` of the same load (2 minutes) gives the
trend in MB per hour, and the figure for "flat" is that slope against the warm
RSS: growth % per hour.

What is bounded and would otherwise fill during the measured minutes is filled
first, so that its filling is not mistaken for a leak: the database starts with
``--history`` location reports per device (a service in use has weeks of them),
so the indexes' pages that the ingest writes (two per device: the (device, mid)
and (device, time) indexes) already exist and SQLite's page caches (2 MB per
connection) reach their working set in the warm-up instead of growing with the
table for ten minutes. The cloud's memory probe (cloud/memprobe.py,
``PERS_MEMPROBE``) samples alongside, and ``memory_parts`` gives the same
post-warm-up slope for each part of the RSS: what malloc has in use and holds
free, SQLite's own allocations (its page caches), Python's allocated blocks and
objects, so that any remaining slope is explained rather than guessed at.

Not part of `make bench` (it alone takes longer than the five benchmarks):
`make soak` writes bench/results/soak.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Env, write_result  # noqa: E402
from bench.measure import Sampler  # noqa: E402
from hwsim.fleet import Fleet, raise_nofile  # noqa: E402


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mx) * (v - my) for t, v in points) / var * 3600


def trend(samples: list[tuple[float, float, float]], warmup_s: float) -> dict:
    if not samples:
        return {}
    warm = [(t, rss) for t, _, rss in samples if t >= warmup_s]
    slope = slope_per_hour(warm)
    base = warm[0][1] if warm else samples[0][2]
    cpu = [c for t, c, _ in samples if t >= warmup_s]
    return {"rss_mb_first": round(samples[0][2], 1), "rss_mb_warm": round(base, 1),
            "rss_mb_last": round(samples[-1][2], 1), "rss_mb_max": round(max(s[2] for s in samples), 1),
            "slope_mb_per_hour": round(slope, 2), "growth_pct_per_hour": round(100 * slope / base, 2) if base else None,
            "cpu_pct_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
            "samples": len(samples), "samples_after_warmup": len(warm)}


# The memory probe's fields (cloud/memprobe.py) whose post-warm-up slope is reported.
PARTS = ("rss_mb", "anon_mb", "heap_mb", "anon_mmap_mb", "file_mb", "shm_mb", "malloc_in_use_mb", "malloc_free_mb",
         "malloc_arena_mb", "sqlite_mb")


def memory_parts(rows: list[dict], warmup_s: float) -> dict:
    """Per part of the cloud's memory: value at the end of the warm-up, last value and
    slope per hour after it (MB; Python's allocated blocks and gc objects as counts)."""
    warm = [r for r in rows if r["t"] >= warmup_s]
    if len(warm) < 3:
        return {}
    out: dict = {}
    for k in PARTS + ("py_blocks",):
        pts = [(r["t"], r[k]) for r in warm if r.get(k) is not None]
        if pts:
            out[k] = {"warm": pts[0][1], "last": pts[-1][1], "slope_per_hour": round(slope_per_hour(pts), 2)}
    objs = [(r["t"], r["gc_objects"]) for r in warm if "gc_objects" in r]
    if objs:
        out["gc_objects"] = {"warm": objs[0][1], "last": objs[-1][1], "slope_per_hour": round(slope_per_hour(objs))}
    last = warm[-1]
    arenas = next((r["arenas"] for r in reversed(warm) if r.get("arenas")), None)
    out["malloc_arenas"] = len(arenas) if arenas else None
    out["malloc_arenas_mb"] = arenas
    out["sqlite_connections"] = last.get("sqlite_conns")
    return out


def seed_history(db: Path, device_ids: list[str], per_device: int) -> int:
    """``per_device`` past location reports per device, interleaved in time as a fleet
    sends them, written straight into the database before the cloud starts."""
    if not per_device or not device_ids:
        return 0
    t0 = time.time() - 3 * 3600
    step = 3 * 3600 / per_device
    rows = ((d, f"h.{k}", 48.85 + i * 1e-5, 2.35, 10.0, "gnss", int(t0 + k * step),
             time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(t0 + k * step)), "periodic", None)
            for k in range(per_device) for i, d in enumerate(device_ids))
    with sqlite3.connect(db) as con:
        con.executemany("INSERT INTO location_points (device_id, mid, lat, lon, acc, src, device_ts, received_at,"
                        " reason, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return per_device * len(device_ids)


def run(minutes: float, devices: int, loc_rate: float, sos_every_s: float, warmup_min: float = 2.0,
        history: int = 200) -> dict:
    raise_nofile()
    env = Env(devices).setup()
    warmup_s = warmup_min * 60
    probe = env.tmp / "memprobe.jsonl"
    try:
        db = Path(env.settings.db_url.split("///", 1)[1])
        seeded = seed_history(db, [d for d, _ in env.creds], history)
        history_rows = env.db_count("location_points")
        env._engine.dispose()
        cloud = env.start_cloud(PERS_MEMPROBE=probe, PERS_MEMPROBE_S=5)

        offered, samples, sos_sent, acked, rep = asyncio.run(
            _drive(env, cloud, minutes * 60 + warmup_s, loc_rate, sos_every_s))
        persisted = env.db_count("location_points") - history_rows
        probe_rows = [json.loads(line) for line in probe.read_text().splitlines()] if probe.exists() else []
    finally:
        env.close()
    cloud_trend = trend(samples.get("cloud", []), warmup_s)
    broker_trend = trend(samples.get("broker", []), warmup_s)
    # The probe's clock starts when the cloud froze its start-up objects, a little before the sampler's.
    offset = (probe_rows[-1]["t"] - samples["cloud"][-1][0]) if probe_rows and samples.get("cloud") else 0.0
    return {
        "minutes": minutes, "warmup_minutes": warmup_min, "devices": devices, "connected": rep["connected"],
        "history_rows_seeded": seeded,
        "loc_offered": offered["loc"], "loc_persisted": persisted, "status_offered": offered["status"],
        "sos_sent": sos_sent, "sos_all_acked": acked, "alert_ack_ms": rep.get("alert_ack_ms"),
        "cloud": cloud_trend, "broker_baseline": broker_trend,
        "soak_cloud_growth_pct_per_hour": cloud_trend.get("growth_pct_per_hour"),
        "soak_broker_growth_pct_per_hour": broker_trend.get("growth_pct_per_hour"),
        "memory_parts": memory_parts(probe_rows, warmup_s + offset),
        "rss_series_cloud": [(round(t), round(r, 1)) for t, _, r in samples.get("cloud", [])],
        "memory_series_cloud": [{k: r.get(k) for k in ("t", "rss_mb", "malloc_in_use_mb", "malloc_free_mb",
                                                       "sqlite_mb", "py_blocks")} for r in probe_rows],
    }



async def _drive(env: Env, cloud, seconds: float, loc_rate: float, sos_every_s: float):
    """The fleet's load for ``seconds``, with an SOS from the next twin every ``sos_every_s``."""
    fleet = Fleet(env.creds, **env.device_link, alert_resend_s=5.0)
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
            except TimeoutError:
                pass
        return i

    sos_task = asyncio.create_task(sos_loop())
    offered = await fleet.run_load(seconds, loc_rate=loc_rate, heartbeat_s=60)
    stop.set()
    sos_sent = await sos_task
    acked = await fleet.wait_alerts_acked(timeout=60)
    sampler.stop()
    rep = fleet.report()
    await fleet.close()
    return offered, sampler.samples, sos_sent, acked, rep

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="measured minutes, after the warm-up")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes of the same load before the measured ones")
    p.add_argument("--history", type=int, default=200, help="past location reports per device in the database")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--loc-rate", type=float, default=200.0)
    p.add_argument("--sos-every", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="15 s, 100 devices (the smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.minutes, a.devices, a.loc_rate = min(a.minutes, 0.25), min(a.devices, 100), min(a.loc_rate, 50)
        a.warmup, a.history = min(a.warmup, 0.1), min(a.history, 20)
        a.sos_every = min(a.sos_every, 3.0)
    result = run(a.minutes, a.devices, a.loc_rate, a.sos_every, a.warmup, a.history)
    path = write_result("soak", {"quick": a.quick, **result})
    print({k: v for k, v in result.items() if not k.endswith("_series_cloud")})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
