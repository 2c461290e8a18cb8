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
- factory_reset     a twin is wiped mid-run: its message ids start again from
                    the first, so the cloud sees old ids with new alarms
- poison            a twin sends alarms with poison values (NaN, Infinity, a
                    2^70 clock, an impossible position, NUL, an unknown kind),
                    unreadable bytes on its alert topic, and a poison report
- device_flood      one twin presses SOS as fast as it can (a stuck or hostile
                    button); the other devices' ack delay meanwhile is measured

Afterwards: every alert is stored exactly once (an id re-used after a reset is
a second alert, not a duplicate), every twin's alerts are in one case (presses
counted), every twin got `alert_ack` `received` for every alert, every case's
audit trail is in order, and the unreadable bytes are quarantined (dead
letters) with an alarm stored for each. Figures go to bench/results/chaos.json.

    python -m bench.chaos.run --alerts 1000 --twins 100      # make chaos
    python -m bench.chaos.run --quick                         # the CI form (tests/system/test_chaos.py)
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
FAULTS = ("cloud_kill9", "broker_kill9", "db_unavailable", "coverage_cut", "deliveries", "clock_far_off",
          "power_cut", "factory_reset", "poison", "device_flood")
# Faults the driver schedules on the whole system; the others ride on the alerts themselves.
SYSTEM_FAULTS = FAULTS[:5]
# Alarms as a broken or hostile watch writes them: each must still be stored and acked.
POISON_ALARMS = ('"ts":1180591620717411303424', '"loc":{"lat":45.76,"lon":4.83,"acc":Infinity,"src":"gnss"}',
                 '"loc":{"lat":95,"lon":4.83,"src":"gnss","ts":10000000000000}', '"batt":{"pct":NaN}',
                 '"fw":"\\u0000"', '"kind":"intruder"', '"loc":{"lat":45.76,"lon":4.83,"src":"cell"}')


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
        from cloud.platform import prepare
        from cloud.seed import seed_demo
        from cloud.settings import Settings
        from cloud.store.db import make_engine, make_sessionmaker
        from hwsim.provision import provision_fleet

        settings = Settings(data_dir=self.data, mqtt_port=self.mqtt_port, http_port=self.http_port)
        prepare(settings)
        engine = make_engine(settings.db_url)
        seed_demo(make_sessionmaker(engine), SystemClock(), self.data)
        engine.dispose()
        # Through the cloud's door (`pers device add --count --json`). The broker's files
        # are not written here: `pers broker` writes them from the database when it starts.
        creds = provision_fleet(settings, twins, prefix="chaos", sync_broker=False)
        watch_creds = provision_fleet(settings, watches, prefix="chaos-fw", sync_broker=False) if watches else []
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


def send_alert(twin, kind: str, ts_offset: int = 0, poison: str | None = None) -> str:
    """Like Twin.send_alert, with a kind, a clock offset or a poison field of our choosing
    (written into the JSON text, as a broken watch would: json.dumps cannot write NaN
    where we want it, nor a 2^70 clock as text)."""
    msg = twin.alert_msg(kind)
    if ts_offset:
        msg["ts"] += ts_offset
        msg["loc"]["ts"] += ts_offset
    if poison is None:
        payload = twin.publish("alert", msg)
    else:
        key = poison.split('"')[1]
        msg.pop(key, None)
        text = json.dumps(msg, separators=(",", ":"))[:-1] + "," + poison + "}"
        payload = twin.publish("alert", {}, raw=text.encode())
        twin.fleet.stats.sent["alert"] += 1
    now = time.perf_counter()
    twin.pending[msg["mid"]] = (now, payload)
    twin.fleet.alert_published(twin, msg["mid"], now)
    loop = asyncio.get_running_loop()
    loop.call_later(twin.fleet.alert_resend_s, twin._resend, msg["mid"], twin.fleet.alert_resend_s)
    return msg["mid"]


