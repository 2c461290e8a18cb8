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
10k): every watch sends one location report a minute while connected, and from the
moment all 50,000 are online in the cloud's database until the first shard ends,
the cloud's CPU and RSS, the reports persisted against those offered, and the
database bytes per report are measured. Writes bench/results/connections_50k.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO, Env, Sampler, free_port, rss_mb, write_result  # noqa: E402

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


def run(devices: int, edges: int, hold_s: float, sos_per_edge: int, loc_per_min: float = 1.0) -> dict:
    from cloud.broker import Credential
    from cloud.domain.accounts import broker_credentials
    from cloud.domain.security import mosquitto_hash
    from cloud.store.db import make_engine, make_sessionmaker
    from hwsim.fleet import write_credentials

    t0 = time.monotonic()
    env = Env(devices).setup()
    timings = {"setup_s": round(time.monotonic() - t0, 1)}
    edge_password = "edge-bench-secret"
    edge_users = [f"pers-edge-{i}" for i in range(edges)]
    procs, results = [], []
    try:
        # The core accepts the cloud and the edges' bridges (service accounts), no watch.
        cloud_users = env.settings.mqtt_service_accounts()
        env.broker.service_accounts = (*cloud_users, *edge_users)
        env.broker.write_files([Credential(u, mosquitto_hash(env.service_password)) for u in cloud_users]
                               + [Credential(u, mosquitto_hash(edge_password)) for u in edge_users])
        env.broker.reload()
        engine = make_engine(env.settings.db_url)
        device_creds = [Credential(d, h) for d, h in broker_credentials(make_sessionmaker(engine))]
        engine.dispose()
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
        growth = watch_growth(env, cloud.pid, idle_rss, procs, devices, loc_per_min, deadline=time.monotonic() + hold_s + 900)
        for p in procs:
            p.wait(timeout=hold_s + 900)
        timings["fleet_s"] = round(time.monotonic() - t_connect, 1)
        processes = sampler.stop()
        fleets = [json.loads(r.read_text()) for r in results if r.exists()]
        online = _online(env)
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
        "timings": timings,
    }


def watch_growth(env: Env, cloud_pid: int, idle_rss: float, procs, devices: int, loc_per_min: float, deadline: float) -> dict:
    """The growth window: from all watches online in the database to the first shard's end."""
    from bench.harness import cpu_s
    start = None
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        if start is None and _online(env) >= devices:
            start = (time.monotonic(), cpu_s(cloud_pid), env.db_count("location_points"), env.db_bytes(),
                     rss_mb(cloud_pid))
        time.sleep(1.0)
    if start is None:
        return {"measured": False, "note": "not all watches came online before a shard ended"}
    t1, c1, n1, b1, r1 = time.monotonic(), cpu_s(cloud_pid), env.db_count("location_points"), env.db_bytes(), \
        rss_mb(cloud_pid)
    t0, c0, n0, b0, r0 = start
    window = t1 - t0
    persisted = n1 - n0
    offered_per_s = devices * loc_per_min / 60
    cpu_pct = 100 * (c1 - c0) / window if window else None
    return {
        "measured": True, "devices": devices, "window_s": round(window, 1),
        "note": "offered_per_s is the rate the shards were set to send, not a count of what they sent",
        "offered_per_s": round(offered_per_s, 1), "persisted_per_s": round(persisted / window, 1) if window else None,
        "kept_up": bool(window) and persisted / window >= 0.95 * offered_per_s,
        "cloud_cpu_pct_mean": round(cpu_pct, 1) if cpu_pct is not None else None,
        "cloud_cpu_pct_per_1k_devices": round(cpu_pct / devices * 1000, 2) if cpu_pct is not None else None,
        "cloud_rss_mb_idle": idle_rss, "cloud_rss_mb_window_start": r0, "cloud_rss_mb_end": r1,
        "cloud_rss_mb_per_1k_devices": round((r1 - idle_rss) / devices * 1000, 2),
        "db_bytes_per_report": round((b1 - b0) / persisted, 1) if persisted else None,
        "db_bytes_per_device_day": round((b1 - b0) / persisted * 1440 * loc_per_min) if persisted else None,
    }


def _online(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM devices WHERE online")).scalar_one()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=50000)
    p.add_argument("--edges", type=int, default=3)
    p.add_argument("--hold", type=float, default=90.0,
                   help="seconds each shard stays connected and reporting (SOS sent meanwhile)")
    p.add_argument("--loc-per-min", type=float, default=1.0, help="location reports per watch per minute")
    p.add_argument("--sos", type=int, default=20, help="SOS alerts per edge")
    p.add_argument("--quick", action="store_true", help="600 devices on 3 edges (the smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.devices, a.hold, a.sos = min(a.devices, 600), min(a.hold, 8.0), min(a.sos, 5)
    result = run(a.devices, a.edges, a.hold, a.sos, a.loc_per_min)
    path = write_result("connections_50k", {"quick": a.quick, **result})
    print(json.dumps({k: v for k, v in result.items() if k != "processes"}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
