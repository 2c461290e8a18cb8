"""50,000 connected watches on Mosquitto, past this machine's per-process limit.

One Mosquitto process cannot hold 50,000 connections here: the hard open-file
limit is ~20,000 per process (no CAP_SYS_RESOURCE to raise it). So this runs the
first rung of the scale-out ladder in docs/scaling.md, on real engines only:
edge Mosquitto brokers (each with the generated password file and %u ACL, each
holding a shard of the watches) bridged (Mosquitto's own bridge, QoS 1, clean
session off) to a core Mosquitto that the cloud subscribes to.

The fleet runs as one process per edge (the same open-file limit applies to it).
Each shard sends SOS alerts while all 50,000 are connected: an alert goes
watch -> edge -> bridge -> core -> cloud (stored) -> alert_ack -> core -> bridge
-> edge -> watch, and its round trip is timed. Figures: connected, connect rate,
errors, RSS of every broker and of the cloud, alert round trips, and how many
watches the cloud saw come online.

It is also the 50,000 step of benchmark 4 (growth; bench/growth_bench.py does 1k and
10k): every watch sends one location report a minute while connected. The growth
window is the steady state only: it opens once every twin has sent its first report
(a watch's first one also stores its cell) and every watch is online in the cloud's
database, and closes when the first shard stops sending, not when its process has
finished disconnecting (the window used to run ~9 s into that, where nothing is sent,
which read as 8 % of the reports "not persisted"). Over that window it counts the
reports the twins sent, those the edges PUBACKed and those the cloud stored, follows
the window's own reports to their storage (none may be missing once drained), and
measures the cloud's CPU and RSS and the database bytes per report.
Writes bench/results/connections_50k.json.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from bench.harness import REPO, Env, Sampler, free_port, rss_mb, write_result  # noqa: E402
from hwsim.fleet import percentiles  # noqa: E402

BRIDGE_TEMPLATE = """
# Bridge to the core broker (bench/connections_50k_bench.py): up topics out, down topics in.
connection {name}
address 127.0.0.1:{core_port}
remote_username {name}
remote_password {password}
remote_clientid {name}
cleansession false
bridge_protocol_version mqttv311
try_private true
topic pers/v1/+/alert out 1
topic pers/v1/+/loc out 1
topic pers/v1/+/status out 1
topic pers/v1/+/ack out 1
topic pers/v1/+/presence out 1
topic pers/v1/+/cmd in 1
topic pers/v1/+/config in 1
"""


def edge_broker(env: Env, index: int, core_port: int, password: str, creds):
    from cloud.broker import MosquittoBroker
    edge = MosquittoBroker(env.tmp / f"edge{index}", host="127.0.0.1", port=free_port(), service_accounts=())
    edge.write_files(creds)
    with open(edge.conf, "a") as fh:
        fh.write(BRIDGE_TEMPLATE.format(name=f"pers-edge-{index}", core_port=core_port, password=password))
    edge.start()
    return edge


def run(devices: int, edges: int, hold_s: float, sos_per_edge: int, loc_per_min: float = 1.0,
        settle_s: float = 10.0) -> dict:
    from cloud.broker import Credential
    from cloud.domain.security import mosquitto_hash
    from hwsim.provision import write_credentials

    t0 = time.monotonic()
    env = Env(devices).setup()
    timings = {"setup_s": round(time.monotonic() - t0, 1)}
    edge_password = "edge-bench-secret"
    edge_users = [f"pers-edge-{i}" for i in range(edges)]
    procs, results = [], []
    try:
        # The edges take the watches' entries of the password file the cloud generated
        # (as a deployment copies it to its edge brokers), read before the core's is
        # replaced: the core accepts the cloud and the edges' bridges only, no watch.
        device_creds = env.device_broker_credentials()
        cloud_users = env.settings.mqtt_service_accounts()
        env.broker.service_accounts = (*cloud_users, *edge_users)
        env.broker.write_files([Credential(u, mosquitto_hash(env.service_password)) for u in cloud_users]
                               + [Credential(u, mosquitto_hash(edge_password)) for u in edge_users])
        env.broker.reload()
        edge_brokers = [edge_broker(env, i, env.settings.mqtt_port, edge_password, device_creds)
                        for i in range(edges)]
        cloud = env.start_cloud()
        time.sleep(2)  # the bridges connect
        idle_rss = rss_mb(cloud.pid)
        pids = {"core": env.broker_pid, "cloud": cloud.pid,
                **{f"edge{i}": b.proc.pid for i, b in enumerate(edge_brokers)}}
        sampler = Sampler(pids, interval=2.0)
        sampler.start()
        shard = (len(env.creds) + edges - 1) // edges
        t_connect = time.monotonic()
        for i, b in enumerate(edge_brokers):
            cred_file = env.tmp / f"shard{i}.csv"
            part = env.creds[i * shard:(i + 1) * shard]
            write_credentials(cred_file, part)
            out = env.tmp / f"fleet{i}.json"
            results.append(out)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "hwsim.fleet", "--credentials", str(cred_file), "--devices", str(len(part)),
                 "--broker", f"127.0.0.1:{b.port}", "--duration", str(hold_s),
                 "--rate", str(round(len(part) * loc_per_min / 60, 2)),
                 "--heartbeat", "0", "--sos", str(sos_per_edge), "--ack-timeout", "120",
                 "--connect-concurrency", "300", "--out", str(out)],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        probe = GrowthProbe(env, cloud.pid, devices)
        probe.watch(procs, deadline=time.monotonic() + hold_s + 900)
        for p in procs:
            p.wait(timeout=hold_s + 900)
        timings["fleet_s"] = round(time.monotonic() - t_connect, 1)
        online = _online(env)
        fleets = [json.loads(r.read_text()) for r in results if r.exists()]
        drained = probe.drain(sum(f["sent"].get("loc", 0) for f in fleets))
        timings["drain_s"] = drained["drain_s"]
        processes = sampler.stop()
        growth = growth_step(env, probe, fleets, edges, idle_rss, devices, loc_per_min, settle_s, drained)
        growth["cloud_ingest"] = _ingest_counters(cloud)
        rss = {name: rss_mb(pid) for name, pid in pids.items()}
        for b in edge_brokers:
            b.stop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        env.close()
    connected = sum(f["connected"] for f in fleets)
    acks = [f["alert_ack_ms"] for f in fleets if f["alert_ack_ms"].get("n")]
    return {
        "devices": devices, "edges": edges, "hold_s": hold_s,
        "connected_devices_mosquitto": connected,
        "connect_per_s_total": round(sum(f["connect_per_s"] or 0 for f in fleets), 1),
        "errors_total": sum(f["errors_total"] for f in fleets),
        "errors": [f["errors"] for f in fleets],
        "sos_sent": sum(f["alerts"]["sent"] for f in fleets), "sos_acked": sum(f["alerts"]["acked"] for f in fleets),
        "sos_round_trip_ms_p50_by_edge": [a["p50"] for a in acks],
        "sos_round_trip_ms_max": max((a["max"] for a in acks), default=None),
        "devices_online_in_db": online,
        "rss_mb_at_end": rss, "processes": processes, "growth_step": growth,
        "fleet_rss_mb": [f["fleet_rss_mb"] for f in fleets],
        "fleets": [{"load_s": f["offered"]["seconds"], "loc_sent": f["sent"].get("loc", 0),
                    "loc_pubacked": f.get("pubacked_by_kind", {}).get("loc", 0), "loop_lag_ms": f["loop_lag_ms"],
                    "close_s": f.get("close_s"), "cpu_s": f["fleet_cpu_s"]} for f in fleets],
        "timings": timings,
    }


class GrowthProbe:
    """Samples the cloud (CPU, RSS) every ``interval`` s while the shards run, and notes
    when every watch is online in the database. The growth window itself is chosen
    afterwards (growth_step), from the shards' own load start and end times: only then is
    it known when the last shard entered its steady schedule and the first one left it."""

    def __init__(self, env: Env, cloud_pid: int, devices: int, interval: float = 1.0):
        self.env, self.cloud_pid, self.devices, self.interval = env, cloud_pid, devices, interval
        self.samples: list[tuple[float, float, float]] = []   # (unix time, cloud CPU s, cloud RSS MB)
        self.online_at: float | None = None
        self.online_bytes: tuple[int, int] | None = None      # (db bytes, location rows) then
        self.exits: dict[int, float] = {}                      # shard -> unix time its process was seen gone

    def sample(self) -> None:
        from bench.harness import cpu_s
        self.samples.append((time.time(), cpu_s(self.cloud_pid), rss_mb(self.cloud_pid)))

    def watch(self, procs, deadline: float) -> None:
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            self.exits.update({i: time.time() for i, p in enumerate(procs) if p.poll() is not None
                               and i not in self.exits})
            self.sample()
            if self.online_at is None and _online(self.env) >= self.devices:
                self.online_at = time.time()
                self.online_bytes = (self.env.db_bytes(), _fleet_locs(self.env))
            time.sleep(self.interval)
        self.exits.update({i: time.time() for i, p in enumerate(procs) if i not in self.exits})
        self.sample()

    def drain(self, expected: int, timeout: float = 120.0) -> dict:
        """Wait until the cloud has stored every report the shards sent (or the count
        stops moving for 10 s): what is stored after that was never going to be."""
        t0 = time.monotonic()
        last, still_since = -1, time.monotonic()
        while time.monotonic() - t0 < timeout:
            n = _fleet_locs(self.env)
            if n >= expected:
                break
            if n != last:
                last, still_since = n, time.monotonic()
            elif time.monotonic() - still_since > 10:
                break
            time.sleep(0.5)
        self.sample()
        return {"drain_s": round(time.monotonic() - t0, 1), "stored": _fleet_locs(self.env)}

    def at(self, t: float) -> tuple[float, float]:
        """Cloud CPU seconds (interpolated) and RSS (nearest sample) at unix time ``t``."""
        rows = self.samples
        for (ta, ca, ra), (tb, cb, rb) in zip(rows, rows[1:]):
            if ta <= t <= tb:
                f = (t - ta) / (tb - ta) if tb > ta else 0.0
                return ca + f * (cb - ca), (ra if f < 0.5 else rb)
        near = min(rows, key=lambda r: abs(r[0] - t))
        return near[1], near[2]


def growth_step(env: Env, probe: GrowthProbe, fleets: list[dict], shards: int, idle_rss: float, devices: int,
                loc_per_min: float, settle_s: float, drained: dict) -> dict:
    """The growth window, in whole seconds: from the moment every twin has sent its first
    report (the last shard's load start plus one report period) and every watch has been
    online in the database for ``settle_s``, to the first shard's load end. Before that,
    a watch's first report also stores its cell (one UPDATE more than later reports), so
    the first period is counted apart. Sent, PUBACKed (by the edge) and stored are counted
    over the same window: sent and PUBACKed from the shards' per-second counters, stored
    by the cloud's own received_at, and what became of the window's reports by their
    device_ts (the twin's send second) once everything has drained."""
    offered_per_s = devices * loc_per_min / 60
    period = 60 / loc_per_min
    base = {"devices": devices, "offered_per_s": round(offered_per_s, 1), "settle_s": settle_s,
            "report_period_s": round(period, 1)}
    loads = [f.get("offered") or {} for f in fleets]
    if probe.online_at is None:
        return {"measured": False, **base, "note": "not all watches came online before a shard ended"}
    if len(fleets) < shards or not all("started_at" in o for o in loads):
        return {"measured": False, **base, "note": "a shard did not report its load"}
    first = math.ceil(max(probe.online_at + settle_s, *(o["started_at"] for o in loads)))
    a = max(first, math.ceil(max(o["started_at"] for o in loads) + period))
    b = math.floor(min(o["ended_at"] for o in loads))
    if b - a < 1:
        return {"measured": False, **base, "note": f"no steady window: the first shard's load ended {a - b} s "
                f"before every twin had reported once and every watch had been online for {settle_s} s; "
                "raise --hold"}
    window = b - a
    steady = _count_window(env, probe, fleets, a, b)
    sent, persisted = steady["sent"], steady["persisted"]
    bytes0, locs0 = probe.online_bytes
    bytes1, locs1 = env.db_bytes(), _fleet_locs(env)
    per_report = (bytes1 - bytes0) / (locs1 - locs0) if locs1 > locs0 else None
    # The window this bench used before (every watch online -> first shard process gone),
    # kept to compare with results measured that way: it ran on past the loads' end.
    pa, pb = math.floor(probe.online_at), math.ceil(min(probe.exits.values()))
    previous = _count_window(env, probe, fleets, pa, pb)
    return {
        "measured": True, **base, "window_s": window, "window_unix": [a, b],
        "sent_per_s": round(sent / window, 1),
        "pubacked_per_s": round(steady["pubacked"] / window, 1),
        "persisted_per_s": round(persisted / window, 1),
        "sent_per_s_by_shard": [round(n / window, 1) for n in steady["sent_by_shard"]],
        "pubacked_per_s_by_shard": [round(n / window, 1) for n in steady["pubacked_by_shard"]],
        "sent_per_s_min_max": steady["sent_per_s_min_max"],
        "sent_in_window": sent, "pubacked_in_window": steady["pubacked"], "persisted_in_window": persisted,
        "persisted_in_window_sent_before": steady["carried_in"],
        "sent_in_window_persisted_after": steady["carried_out"],
        "sent_in_window_never_persisted": steady["never"],
        "send_to_store_s": steady["lag"],
        # Kept up: stored at the rate actually sent, and nothing the window sent is missing.
        "kept_up": persisted >= 0.95 * sent and steady["never"] == 0,
        "run_loc_sent": sum(f["sent"].get("loc", 0) for f in fleets),
        "run_loc_pubacked": sum(f.get("pubacked_by_kind", {}).get("loc", 0) for f in fleets),
        "run_loc_persisted": drained["stored"], "drain_s": drained["drain_s"],
        "fleet_loop_lag_ms_p99_by_shard": [f["loop_lag_ms"]["p99"] for f in fleets],
        "fleet_loop_lag_ms_max_by_shard": [f["loop_lag_ms"]["max"] for f in fleets],
        "cloud_cpu_pct_mean": steady["cloud_cpu_pct"],
        "cloud_cpu_pct_per_1k_devices": round(steady["cloud_cpu_pct"] / devices * 1000, 2),
        "cloud_rss_mb_idle": idle_rss, "cloud_rss_mb_window_start": steady["rss_mb"][0],
        "cloud_rss_mb_window_end": steady["rss_mb"][1],
        "cloud_rss_mb_per_1k_devices": round((steady["rss_mb"][1] - idle_rss) / devices * 1000, 2),
        "db_bytes_per_report": round(per_report, 1) if per_report else None,
        "db_bytes_per_device_day": round(per_report * 1440 * loc_per_min) if per_report else None,
        "first_period": _brief(_count_window(env, probe, fleets, first, a)) if a > first else None,
        "previous_window": {**_brief(previous),
                            "first_load_end_to_exit_s": round(min(probe.exits.values())
                                                              - min(o["ended_at"] for o in loads), 1)},
        "note": "offered_per_s is the rate the shards were set to send; sent/pubacked/persisted are counts over "
                "the same window (sent and PUBACKed by the twins' report second, persisted by the cloud's "
                "received_at); send_to_store_s includes up to 1 s of rounding (device_ts is whole seconds); "
                "db bytes per report span all-online to the end of the drain; previous_window is the window "
                "this bench used up to 2026-11-30 (all online -> first shard process gone)",
    }


def _count_window(env: Env, probe: GrowthProbe, fleets: list[dict], a: int, b: int) -> dict:
    """Reports sent, PUBACKed and stored over the whole seconds [a, b), and the cloud's CPU."""
    def in_window(per_s: dict) -> int:
        return sum(n for t, n in per_s.items() if a <= int(t) < b)

    sent_by_shard = [in_window(f["loc_sent_at"]) for f in fleets]
    acked_by_shard = [in_window(f["loc_pubacked_at"]) for f in fleets]
    per_second = [sum(f["loc_sent_at"].get(str(t), 0) for f in fleets) for t in range(a, b)]
    rows = _window_rows(env, a, b)
    of_window = [(ts, rx) for ts, rx in rows if a <= ts < b]      # the window's own reports, stored ever
    c0, r0 = probe.at(a)
    c1, r1 = probe.at(b)
    sent = sum(sent_by_shard)
    return {"window_s": b - a, "sent": sent, "sent_by_shard": sent_by_shard, "pubacked": sum(acked_by_shard),
            "pubacked_by_shard": acked_by_shard,
            "sent_per_s_min_max": [min(per_second), max(per_second)] if per_second else None,
            "persisted": sum(1 for _ts, rx in rows if a <= rx < b),
            "carried_in": sum(1 for ts, rx in rows if ts < a and a <= rx < b),
            "carried_out": sum(1 for _ts, rx in of_window if rx >= b),
            "never": sent - len(of_window),
            "lag": percentiles([rx - ts for ts, rx in of_window]),
            "cloud_cpu_pct": round(100 * (c1 - c0) / (b - a), 1), "rss_mb": (r0, r1)}


def _brief(c: dict) -> dict:
    w = c["window_s"]
    return {"window_s": w, "sent_per_s": round(c["sent"] / w, 1), "pubacked_per_s": round(c["pubacked"] / w, 1),
            "persisted_per_s": round(c["persisted"] / w, 1), "never_persisted": c["never"],
            "cloud_cpu_pct_mean": c["cloud_cpu_pct"]}


def _ingest_counters(cloud) -> dict:
    """The cloud's own count of what it took (/metrics), to set against what it stored."""
    m = cloud.metric_samples("pers_")
    keep = ('pers_ingest_messages_total{kind="loc"}', 'pers_ingest_duplicates_total{kind="loc"}',
            "pers_mqtt_bulk_received_total")
    out = {k: v for k, v in m.items() if k in keep or k.startswith(("pers_ingest_rejected_total{",
                                                                       "pers_ingest_backpressure_total{"))}
    return out


def _fleet_locs(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM location_points WHERE device_id LIKE 'fleet-%'")).scalar_one()


def _window_rows(env: Env, a: int, b: int) -> list[tuple[int, float]]:
    """(device second, received unix time) of the fleet's reports sent or stored in [a, b)."""
    from datetime import datetime

    from sqlalchemy import select

    from cloud.store.models import LocationPoint
    lo = datetime.fromtimestamp(a, UTC).replace(tzinfo=None)
    hi = datetime.fromtimestamp(b, UTC).replace(tzinfo=None)
    env.db_count("devices")
    with env._engine.connect() as c:
        rows = c.execute(select(LocationPoint.device_ts, LocationPoint.received_at).where(
            LocationPoint.device_id.like("fleet-%"),
            ((LocationPoint.device_ts >= a) & (LocationPoint.device_ts < b))
            | ((LocationPoint.received_at >= lo) & (LocationPoint.received_at < hi)))).all()
    return [(ts, rx.replace(tzinfo=UTC).timestamp()) for ts, rx in rows]


def _online(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM devices WHERE online")).scalar_one()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=50000)
    p.add_argument("--edges", type=int, default=3)
    # 150 s: the shards' loads start up to a few seconds apart and the window opens one
    # report period (60 s) after the last one, which leaves a window of ~85 s.
    p.add_argument("--hold", type=float, default=150.0,
                   help="seconds each shard stays connected and reporting (SOS sent meanwhile)")
    p.add_argument("--loc-per-min", type=float, default=1.0, help="location reports per watch per minute")
    p.add_argument("--sos", type=int, default=20, help="SOS alerts per edge")
    p.add_argument("--settle", type=float, default=10.0,
                   help="s after every watch is online and every shard is loading before the growth window opens")
    p.add_argument("--quick", action="store_true", help="600 devices on 3 edges (the smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.devices, a.hold, a.sos, a.settle = min(a.devices, 600), min(a.hold, 8.0), min(a.sos, 5), min(a.settle, 1.0)
        # a report every 3 s, so that every twin has reported well inside the 8 s
        a.loc_per_min = max(a.loc_per_min, 20.0)
    result = run(a.devices, a.edges, a.hold, a.sos, a.loc_per_min, a.settle)
    path = write_result("connections_50k", {"quick": a.quick, **result})
    print(json.dumps({k: v for k, v in result.items() if k != "processes"}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
