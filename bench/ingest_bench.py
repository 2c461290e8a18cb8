"""Benchmark 1, ingest: location reports persisted per second by one cloud process.

Same run, same embedded Mosquitto (generated auth + ACL), same fleet of gmqtt twins
publishing ``loc`` reports as fast as the subscriber under test takes them (at most
5,000 ahead of what it has taken; within that, as fast as the broker PUBACKs them):

1. baseline: a paho subscriber on ``pers/v1/+/loc`` (the cloud's service account,
   QoS 1) that does nothing -> messages/s the broker delivers;
2. the cloud (``python -m cloud.cli serve``, a separate process, SQLite by default or
   ``--database-url``) -> rows in ``location_points`` per second (counted in the DB),
   with its CPU and RSS (psutil) and a py-spy profile of the process.

ratio = persisted / baseline. Writes bench/results/ingest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import RESULTS, Env, write_result  # noqa: E402
from bench.measure import PySpy, Sampler, cpu_s  # noqa: E402
from hwsim.fleet import Fleet, raise_nofile  # noqa: E402


def baseline_subscriber(env: Env):
    """Start the do-nothing paho subscriber as its own process; returns (proc, count())."""
    import subprocess
    s = env.settings
    out = env.tmp / "baseline.count"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("null_subscriber.py")), s.mqtt_host,
                             str(s.mqtt_port), s.mqtt_username, env.service_password, str(out)])

    def count() -> int:
        try:
            return int(out.read_text() or 0)
        except (OSError, ValueError):
            return 0
    deadline = time.monotonic() + 10
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not out.exists():
        proc.kill()
        raise RuntimeError("baseline subscriber did not start")
    return proc, count


class Poll:
    """``probe()`` read every ``period`` s on its own thread (a database count must
    not stall the twins' event loop); ``value`` is the latest reading."""

    def __init__(self, probe, period: float = 0.05):
        import threading
        self.probe, self.period, self.value = probe, period, probe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.period):
            self.value = self.probe()

    def close(self):
        self._stop.set()
        self._thread.join()


async def offer(fleet: Fleet, seconds: float, probe, warmup: float = 1.0, max_ahead: int = 5000) -> dict:
    """Publish as fast as the system takes the reports for ``seconds``: the twins stay at
    most ``max_ahead`` reports ahead of ``probe()`` (what the subscriber has taken), as
    in a real fleet whose reports are not produced faster than they are stored. The rate
    is read over the steady window after the warm-up."""
    poll = Poll(probe)
    start = poll.value
    task = asyncio.create_task(fleet.run_load(seconds, max_rate=True, taken=lambda: poll.value - start,
                                              max_ahead=max_ahead))
    await asyncio.sleep(warmup)
    c0, t0 = probe(), time.perf_counter()
    offered = await task
    c1, t1 = probe(), time.perf_counter()
    poll.close()
    await fleet.drain(10)
    return {"offered": offered, "offered_per_s": round(offered["loc"] / offered["seconds"], 1),
            "max_ahead": max_ahead, "rate_per_s": round((c1 - c0) / (t1 - t0), 1), "window_s": round(t1 - t0, 2),
            "count_end": c1}


def run(quick: bool = False, devices: int | None = None, seconds: float | None = None,
        database_url: str | None = None, profile: bool = True, name: str = "ingest", workers: int = 1,
        postgres: bool = False) -> dict:
    raise_nofile()
    devices = devices or (20 if quick else 200)
    seconds = seconds or (2.0 if quick else 20.0)
    pg = None
    if postgres and not database_url:
        from bench.pg import TempPostgres
        pg = TempPostgres().start()
        database_url = pg.url
    try:
        return _run(quick, devices, seconds, database_url, profile, name, workers)
    finally:
        if pg:
            pg.stop()


def _run(quick, devices, seconds, database_url, profile, name, workers) -> dict:
    env = Env(devices, database_url=database_url, workers=workers).setup()
    try:
        async def main():
            fleet = Fleet(env.creds, **env.device_link, window=1000)
            await fleet.connect_all()
            base = await _baseline(env, fleet, seconds, quick)
            # 2. the cloud, as a separate process
            if workers > 1:
                clouds = await asyncio.to_thread(env.start_workers)
            else:
                clouds = [await asyncio.to_thread(env.start_cloud)]
            cl, res, backlog = await _cloud_window(env, fleet, clouds, devices, seconds, quick, base)
            prof = None
            if profile and not quick:
                prof = await _profile(env, fleet, clouds[0], seconds, name)
            await fleet.close()
            return base, cl, res, prof, backlog, fleet.report()

        base, cl, res, prof, backlog, fleet_rep = asyncio.run(main())
    finally:
        env.close()
    ingest = cl["rate_per_s"]
    baseline = base["rate_per_s"]
    out = {
        "quick": quick,
        "devices": devices,
        "seconds": seconds,
        "store": "postgresql" if database_url else "sqlite",
        "workers": workers,
        "ingest_per_s": ingest,
        "ingest_baseline_per_s": baseline,
        "ingest_ratio": round(ingest / baseline, 4) if baseline else None,
        "baseline": base,
        "cloud": cl,
        "cloud_backlog_at_end": max(0, backlog),
        "processes": res,
        "cloud_rss_mb": res.get("cloud", {}).get("rss_mb_max"),
        "cloud_cpu_pct_mean": res.get("cloud", {}).get("cpu_pct_mean"),
        "cloud_cpu_us_per_report": cl.get("cloud_cpu_us_per_report"),
        "ingest_internals": cl.get("ingest_internals"),
        "profile": prof,
        "fleet": {k: fleet_rep[k] for k in ("connected", "connect_per_s", "errors", "fleet_rss_mb")},
        "targets": {"ingest_per_s": 5000, "ingest_ratio": 0.7},
    }
    write_result(name, out)
    return out



