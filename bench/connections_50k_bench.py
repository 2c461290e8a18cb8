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
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.growth_window import GrowthProbe, growth_step, ingest_counters, online_devices  # noqa: E402
from bench.harness import REPO, Env, free_port, write_result  # noqa: E402
from bench.measure import Sampler, rss_mb  # noqa: E402

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
        _core_for_edges(env, edge_users, edge_password)
        edge_brokers = [edge_broker(env, i, env.settings.mqtt_port, edge_password, device_creds)
                        for i in range(edges)]
        cloud = env.start_cloud()
        time.sleep(2)  # the bridges connect
        idle_rss = rss_mb(cloud.pid)
        pids = {"core": env.broker_pid, "cloud": cloud.pid,
                **{f"edge{i}": b.proc.pid for i, b in enumerate(edge_brokers)}}
        sampler = Sampler(pids, interval=2.0)
        sampler.start()
        t_connect = time.monotonic()
        _start_shards(env, edge_brokers, procs, results, hold_s=hold_s, loc_per_min=loc_per_min,
                      sos_per_edge=sos_per_edge)
        probe = GrowthProbe(env, cloud.pid, devices)
        probe.watch(procs, deadline=time.monotonic() + hold_s + 900)
        for p in procs:
            p.wait(timeout=hold_s + 900)
        timings["fleet_s"] = round(time.monotonic() - t_connect, 1)
        online = online_devices(env)
        fleets = [json.loads(r.read_text()) for r in results if r.exists()]
        drained = probe.drain(sum(f["sent"].get("loc", 0) for f in fleets))
        timings["drain_s"] = drained["drain_s"]
        processes = sampler.stop()
        growth = growth_step(env, probe, fleets, edges, idle_rss, devices, loc_per_min, settle_s, drained)
        growth["cloud_ingest"] = ingest_counters(cloud)
        rss = {name: rss_mb(pid) for name, pid in pids.items()}
        for b in edge_brokers:
            b.stop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        env.close()
    return {"devices": devices, "edges": edges, "hold_s": hold_s, **_fleet_figures(fleets),
            "devices_online_in_db": online, "rss_mb_at_end": rss, "processes": processes, "growth_step": growth,
            "timings": timings}



def _core_for_edges(env: Env, edge_users: list[str], edge_password: str) -> None:
    """The core broker accepts the cloud and the edges' bridges only, no watch."""
    from cloud.broker import Credential
    from cloud.domain.security import mosquitto_hash
    cloud_users = env.settings.mqtt_service_accounts()
    env.broker.service_accounts = (*cloud_users, *edge_users)
    env.broker.write_files([Credential(u, mosquitto_hash(env.service_password)) for u in cloud_users]
                           + [Credential(u, mosquitto_hash(edge_password)) for u in edge_users])
    env.broker.reload()


def _start_shards(env: Env, edge_brokers: list, procs: list, results: list, *, hold_s: float, loc_per_min: float,
                  sos_per_edge: int) -> None:
    """One fleet process per edge broker, each with its share of the watches; their
    processes and result files are appended to ``procs`` and ``results`` as they start
    (so the caller can kill what started if a later one fails)."""
    from hwsim.provision import write_credentials
    shard = (len(env.creds) + len(edge_brokers) - 1) // len(edge_brokers)
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


def _fleet_figures(fleets: list[dict]) -> dict:
    """What the shards' fleets reported, summed or listed by edge."""
    acks = [f["alert_ack_ms"] for f in fleets if f["alert_ack_ms"].get("n")]
    return {
        "connected_devices_mosquitto": sum(f["connected"] for f in fleets),
        "connect_per_s_total": round(sum(f["connect_per_s"] or 0 for f in fleets), 1),
        "errors_total": sum(f["errors_total"] for f in fleets),
        "errors": [f["errors"] for f in fleets],
        "sos_sent": sum(f["alerts"]["sent"] for f in fleets), "sos_acked": sum(f["alerts"]["acked"] for f in fleets),
        "sos_round_trip_ms_p50_by_edge": [a["p50"] for a in acks],
        "sos_round_trip_ms_max": max((a["max"] for a in acks), default=None),
        "fleet_rss_mb": [f["fleet_rss_mb"] for f in fleets],
        "fleets": [{"load_s": f["offered"]["seconds"], "loc_sent": f["sent"].get("loc", 0),
                    "loc_pubacked": f.get("pubacked_by_kind", {}).get("loc", 0), "loop_lag_ms": f["loop_lag_ms"],
                    "close_s": f.get("close_s"), "cpu_s": f["fleet_cpu_s"]} for f in fleets],
    }

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
