"""Benchmark 2, SOS latency under load.

N connected twins send status heartbeats plus a fleet-wide location load; then
200 SOS alerts from 200 distinct twins. For each: PUBLISH -> ``alert_ack``
``received`` at the twin, and PUBLISH -> the case event on a console WebSocket
client (logged in as the seeded operator; the fleet belongs to the same tenant).

The WebSocket client runs in its own thread and event loop, so its receive time is
not delayed by the fleet's loop; both use ``time.perf_counter`` (one clock).
Beside the fleet, SeTracker and IW watch twins (hwsim/gateway_twin.py) on the
watch gateway press SOS during the same load: their frame -> protocol reply
(sent after the commit) and frame -> console times are reported apart
(``gateway_sos``). The cloud is a separate process. Writes bench/results/sos_latency.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import RESULTS, Env, free_port, write_result  # noqa: E402
from bench.measure import PySpy, Sampler  # noqa: E402
from hwsim.fleet import Fleet, percentiles, provision_fleet, raise_nofile  # noqa: E402
from hwsim.gateway_twin import GatewayStats, GatewayTwin, wait_answered  # noqa: E402

GATEWAY_TWINS = (("setracker", "3528398"), ("iw", "8612398"))  # protocol, IMEI prefix: two twins each


class ConsoleClient(threading.Thread):
    """Logs in as the demo operator and records when each device's case first shows up."""

    def __init__(self, url: str):
        super().__init__(daemon=True, name="console-ws")
        self.url = url
        self.first_seen: dict[str, float] = {}   # device_id -> perf_counter of first case event
        self.watch: set[str] = set()
        self.events = 0
        self.ready = threading.Event()
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 - reported
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    async def _main(self) -> None:
        import httpx
        import websockets

        from cloud.seed import DEMO_OPERATOR
        async with httpx.AsyncClient(base_url=self.url) as api:
            r = await api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
            r.raise_for_status()
            cookie = "; ".join(f"{k}={v}" for k, v in api.cookies.items())
        ws_url = self.url.replace("http://", "ws://") + "/api/ws"
        async with websockets.connect(ws_url, additional_headers={"Cookie": cookie}, max_size=2**24) as ws:
            self.ready.set()
            while not self._halt.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.perf_counter()
                ev = json.loads(raw)
                self.events += 1
                if ev.get("type") == "case":
                    dev = ev["case"].get("device_id")
                    if dev in self.watch and dev not in self.first_seen:
                        self.first_seen[dev] = now

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def run(quick: bool = False, devices: int | None = None, loc_rate: float | None = None, alerts: int | None = None,
        heartbeat_s: float | None = None, database_url: str | None = None, profile: bool = True,
        name: str = "sos_latency", load_s: float | None = None) -> dict:
    raise_nofile()
    devices = devices or (30 if quick else 10000)
    loc_rate = loc_rate if loc_rate is not None else (20.0 if quick else 1000.0)
    alerts = min(alerts or (10 if quick else 200), devices)
    heartbeat_s = heartbeat_s or (10.0 if quick else 60.0)
    load_s = load_s or (2.0 if quick else 10.0)     # load before the first alert
    env = Env(devices, database_url=database_url).setup()
    try:
        gateway = [(imei, proto) for proto, prefix in GATEWAY_TWINS
                   for imei, _ in provision_fleet(env.settings, 2, prefix=prefix, sync_broker=False, protocol=proto)]
        gateway_port = free_port()
        cloud = env.start_cloud(PERS_GATEWAY_PORT=gateway_port)
        console = ConsoleClient(cloud.url)
        console.start()
        if not console.ready.wait(20) or console.error:
            raise RuntimeError(f"console client: {console.error}")
        spy_out = RESULTS / "profiles" / f"{name}_cloud.txt" if profile and not quick else None
        r = asyncio.run(_drive(env, cloud, console, quick=quick, alerts=alerts, loc_rate=loc_rate,
                               heartbeat_s=heartbeat_s, load_s=load_s, spy_out=spy_out,
                               gateway=gateway, gateway_port=gateway_port))
        console.stop()
        cases = env.db_count("alert_cases")
    finally:
        env.close()
    out = _result(r, quick=quick, devices=devices, loc_rate=loc_rate, heartbeat_s=heartbeat_s, alerts=alerts,
                  cases=cases, console_events=console.events)
    write_result(name, out)
    return out


