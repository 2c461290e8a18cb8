"""The chaos run: N SOS and fall alerts from device twins and from real firmware
watches while faults hit the system at random moments; then count what was lost
or duplicated.

Real processes: `pers broker` (Mosquitto, supervised) and `pers serve`
(PERS_BROKER=external) on a fresh SQLite database; the twins (hwsim.fleet,
gmqtt) and the firmware watches (the real firmware under `micropython`, in
hwsim) reach the broker through an MQTT-aware fault proxy (their radio link).

Faults (each at least once, at random moments):
- cloud_kill9       kill -9 the cloud process, restart it after a pause
- broker_kill9      kill -9 Mosquitto; `pers broker` restarts it
- db_unavailable    another process holds an exclusive lock on the database
- coverage_cut      every device link cut, new connections refused, for a while
- deliveries        PUBLISH packets dropped and duplicated in both directions
- clock_far_off     alerts stamped days in the past or a year ahead
- power_cut         a firmware watch loses power while its alarm is being
                    written to the flash outbox and sent; a second press follows

Afterwards: every alert is stored exactly once, every twin's alerts are in one
case (presses counted), every twin got `alert_ack` `received` for every alert,
and every case's audit trail is in order. Figures go to bench/results/chaos.json.

    python -m bench.chaos.run --alerts 1000 --twins 100      # make chaos
    python -m bench.chaos.run --quick                         # the CI form (tests/test_chaos.py)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
FAULTS = ("cloud_kill9", "broker_kill9", "db_unavailable", "coverage_cut", "deliveries", "clock_far_off",
          "power_cut")
# Faults the driver schedules on the whole system; the other two ride on the alerts themselves.
SYSTEM_FAULTS = FAULTS[:5]


class System:
    """The service under test, as separate real processes."""

    def __init__(self, data: Path):
        self.data = data
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.env = {**os.environ, "PERS_DATA_DIR": str(data), "PERS_HTTP_PORT": str(self.http_port),
                    "PERS_MQTT_PORT": str(self.mqtt_port), "PERS_BROKER": "external"}
        self.broker = self.cloud = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def _spawn(self, cmd: str) -> subprocess.Popen:
        log = open(self.data / f"{cmd}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "cloud.cli", cmd], env=self.env, stdout=log, stderr=log,
                                start_new_session=True, cwd=ROOT)

    def prepare(self, twins: int, watches: int = 0):
        from cloud.domain.clock import SystemClock
        from cloud.runtime import prepare, sync_broker_auth
        from cloud.seed import seed_demo
        from cloud.settings import Settings
        from cloud.store.db import make_engine, make_sessionmaker
        from hwsim.fleet import provision_fleet

        settings = Settings(data_dir=self.data, mqtt_port=self.mqtt_port, http_port=self.http_port)
        prepare(settings)
        seed_demo(make_sessionmaker(make_engine(settings.db_url)), SystemClock(), self.data)
        creds = provision_fleet(settings, twins, prefix="chaos", sync_broker=False)
        watch_creds = provision_fleet(settings, watches, prefix="chaos-fw", sync_broker=False) if watches else []
        sync_broker_auth(settings)
        return creds, watch_creds

    def start(self):
        self.broker = self._spawn("broker")
        self.start_cloud()

    def start_cloud(self):
        self.cloud = self._spawn("serve")
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cloud did not become healthy")

    def kill_cloud(self):
        os.kill(self.cloud.pid, signal.SIGKILL)
        self.cloud.wait()

    def kill_broker(self):
        pid = int((self.data / "broker" / "mosquitto.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def lock_database(self, seconds: float):
        """Another process (a backup, a vacuum, an operator's sqlite3 shell) holds the write lock."""
        db = sqlite3.connect(self.data / "pers.db", timeout=30)
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.rollback()
        db.close()

    def stop(self):
        for p in (self.cloud, self.broker):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()


def send_alert(twin, kind: str, ts_offset: int = 0) -> str:
    """Like Twin.send_alert, with a kind and a clock offset of our choosing."""
    msg = twin.alert_msg(kind)
    if ts_offset:
        msg["ts"] += ts_offset
        msg["loc"]["ts"] += ts_offset
    payload = twin.publish("alert", msg)
    now = time.perf_counter()
    twin.pending[msg["mid"]] = (now, payload)
    loop = asyncio.get_running_loop()
    loop.call_later(twin.fleet.alert_resend_s, twin._resend, msg["mid"], twin.fleet.alert_resend_s)
    return msg["mid"]


def firmware_watch(device_id: str, secret: str, port: int, press_at: float, seed: int) -> dict:
    """One real watch through the faulty link: the wearer presses SOS, the power is cut
    while the alarm is stored and sent, power returns and the wearer presses again.
    Done when the flash outbox is empty: every alert left it only on the cloud's ack."""
    from hwsim.runner import Watch
    from hwsim.scenario import load

    rng = random.Random(seed)
    link_up = lambda ev: ev.get("type") == "link" and ev.get("state") == "up"  # noqa: E731
    result = {"device": device_id, "acked": False, "delay_s": None, "outbox_left": None, "power_cuts": 0}
    with Watch(device_id, secret, broker=("127.0.0.1", port), scenario=load("sos_demo")) as w:
        w.wait_for(link_up, timeout=120)
        time.sleep(max(0.0, press_at - time.monotonic()))
        t0 = time.monotonic()
        w.press("red", hold_s=1.2, wait=True)
        time.sleep(rng.uniform(0.02, 0.8))  # mid-write or mid-publish
        mark = len(w.events)
        w.power_cut()
        result["power_cuts"] += 1
        w.wait_for(lambda ev: ev.get("type") == "firmware" and ev.get("state") == "started", 30, start=mark)
        time.sleep(rng.uniform(2.0, 6.0))
        w.press("red", hold_s=1.2, wait=True)
        outbox = w.flash_dir / "outbox"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            pending = list(outbox.glob("a*.msg")) if outbox.exists() else []
            if not pending and w.wait_for(lambda ev: ev.get("type") == "display"
                                          and ev.get("text") == "Help is coming", 0.5, start=mark):
                result["acked"], result["delay_s"] = True, round(time.monotonic() - t0, 3)
                break
            time.sleep(0.5)
        result["outbox_left"] = len(list(outbox.glob("a*.msg"))) if outbox.exists() else 0
    return result


async def drive(system: System, creds, *, alerts: int, spread_s: float, outage_s: float, seed: int,
                watch_creds=()) -> dict:
    from bench.chaos.mqtt_fault_proxy import FaultProxy
    from hwsim.fleet import Fleet

    rng = random.Random(seed)
    proxy = FaultProxy(("127.0.0.1", system.mqtt_port), seed=seed).start()
    fleet = Fleet(creds, port=proxy.port, alert_resend_s=2.0, reconnect_retries=10**6)
    await fleet.connect_all()
    faults: Counter = Counter()
    sent: dict[tuple[str, str], float] = {}  # (device, mid) -> monotonic first send
    loop = asyncio.get_running_loop()

    async def in_thread(fn, *args):
        await loop.run_in_executor(None, fn, *args)

    async def fault(kind: str):
        faults[kind] += 1
        if kind == "cloud_kill9":
            system.kill_cloud()
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await in_thread(system.start_cloud)
        elif kind == "broker_kill9":
            system.kill_broker()
        elif kind == "db_unavailable":
            await in_thread(system.lock_database, rng.uniform(2.0, 4.0))
        elif kind == "coverage_cut":
            proxy.outage(outage_s)
        elif kind == "deliveries":
            while proxy.in_outage():  # no traffic to drop during a coverage cut
                await asyncio.sleep(0.5)
            p = proxy.policy
            p.drop_up, p.dup_up, p.drop_down, p.dup_down = 0.2, 0.2, 0.2, 0.2
            hit = lambda: sum(n for k, n in proxy.stats.items()  # noqa: E731
                              if k.startswith(("dropped_", "duplicated_")))
            before, until = hit(), loop.time() + rng.uniform(3, 6)
            # Long enough to hit real traffic, even if an outage overlaps the window.
            while loop.time() < until or (hit() - before < 10 and loop.time() < until + 30):
                await asyncio.sleep(0.2)
            p.drop_up = p.dup_up = p.drop_down = p.dup_down = 0.0

    # Each fault kind at least once, at random moments within the alert stream.
    schedule = [(rng.uniform(0.1, 0.9) * spread_s, k) for k in SYSTEM_FAULTS]
    extra = max(0, alerts // 400)
    schedule += [(rng.uniform(0.1, 0.9) * spread_s, rng.choice(SYSTEM_FAULTS)) for _ in range(extra)]
    schedule.sort()

    # The firmware watches press at random moments too, so the faults find them mid-alarm.
    started = time.monotonic()
    watch_runs = [loop.run_in_executor(None, firmware_watch, dev, secret, proxy.port,
                                       started + rng.uniform(0.1, 0.8) * spread_s, seed + i)
                  for i, (dev, secret) in enumerate(watch_creds)]

    async def run_faults():
        start = loop.time()
        for at, kind in schedule:
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            await fault(kind)

    faults_task = asyncio.create_task(run_faults())
    interval = spread_s / alerts
    for i in range(alerts):
        twin = rng.choice(fleet.twins)
        kind = "fall" if rng.random() < 0.3 else "sos"
        offset = 0
        if rng.random() < 0.05:
            offset = rng.choice([-10 * 86400, 365 * 86400])
            faults["clock_far_off"] += 1
        mid = send_alert(twin, kind, offset)
        sent[(twin.device_id, mid)] = time.monotonic()
        await asyncio.sleep(interval)
    if not faults["clock_far_off"]:
        twin = rng.choice(fleet.twins)
        mid = send_alert(twin, "sos", -10 * 86400)
        sent[(twin.device_id, mid)] = time.monotonic()
        faults["clock_far_off"] += 1
    await faults_task
    acked = await fleet.wait_alerts_acked(timeout=180)
    watches = list(await asyncio.gather(*watch_runs))
    faults["power_cut"] += sum(w["power_cuts"] for w in watches)
    # What the firmware put on the wire (it chose the mids) must be stored too.
    for (dev, mid), at in proxy.alerts_up.items():
        if dev.startswith("chaos-fw-"):
            sent.setdefault((dev, mid), at)
    report = fleet.report()
    unacked = {t.device_id: sorted(t.pending) for t in fleet.twins if t.pending}
    unacked.update({w["device"]: f"outbox holds {w['outbox_left']}" for w in watches if not w["acked"]})
    await fleet.close()
    proxy.stop()
    return {"sent": sent, "faults": dict(faults), "all_acked": acked and all(w["acked"] for w in watches),
            "unacked": unacked, "fleet": report, "watches": watches, "proxy": dict(proxy.stats)}


def verify(db_path: Path, sent: dict[tuple[str, str], float]) -> dict:
    db = sqlite3.connect(db_path)
    stored = Counter((d, m) for d, m in db.execute("SELECT device_id, mid FROM alerts WHERE device_id LIKE 'chaos-%'"))
    lost = [f"{d}/{m}" for d, m in sent if (d, m) not in stored]
    dup_rows = sum(n - 1 for n in stored.values() if n > 1)
    cases = db.execute("SELECT device_id, COUNT(*), SUM(press_count) FROM alert_cases "
                       "WHERE device_id LIKE 'chaos-%' GROUP BY device_id").fetchall()
    extra_cases = sum(n - 1 for _, n, _ in cases if n > 1)
    presses = sum(p for _, _, p in cases)
    by_device = Counter(d for d, _ in sent)
    out_of_order = []
    for (case_id,) in db.execute("SELECT id FROM alert_cases WHERE device_id LIKE 'chaos-%'"):
        events = db.execute("SELECT action, at FROM case_events WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
        if not events or events[0][0] != "opened" or any(a[1] > b[1] for a, b in zip(events, events[1:])):
            out_of_order.append(case_id)
    late = db.execute("SELECT COUNT(*) FROM alert_cases WHERE device_id LIKE 'chaos-%' AND late").fetchone()[0]
    skewed = db.execute("SELECT COUNT(*) FROM case_events e JOIN alert_cases c ON c.id = e.case_id "
                        "WHERE c.device_id LIKE 'chaos-%' AND e.action = 'clock_skew'").fetchone()[0]
    db.close()
    return {"lost": len(lost), "lost_mids": lost[:20], "duplicated": dup_rows + extra_cases,
            "cases": len(cases), "devices_alerting": len(by_device), "presses_counted": presses,
            "audit_out_of_order": out_of_order, "cases_flagged_late": late, "clock_skew_events": skewed}


def run(alerts: int, twins: int, spread_s: float, outage_s: float, seed: int, out: Path | None,
        watches: int = 2) -> dict:
    data = Path(tempfile.mkdtemp(prefix="pers-chaos-"))
    system = System(data)
    creds, watch_creds = system.prepare(twins, watches)
    system.start()
    t0 = time.monotonic()
    try:
        driven = asyncio.run(drive(system, creds, alerts=alerts, spread_s=spread_s, outage_s=outage_s, seed=seed,
                                   watch_creds=watch_creds))
    finally:
        system.stop()
    checked = verify(data / "pers.db", driven["sent"])
    ack_ms = driven["fleet"]["alert_ack_ms"]
    watch_delays = [w["delay_s"] for w in driven["watches"] if w["delay_s"] is not None]
    worst = max([(ack_ms["max"] or 0) / 1000, *watch_delays])
    result = {
        "alerts": len(driven["sent"]), "twins": twins, "watches": watches,
        "firmware_alerts": sum(1 for d, _ in driven["sent"] if d.startswith("chaos-fw-")),
        "lost": checked["lost"], "duplicated": checked["duplicated"],
        "faults": driven["faults"], "worst_delay_s": round(worst, 3),
        "firmware_watches": driven["watches"],
        "alert_ack_ms": ack_ms, "all_acked": driven["all_acked"], "unacked": driven["unacked"],
        "cases": checked["cases"], "devices_alerting": checked["devices_alerting"],
        "presses_counted": checked["presses_counted"], "audit_out_of_order": checked["audit_out_of_order"],
        "cases_flagged_late": checked["cases_flagged_late"], "clock_skew_events": checked["clock_skew_events"],
        "lost_mids": checked["lost_mids"],
        "proxy": driven["proxy"], "resent_alerts": driven["fleet"]["alerts"]["resent"],
        "duration_s": round(time.monotonic() - t0, 1), "data_dir": str(data),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=1000)
    p.add_argument("--twins", type=int, default=100)
    p.add_argument("--watches", type=int, default=4, help="real firmware watches (micropython) in the run")
    p.add_argument("--spread", type=float, default=120.0, help="seconds over which the alerts are sent")
    p.add_argument("--outage", type=float, default=120.0, help="seconds of each coverage cut")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--quick", action="store_true", help="the CI form: 200 alerts, short outages")
    p.add_argument("--out", type=Path, default=RESULTS / "chaos.json")
    a = p.parse_args(argv)
    if a.quick:
        a.alerts, a.twins, a.spread, a.outage = max(200, min(a.alerts, 200)), min(a.twins, 40), 30.0, 5.0
        a.watches = min(a.watches, 2)
    result = run(a.alerts, a.twins, a.spread, a.outage, a.seed, a.out, a.watches)
    print(json.dumps({k: v for k, v in result.items() if k not in ("unacked", "lost_mids")}, indent=2))
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["all_acked"] and not result["audit_out_of_order"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