async def factory_reset(twin) -> bool:
    """Wipe the twin as a reflash would: its ids count from the first again. Only once it
    has no alarm waiting (a wipe erases the outbox: an alarm in it would be lost by the
    watch itself, not by the system under test)."""
    for _ in range(600):
        if not twin.pending:
            break
        await asyncio.sleep(0.1)
    else:
        return False
    await asyncio.sleep(1.0)  # let acks of its last alarms land first
    twin.seq = itertools.count(1)
    return True


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
                watch_creds=(), flood: int = 3000) -> dict:
    from bench.chaos.mqtt_fault_proxy import FaultProxy
    from hwsim.fleet import Fleet

    rng = random.Random(seed)
    proxy = FaultProxy(("127.0.0.1", system.mqtt_port), seed=seed).start()
    fleet = Fleet(creds, port=proxy.port, alert_resend_s=2.0, reconnect_retries=10**6)
    await fleet.connect_all()
    faults: Counter = Counter()
    # (device, mid, generation) -> monotonic first send; the generation counts the
    # device's factory resets, since a wiped device sends its old ids again.
    sent: dict[tuple[str, str, int], float] = {}
    generation: Counter = Counter()
    junk: list[tuple[str, bytes]] = []  # unreadable bytes sent on alert topics
    acked_at: list[tuple[str, float, float]] = []  # (device, publish perf_counter, ack ms)
    fleet.on_alert_acked = lambda twin, mid, ms: acked_at.append((twin.device_id, time.perf_counter() - ms / 1000, ms))
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

    # The flood comes first, before the scheduled faults (from 10 % of the spread), so the
    # other devices' ack delay meanwhile measures the flood and nothing else.
    flooder = fleet.twins[0]
    others = fleet.twins[1:]
    flood_window = [time.perf_counter(), None]
    for _ in range(flood):
        mid = send_alert(flooder, "sos")
        sent[(flooder.device_id, mid, 0)] = time.monotonic()
    faults["device_flood"] += 1
    flood_sent_s = time.perf_counter() - flood_window[0]

    async def flood_drained():
        while flooder.pending:
            await asyncio.sleep(0.1)
        flood_window[1] = time.perf_counter()
    drained = asyncio.create_task(flood_drained())

    interval = spread_s / alerts
    # A few twins are wiped mid-run, a few send poison; at least one of each.
    resets = {int(alerts * f) for f in (0.3, 0.7)}
    poisons = {int(alerts * f) for f in (0.2, 0.5, 0.8)}
    for i in range(alerts):
        twin = rng.choice(others)
        kind = "fall" if rng.random() < 0.3 else "sos"
        offset, poison = 0, None
        if rng.random() < 0.05:
            offset = rng.choice([-10 * 86400, 365 * 86400])
            faults["clock_far_off"] += 1
        if i in resets and await factory_reset(twin):
            generation[twin.device_id] += 1
            faults["factory_reset"] += 1
        if i in poisons or rng.random() < 0.02:
            poison = rng.choice(POISON_ALARMS)
            faults["poison"] += 1
            # Unreadable bytes on its alert topic (an alarm nobody can read) and a poison report.
            body = f"SOS!!! {twin.device_id} {i}".encode()
            twin.publish("alert", {}, raw=body, count=False)
            junk.append((twin.device_id, body))
            twin.publish("loc", {}, raw=b'{"v":1,"mid":"p.1","ts":1e13,"loc":{"lat":NaN,"lon":4,"src":"gnss"}}',
                         count=False)
        mid = send_alert(twin, kind, offset, poison)
        sent[(twin.device_id, mid, generation[twin.device_id])] = time.monotonic()
        await asyncio.sleep(interval)
    if not faults["clock_far_off"]:
        twin = rng.choice(others)
        mid = send_alert(twin, "sos", -10 * 86400)
        sent[(twin.device_id, mid, generation[twin.device_id])] = time.monotonic()
        faults["clock_far_off"] += 1
    await faults_task
    await drained
    acked = await fleet.wait_alerts_acked(timeout=180)
    watches = list(await asyncio.gather(*watch_runs))
    faults["power_cut"] += sum(w["power_cuts"] for w in watches)
    # What the firmware put on the wire (it chose the mids) must be stored too.
    for (dev, mid), at in proxy.alerts_up.items():
        if dev.startswith("chaos-fw-"):
            sent.setdefault((dev, mid, 0), at)
    # The other devices' PUBLISH -> alert_ack while the flood was being drained.
    during = [ms for dev, t, ms in acked_at
              if dev != flooder.device_id and flood_window[0] <= t <= (flood_window[1] or t)]
    report = fleet.report()
    unacked = {t.device_id: sorted(t.pending) for t in fleet.twins if t.pending}
    unacked.update({w["device"]: f"outbox holds {w['outbox_left']}" for w in watches if not w["acked"]})
    await fleet.close()
    proxy.stop()
    return {"sent": sent, "faults": dict(faults), "all_acked": acked and all(w["acked"] for w in watches),
            "unacked": unacked, "fleet": report, "watches": watches, "proxy": dict(proxy.stats), "junk": junk,
            "flood": {"device": flooder.device_id, "presses": flood, "sent_in_s": round(flood_sent_s, 3),
                      "drained_in_s": round((flood_window[1] or flood_window[0]) - flood_window[0], 3),
                      "other_alerts_acked_meanwhile": len(during),
                      "other_worst_ack_ms": round(max(during), 1) if during else None}}


