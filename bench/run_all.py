"""Run every benchmark and write bench/results/summary.json (the top-level figures docs/scaling.md quotes).

    python bench/run_all.py            # full: ~11-13 minutes on a 2-core machine
    python bench/run_all.py --quick    # a few seconds each: the CI smoke form

Each benchmark runs in its own process (a 10,000-twin fleet leaves nothing behind)
and writes bench/results/<name>.json. The firmware figures come from the firmware
engineer's bench/firmware_bench.py (run here when present) and are merged from
bench/results/firmware.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO, RESULTS, results_dir, write_result  # noqa: E402
from bench.pg import pg_bin  # noqa: E402

BENCHES = [("ingest", "ingest_bench.py"),
           # the ingest domain alone (CPU per stored message, one by one vs batched): stable on a busy machine
           ("ingest_batch", "ingest_batch_bench.py"), ("sos_latency", "sos_latency_bench.py"),
           # the same measurement at a load one cloud process sustains (full mode only)
           ("sos_latency_light", "sos_latency_bench.py --devices 1000 --loc-rate 50 --name sos_latency_light"),
           ("connections", "connections_bench.py"), ("growth", "growth_bench.py"),
           # the scale-out store: PostgreSQL, one worker and two workers on a $share group (full mode only)
           ("ingest_pg", "ingest_bench.py --postgres --no-profile --name ingest_pg"),
           ("ingest_pg_2workers", "ingest_bench.py --postgres --workers 2 --no-profile --name ingest_pg_2workers"),
           # SOS while the cloud is flooded: one MQTT session vs alerts on their own session
           ("sos_flood", "sos_flood_bench.py"),
           # another wearer's SOS while ONE watch sends 3,000 presses as fast as it can
           ("device_flood", "device_flood_bench.py")]
FULL_ONLY = {"sos_latency_light", "ingest_pg", "ingest_pg_2workers"}
FIRMWARE = ("firmware", "firmware_bench.py")
SUMMARY_KEYS = ("ingest_per_s", "ingest_baseline_per_s", "ingest_ratio", "sos_to_ack_p50_ms", "sos_to_ack_p99_ms",
                "sos_to_console_p50_ms", "sos_to_console_p99_ms", "connected_devices", "cloud_rss_mb",
                "device_flood_other_sos_ack_p99_ms")


def _load(name: str, quick: bool = False) -> dict | None:
    p = (RESULTS if name == "firmware" else results_dir(quick)) / f"{name}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def run_one(script: str, quick: bool, timeout: float) -> dict:
    script, *args = script.split()
    cmd = [sys.executable, str(REPO / "bench" / script), *args] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        ok, tail = proc.returncode == 0, (proc.stdout + proc.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        ok, tail = False, f"timed out after {timeout}s"
    return {"ok": ok, "seconds": round(time.perf_counter() - t0, 1), **({} if ok else {"error": tail})}


def summarize(runs: dict, quick: bool) -> dict:
    ingest, sos, conn, growth = (_load(n, quick) or {} for n in ("ingest", "sos_latency", "connections", "growth"))
    fw = _load("firmware")
    light = _load("sos_latency_light", quick) or {}
    pg1, pg2 = _load("ingest_pg", quick), _load("ingest_pg_2workers", quick)
    batch = _load("ingest_batch", quick) or {}
    flood = _load("sos_flood", quick) or {}
    dflood = _load("device_flood", quick) or {}
    summary = {
        "quick": quick,
        "ingest_per_s": ingest.get("ingest_per_s"),
        "ingest_baseline_per_s": ingest.get("ingest_baseline_per_s"),
        "ingest_ratio": ingest.get("ingest_ratio"),
        "ingest_cloud_cpu_us_per_report": ingest.get("cloud_cpu_us_per_report"),
        "ingest_batch_mean": (ingest.get("ingest_internals") or {}).get("batch_mean"),
        "ingest_worker_cpu_us_per_msg": {"one_by_one": (batch.get("single") or {}).get("cpu_us_per_msg"),
                                         "batched": (batch.get("batched") or {}).get("cpu_us_per_msg")},
        "sos_to_ack_p50_ms": sos.get("sos_to_ack_p50_ms"),
        "sos_to_ack_p99_ms": sos.get("sos_to_ack_p99_ms"),
        "sos_to_ack_max_ms": sos.get("sos_to_ack_max_ms"),
        "sos_to_console_p50_ms": sos.get("sos_to_console_p50_ms"),
        "sos_to_console_p99_ms": sos.get("sos_to_console_p99_ms"),
        "sos_to_console_max_ms": sos.get("sos_to_console_max_ms"),
        "sos_load": {"devices": sos.get("connected_devices"), "loc_rate_offered": sos.get("loc_rate_offered"),
                     "loc_persisted_per_s": (sos.get("load") or {}).get("loc_persisted_per_s"),
                     "alerts_resent": sos.get("alerts_resent")},
        "ingest_postgres": {k: (pg1.get(k) if pg1 else None) for k in ("ingest_per_s", "ingest_ratio", "cloud_rss_mb")},
        "ingest_postgres_2_workers": {k: (pg2.get(k) if pg2 else None)
                                      for k in ("ingest_per_s", "ingest_ratio", "cloud_rss_mb")},
        "sos_flood_p99_ms": {"one_session": flood.get("sos_flood_p99_ms_one_session"),
                             "alert_session": flood.get("sos_flood_p99_ms_alert_session")},
        # another device's SOS -> alert_ack while one watch floods 3,000 presses (target p99 <= 300 ms)
        "device_flood_other_sos_ack_p99_ms": dflood.get("device_flood_other_sos_ack_p99_ms"),
        "device_flood": _device_flood(dflood),
        "sos_light": {k: light.get(k) for k in ("connected_devices", "loc_rate_offered", "sos_to_ack_p50_ms",
                                                 "sos_to_ack_p99_ms", "sos_to_ack_max_ms", "sos_to_console_p50_ms",
                                                 "sos_to_console_p99_ms", "sos_to_console_max_ms")},
        "connected_devices": conn.get("connected_devices"),
        "connect_per_s": conn.get("connect_per_s"),
        "max_connected_broker_only": conn.get("max_connected_broker_only"),
        "broker_rss_mb": conn.get("broker_rss_mb"),
        # the cloud's peak RSS under the reference load (benchmark 2: 10k twins + loc load)
        "cloud_rss_mb": sos.get("cloud_rss_mb"),
        "cloud_rss_mb_by_bench": {"ingest": ingest.get("cloud_rss_mb"), "sos_latency": sos.get("cloud_rss_mb"),
                                  "connections": conn.get("cloud_rss_mb"), "growth": growth.get("cloud_rss_mb")},
        "cloud_cpu_pct_per_1k_devices": growth.get("cloud_cpu_pct_per_1k_devices"),
        # the 50,000 step of benchmark 4, measured by `make bench-50k` (edge brokers bridged to a core)
        "growth_50k": (_load("connections_50k", quick) or {}).get("growth_step"),
        "db_bytes_per_device_day": growth.get("db_bytes_per_device_day"),
        "targets": {"ingest_per_s": 5000, "ingest_ratio": 0.7, "sos_to_ack_p99_ms": 300,
                    "sos_to_console_p99_ms": 250, "connected_devices": 10000,
                    "device_flood_other_sos_ack_p99_ms": 300},
        "firmware": fw,
        "runs": runs,
    }
    return summary



def _device_flood(dflood: dict) -> dict:
    flood, cases = dflood.get("flood") or {}, dflood.get("cases") or {}
    return {"other_sos_ack_p50_ms": dflood.get("other_sos_ack_p50_ms"),
            "other_sos_ack_max_ms": dflood.get("other_sos_ack_max_ms"),
            "other_sos_all_acked": dflood.get("other_sos_all_acked"),
            "presses": flood.get("presses_sent"), "presses_acked": flood.get("presses_acked"),
            "flood_drain_s": flood.get("drain_s"), "flooder_cases": cases.get("flooder"),
            "store": dflood.get("store")}

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", help="comma-separated bench names to run (summary still merges all results)")
    a = p.parse_args(argv)
    only = set(a.only.split(",")) if a.only else None
    runs = {}
    t0 = time.perf_counter()
    # The firmware engineer's bench writes bench/results/firmware.json itself (not the quick
    # dir), so it runs only in full mode; quick mode merges whatever firmware.json exists.
    todo = BENCHES + ([FIRMWARE] if (REPO / "bench" / FIRMWARE[1]).exists() and not a.quick else [])
    for name, script in todo:
        if (only and name not in only) or (a.quick and name in FULL_ONLY):
            continue
        if name.startswith("ingest_pg") and pg_bin() is None:
            runs[name] = {"ok": True, "skipped": "no PostgreSQL server binaries"}
            continue
        print(f"== {name}", flush=True)
        runs[name] = run_one(script, a.quick, timeout=120 if a.quick else 420)
        print(f"   {runs[name]}", flush=True)
    total = round(time.perf_counter() - t0, 1)
    if only:  # a partial run keeps the record of the benches it did not rerun
        prev = _load("summary", a.quick) or {}
        total = round(prev.get("total_s") or 0, 1) + sum(r.get("seconds", 0) for r in runs.values())
        runs = {**prev.get("runs", {}), **runs}
    summary = summarize(runs, a.quick)
    summary["total_s"] = total
    write_result("summary", summary)
    print(json.dumps({k: summary[k] for k in SUMMARY_KEYS}, indent=2))
    return 0 if all(r["ok"] for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