async def _drive(env: Env, cloud, console: ConsoleClient, *, quick: bool, alerts: int, loc_rate: float,
                 heartbeat_s: float, load_s: float, spy_out: Path | None, gateway=(), gateway_port: int = 0) -> dict:
    """The fleet under load; ``alerts`` of its twins press SOS one after the other, each
    timed to its alert_ack and to its case on the console."""
    fleet = Fleet(env.creds, **env.device_link, window=5000, alert_resend_s=10.0)
    published: dict[str, float] = {}
    fleet.on_alert_published = lambda twin, mid, t: published.setdefault(twin.device_id, t)
    acked_at: list[tuple[float, float]] = []   # (publish time, ms) to see when the tail happens
    fleet.on_alert_acked = lambda twin, mid, ms: acked_at.append((published.get(twin.device_id, 0.0), ms))
    t0 = time.perf_counter()
    await fleet.connect_all()
    connect_s = time.perf_counter() - t0
    sampler = Sampler({"cloud": cloud.pid, "broker": env.broker_pid})
    sampler.start()
    sos_twins = fleet.connected[::max(1, len(fleet.connected) // alerts)][:alerts]
    console.watch.update(t.device_id for t in sos_twins)
    gw_stats = GatewayStats()
    gw_twins = [GatewayTwin(imei, proto, "127.0.0.1", gateway_port, gw_stats, resend_s=10.0) for imei, proto in gateway]
    for t in gw_twins:
        t.start()
    console.watch.update(t.imei for t in gw_twins)
    gw_pressed: dict[str, float] = {}
    interval = 0.02 if quick else 0.1              # 200 alerts over 20 s
    total = load_s + alerts * interval + (3 if quick else 15)
    loc0 = env.db_count("location_points")
    load = asyncio.create_task(fleet.run_load(total, loc_rate=loc_rate, heartbeat_s=heartbeat_s))
    await asyncio.sleep(load_s)
    spy = PySpy(cloud.pid, 15, spy_out) if spy_out else None
    t_sos = time.perf_counter()
    def press(twin: GatewayTwin) -> None:
        gw_pressed[twin.imei] = time.perf_counter()
        twin.sos()
    loop = asyncio.get_running_loop()
    for i, t in enumerate(gw_twins):  # the gateway's watches press amid the fleet's SOS, spread like them
        loop.call_later((i + 0.5) * alerts * interval / max(1, len(gw_twins)), press, t)
    await fleet.sos(alerts, interval_s=interval, twins=sos_twins)
    offered = await load
    t_end = time.perf_counter()
    loc_persisted = env.db_count("location_points") - loc0
    accepted = await asyncio.to_thread(cloud.ingested)
    all_acked = await fleet.wait_alerts_acked(10 if quick else 60)
    gw_answered = await wait_answered(gw_twins, 30)
    deadline = time.monotonic() + 10
    while len(console.first_seen) < len(published) + len(gw_pressed) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for t in gw_twins:
        await t.close()
    gw_console_ms = [(console.first_seen[d] - t) * 1000 for d, t in gw_pressed.items() if d in console.first_seen]
    procs = sampler.stop()
    prof = await asyncio.to_thread(spy.wait) if spy else None
    console_ms = [(console.first_seen[d] - t) * 1000 for d, t in published.items() if d in console.first_seen]
    rep = fleet.report()
    await fleet.close()
    return {
        "connect_s": round(connect_s, 2), "offered": offered,
        "loc_persisted_during_load": loc_persisted,
        "loc_persisted_per_s": round(loc_persisted / (t_end - t_sos + load_s), 1),
        "sos_ms": {"ack": percentiles(fleet.stats.alert_ack_ms), "console": percentiles(console_ms)},
        "accepted_by_kind_at_load_end": accepted,
        "ack_ms_by_publish_order": [round(ms, 1) for _, ms in sorted(acked_at)],
        "all_acked": all_acked, "console_seen": len(console_ms), "procs": procs, "profile": prof,
        "fleet": rep,
        "gateway_sos": {"twins": len(gw_twins), "all_answered": gw_answered,
                        "reply_ms": percentiles(gw_stats.reply_ms), "console_ms": percentiles(gw_console_ms),
                        "resent": gw_stats.resent,
                        "note": "SeTracker and IW twins on the watch gateway: frame -> reply after the commit"},
    }


def _result(r: dict, *, quick: bool, devices: int, loc_rate: float, heartbeat_s: float, alerts: int, cases: int,
            console_events) -> dict:
    ack, con = r["sos_ms"]["ack"], r["sos_ms"]["console"]
    return {
        "quick": quick,
        "devices": devices,
        "connected_devices": r["fleet"]["connected"],
        "loc_rate_offered": loc_rate,
        "heartbeat_s": heartbeat_s,
        "alerts": alerts,
        "sos_to_ack_p50_ms": ack["p50"], "sos_to_ack_p99_ms": ack["p99"], "sos_to_ack_max_ms": ack["max"],
        "sos_to_console_p50_ms": con["p50"], "sos_to_console_p99_ms": con["p99"],
        "sos_to_console_max_ms": con["max"],
        "alerts_acked": ack["n"], "alerts_seen_on_console": con["n"], "alerts_resent": r["fleet"]["alerts"]["resent"],
        "cases_in_db": cases,
        "load": {"offered": r["offered"], "loc_persisted_during_load": r["loc_persisted_during_load"],
                 "loc_persisted_per_s": r["loc_persisted_per_s"],
                 "cloud_accepted_by_kind_at_load_end": r["accepted_by_kind_at_load_end"],
                 "note": "the cloud's inbox has an urgent lane (alert, ack: one transaction each, taken "
                         "first) and a bounded bulk lane (loc, status, presence: batched, FIFO)"},
        "connect_s": r["connect_s"],
        "ack_ms_by_publish_order": r["ack_ms_by_publish_order"],
        "processes": r["procs"],
        "cloud_rss_mb": r["procs"].get("cloud", {}).get("rss_mb_max"),
        "profile": r["profile"],
        "fleet": {k: r["fleet"][k] for k in ("connected", "connect_per_s", "sent", "pubacked", "alerts", "errors",
                                             "fleet_rss_mb", "fleet_cpu_s")},
        "targets": {"sos_to_ack_p99_ms": 300, "sos_to_console_p99_ms": 250},
        "console_events": console_events,
        "gateway_sos": r["gateway_sos"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--devices", type=int)
    p.add_argument("--loc-rate", type=float)
    p.add_argument("--alerts", type=int)
    p.add_argument("--heartbeat", type=float)
    p.add_argument("--database-url")
    p.add_argument("--name", default="sos_latency")
    a = p.parse_args(argv)
    r = run(a.quick, a.devices, a.loc_rate, a.alerts, a.heartbeat, a.database_url, name=a.name)
    print({k: r[k] for k in ("connected_devices", "sos_to_ack_p50_ms", "sos_to_ack_p99_ms", "sos_to_console_p50_ms",
                             "sos_to_console_p99_ms", "alerts_acked", "cloud_rss_mb")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