def verify(db_path: Path, sent: dict[tuple[str, str, int], float], junk=()) -> dict:
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT device_id, mid FROM alerts WHERE device_id LIKE 'chaos-%'").fetchall()
    # Unreadable bytes are stored as alarms under a mid of their bytes ("x-..."): one per distinct body.
    unreadable = sum(1 for _, m in rows if m.startswith("x-"))
    stored = Counter((d, m) for d, m in rows if not m.startswith("x-"))
    expected = Counter((d, m) for d, m, _gen in sent)  # an id re-used after a reset: expected twice
    lost = [f"{d}/{m}" for (d, m), n in expected.items() if stored[(d, m)] < n]
    dup_rows = sum(max(0, n - expected[k]) for k, n in stored.items())
    cases = db.execute("SELECT device_id, COUNT(*), SUM(press_count) FROM alert_cases "
                       "WHERE device_id LIKE 'chaos-%' GROUP BY device_id").fetchall()
    extra_cases = sum(n - 1 for _, n, _ in cases if n > 1)
    presses = sum(p for _, _, p in cases)
    by_device = Counter(d for d, _, _ in sent)
    out_of_order = []
    for (case_id,) in db.execute("SELECT id FROM alert_cases WHERE device_id LIKE 'chaos-%'"):
        events = db.execute("SELECT action, at FROM case_events WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
        if not events or events[0][0] != "opened" or any(a[1] > b[1] for a, b in zip(events, events[1:])):
            out_of_order.append(case_id)
    late = db.execute("SELECT COUNT(*) FROM alert_cases WHERE device_id LIKE 'chaos-%' AND late").fetchone()[0]
    skewed = db.execute("SELECT COUNT(*) FROM case_events e JOIN alert_cases c ON c.id = e.case_id "
                        "WHERE c.device_id LIKE 'chaos-%' AND e.action = 'clock_skew'").fetchone()[0]
    quarantined = db.execute("SELECT COUNT(*), COALESCE(SUM(count), 0), COUNT(case_id) FROM dead_letters "
                             "WHERE device_id LIKE 'chaos-%'").fetchone()
    db.close()
    return {"lost": len(lost), "lost_mids": lost[:20], "duplicated": dup_rows + extra_cases,
            "quarantined": quarantined[0], "quarantined_deliveries": quarantined[1],
            "quarantined_with_case": quarantined[2], "unreadable_alarms_stored": unreadable,
            "unreadable_sent": len(set(junk)),
            "cases": len(cases), "devices_alerting": len(by_device), "presses_counted": presses,
            "audit_out_of_order": out_of_order, "cases_flagged_late": late, "clock_skew_events": skewed}


def run(alerts: int, twins: int, spread_s: float, outage_s: float, seed: int, out: Path | None,
        watches: int = 2, flood: int = 3000) -> dict:
    data = Path(tempfile.mkdtemp(prefix="pers-chaos-"))
    system = System(data)
    creds, watch_creds = system.prepare(twins, watches)
    system.start()
    t0 = time.monotonic()
    try:
        driven = asyncio.run(drive(system, creds, alerts=alerts, spread_s=spread_s, outage_s=outage_s, seed=seed,
                                   watch_creds=watch_creds, flood=flood))
    finally:
        system.stop()
    checked = verify(data / "pers.db", driven["sent"], driven["junk"])
    ack_ms = driven["fleet"]["alert_ack_ms"]
    watch_delays = [w["delay_s"] for w in driven["watches"] if w["delay_s"] is not None]
    worst = max([(ack_ms["max"] or 0) / 1000, *watch_delays])
    result = {
        "alerts": len(driven["sent"]), "twins": twins, "watches": watches,
        "firmware_alerts": sum(1 for d, _, _ in driven["sent"] if d.startswith("chaos-fw-")),
        "lost": checked["lost"], "duplicated": checked["duplicated"],
        "faults": driven["faults"], "worst_delay_s": round(worst, 3),
        "firmware_watches": driven["watches"],
        "alert_ack_ms": ack_ms, "all_acked": driven["all_acked"], "unacked": driven["unacked"],
        "cases": checked["cases"], "devices_alerting": checked["devices_alerting"],
        "presses_counted": checked["presses_counted"], "audit_out_of_order": checked["audit_out_of_order"],
        "cases_flagged_late": checked["cases_flagged_late"], "clock_skew_events": checked["clock_skew_events"],
        "lost_mids": checked["lost_mids"],
        "quarantined": checked["quarantined"], "quarantined_deliveries": checked["quarantined_deliveries"],
        "quarantined_with_case": checked["quarantined_with_case"],
        "unreadable_sent": checked["unreadable_sent"], "unreadable_alarms_stored": checked["unreadable_alarms_stored"],
        "flood": driven["flood"],
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
    p.add_argument("--flood", type=int, default=3000, help="SOS presses from the flooding twin")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--quick", action="store_true", help="the CI form: 200 alerts, short outages")
    p.add_argument("--out", type=Path, default=RESULTS / "chaos.json")
    a = p.parse_args(argv)
    if a.quick:
        a.alerts, a.twins, a.spread, a.outage = max(200, min(a.alerts, 200)), min(a.twins, 40), 30.0, 5.0
        a.watches = min(a.watches, 2)
        a.flood = min(a.flood, 300)
    result = run(a.alerts, a.twins, a.spread, a.outage, a.seed, a.out, a.watches, a.flood)
    print(json.dumps({k: v for k, v in result.items() if k not in ("unacked", "lost_mids")}, indent=2))
    ok = (result["lost"] == 0 and result["duplicated"] == 0 and result["all_acked"] and not result["audit_out_of_order"]
          and result["unreadable_alarms_stored"] == result["unreadable_sent"] == result["quarantined_with_case"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