async def _baseline(env: Env, fleet: Fleet, seconds: float, quick: bool) -> dict:
    """1. The same broker, a subscriber that does nothing: what the broker alone takes."""
    sub, count = await asyncio.to_thread(baseline_subscriber, env)
    base = await offer(fleet, seconds, count, warmup=0.5 if quick else 1.0)
    await asyncio.sleep(0.3)
    base["count_end"] = count()
    sub.terminate()
    sub.wait()
    await asyncio.sleep(0.5)
    return base


async def _cloud_window(env: Env, fleet: Fleet, clouds: list, devices: int, seconds: float, quick: bool,
                        base: dict) -> tuple[dict, dict, int]:
    """2. The measured window with the cloud process(es) storing: the rate, the CPU per
    stored report, the processes' usage, and the backlog left at its end."""
    def accepted() -> dict:
        tot: dict = {}
        for c in clouds:
            for k, v in c.ingested().items():
                tot[k] = tot.get(k, 0) + v
        return tot

    # The cloud's first subscription brings every twin's retained presence (priority
    # above loc): let it work those off so the window measures location reports only.
    t_p = time.monotonic()
    while (await asyncio.to_thread(accepted)).get("presence", 0) < devices and time.monotonic() - t_p < 120:
        await asyncio.sleep(0.2)
    presence_s = round(time.monotonic() - t_p, 2)
    rows0 = env.db_count("location_points")
    m0 = await asyncio.to_thread(accepted)
    pids = {("cloud" if i == 0 else f"cloud{i + 1}"): c.pid for i, c in enumerate(clouds)}
    sampler = Sampler({**pids, "broker": env.broker_pid})
    sampler.start()
    cpu0 = {c.pid: cpu_s(c.pid) for c in clouds}
    rows_c0 = env.db_count("location_points")
    cl = await offer(fleet, seconds, lambda: env.db_count("location_points") - rows0,
                     warmup=0.5 if quick else 2.0)
    # CPU seconds of the cloud process(es) per persisted report: far less sensitive
    # to other load on a shared machine than the rates are.
    stored = env.db_count("location_points") - rows_c0
    cpu = sum(cpu_s(c.pid) - cpu0[c.pid] for c in clouds)
    cl["cloud_cpu_us_per_report"] = round(cpu / stored * 1e6, 1) if stored else None
    m1 = await asyncio.to_thread(accepted)
    cl["ingest_internals"] = await asyncio.to_thread(clouds[0].ingest_internals)
    cl["messages_accepted_per_s"] = round((sum(m1.values()) - sum(m0.values())) / seconds, 1)
    cl["retained_presence_drain_s"] = presence_s
    res = sampler.stop()
    backlog = fleet.stats.sent["loc"] - (env.db_count("location_points") - rows0) - base["count_end"]
    return cl, res, backlog


async def _profile(env: Env, fleet: Fleet, cloud, seconds: float, name: str) -> dict:
    """After the measured window, under the same load: py-spy takes CPU from the same
    two cores, so it must not share the window it would explain."""
    spy_s = int(min(seconds - 4, 12))
    spy = PySpy(cloud.pid, spy_s, RESULTS / "profiles" / f"{name}_cloud.txt")
    rows_p = env.db_count("location_points")
    await offer(fleet, spy_s + 1, lambda: env.db_count("location_points") - rows_p, warmup=0.0)
    return await asyncio.to_thread(spy.wait)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--devices", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--database-url", help="e.g. postgresql+psycopg://... (default: SQLite in a temp dir)")
    p.add_argument("--postgres", action="store_true", help="run a throwaway PostgreSQL (Debian's binaries)")
    p.add_argument("--workers", type=int, default=1, help="cloud processes sharing the ingest ($share/<secret group>)")
    p.add_argument("--name", default="ingest", help="result name: bench/results/<name>.json")
    p.add_argument("--no-profile", action="store_true")
    a = p.parse_args(argv)
    r = run(a.quick, a.devices, a.seconds, a.database_url, not a.no_profile, a.name, a.workers, a.postgres)
    print({k: r[k] for k in ("ingest_per_s", "ingest_baseline_per_s", "ingest_ratio", "cloud_rss_mb",
                             "cloud_cpu_us_per_report")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
