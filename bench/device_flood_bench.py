"""One hostile or stuck watch floods SOS presses: how long does ANOTHER wearer wait for the ack?

A tester's report: a watch sending 3,000 SOS presses as fast as it can delays another
wearer's SOS ``alert_ack`` by 7 to 9 s. The requirement: another device's SOS PUBLISH ->
``alert_ack`` ``received`` stays at **p99 <= 300 ms** while one device sends 3,000
presses as fast as it can.

The run, against the real cloud (a separate ``cloud.cli serve`` process, as
``bench/harness.py`` starts it for every bench) on the embedded Mosquitto, SQLite by
default or a throwaway PostgreSQL (``--db postgresql``):

1. ``--quiet`` twins each send one SOS with nothing else going on: the reference.
2. The **flooder**, a fleet twin in its own process (so its 3,000 incoming ``alert_ack``
   commands and the 3,000 command acks it sends back do not load the event loop that
   times the other watches), publishes ``--presses`` SOS alerts (``kind: sos``, one
   ``mid`` each, QoS 1) in one burst: every one in flight at once (MQTT 3.1.1 allows
   65,535 packet ids; nothing waits for a PUBACK) and never re-sent, neither by the twin
   (``alert_resend_s=None``) nor by gmqtt (no reconnect, so no replay).
3. While the flood is offered and worked off, ``--others`` other twins each send
   ``--per-device`` SOS alerts at times spread evenly (interleaved, with a little
   jitter) over ``--spread`` seconds from the flood's first PUBLISH. Each is timed
   from its PUBLISH to the twin's own receipt of the ``alert_ack`` ``received``
   ``cmd`` (wall clock, monotonic). They behave as the contract says (re-sent after
   10 s, back-off, until acked); the delay counts from the first PUBLISH.

Figures: the other devices' ack delay p50/p99/max (``device_flood_other_sos_ack_p99_ms``
is the headline, also for the SOS published while the flooder still had presses waiting
for their ack), whether every other SOS was acked, how many of the flooder's presses were
acked and how long the flood took to drain (first flood PUBLISH -> last press acked; and
until the cloud had also taken the flooder's command acks, which share the urgent lane), and
the cases in the database: one per device, the flooder's presses merged into its one case.
Everything is waited for up to ``--drain-timeout`` s from the flood's start (a full run stays
under ~90 s); an other-device SOS still unacked then counts with the time it was waited for,
so the percentiles are lower bounds, and ``other_sos_unacked`` says how many.

    .venv/bin/python bench/device_flood_bench.py                # full: 3,000 presses, 20 x 5 other SOS
    .venv/bin/python bench/device_flood_bench.py --db postgresql
    .venv/bin/python bench/device_flood_bench.py --quick        # smoke form: 150 presses, 5 x 2 other SOS;
                                                                # a few s of flood after the harness's ~10 s setup

Writes bench/results/device_flood.json (``--quick``: bench/results/quick/). Speed is
reported, never asserted here: the exit status is 0 whatever the figures
(``tests/system/test_device_flood.py`` holds a loose bound).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Env, Sampler, write_result  # noqa: E402
from hwsim.fleet import Fleet, percentiles, raise_nofile  # noqa: E402

TARGET_P99_MS = 300
OPEN = ("new", "routed", "claimed", "in_call")   # AlertCase.status before "resolved"


# --- the flooder (its own process) -------------------------------------------------------

def flooder_main(conn, cred: tuple[str, str], host: str, port: int, presses: int, drain_timeout: float,
                 chunk: int) -> None:
    """Connect one twin, say ``ready``, wait for ``go``, publish ``presses`` SOS alerts
    back to back, then wait (up to ``drain_timeout`` s) for every ``alert_ack`` and
    send the report. Times are ``time.monotonic()``: one clock for both processes."""
    try:
        conn.send(("report", asyncio.run(_flood(conn, cred, host, port, presses, drain_timeout, chunk))))
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _flood(conn, cred, host, port, presses, drain_timeout, chunk) -> dict:
    loop = asyncio.get_running_loop()
    fleet = Fleet([cred], host, port, alert_resend_s=None, reconnect_retries=0, window=presses + 100)
    acked_at: list[float] = []
    ack_ms: list[float] = []
    fleet.on_alert_acked = lambda twin, mid, ms: (acked_at.append(time.monotonic()), ack_ms.append(ms))
    await fleet.connect_all()
    twin = fleet.twins[0]
    if not twin.connected:
        raise RuntimeError(f"flooder did not connect: {dict(fleet.stats.errors)}")
    conn.send(("ready", None))
    await loop.run_in_executor(None, conn.recv)       # "go"
    t0 = time.monotonic()
    for i in range(presses):
        twin.send_alert("sos")
        if (i + 1) % chunk == 0 or i + 1 == presses:
            if i + 1 <= chunk:   # the first presses are on their way: the others may start calling
                conn.send(("flooding", t0))
            await asyncio.sleep(0)   # let the transport write: the broker takes them as fast as it reads
    t_published = time.monotonic()
    pubacked_at = None
    deadline = t0 + drain_timeout
    while time.monotonic() < deadline:
        if pubacked_at is None and fleet.stats.pubacked_by_kind.get("alert", 0) >= presses:
            pubacked_at = time.monotonic()
        if pubacked_at is not None and len(acked_at) >= presses:
            break
        await asyncio.sleep(0.005)
    rep = fleet.report()
    await fleet.close()
    return {"t0": t0, "published_at": t_published, "pubacked_at": pubacked_at, "acked_at": acked_at,
            "ack_ms": ack_ms, "sent": rep["alerts"]["sent"], "acked": rep["alerts"]["acked"],
            "resent": rep["alerts"]["resent"], "pubacked": rep["pubacked_by_kind"].get("alert", 0),
            "commands": rep["commands"], "acks_sent": rep["acks_sent"], "errors": rep["errors"],
            "device_id": twin.device_id}


# --- the run ------------------------------------------------------------------------------

class MetricsPoller(threading.Thread):
    """The cloud's ingest inbox depth (/metrics) once a second: where the backlog sits."""

    def __init__(self, cloud, interval: float = 1.0):
        super().__init__(daemon=True)
        self.cloud, self.interval = cloud, interval
        self.max_depth: dict[str, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            for lane, v in (self.cloud.ingest_internals().get("inbox_depth") or {}).items():
                self.max_depth[lane] = max(self.max_depth.get(lane, 0), v)

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=5)
        return self.max_depth


def run(*, quick: bool = False, presses: int = 3000, others: int = 20, per_device: int = 5, spread: float = 10.0,
        quiet: int = 5, db: str = "sqlite", drain_timeout: float = 60.0, ack_timeout: float = 30.0,
        seed: int = 1, wait_lane_clear: bool = True) -> dict:
    """Run the bench and return its result (also used by tests/system/test_device_flood.py).

    ``drain_timeout``: from the flood's first PUBLISH, how long to wait for every press and
    every other SOS to be acked (and, with ``wait_lane_clear``, for the cloud to have taken
    every command ack); ``ack_timeout``: for each quiet reference SOS."""
    raise_nofile()
    if quick:
        presses, others, per_device = min(presses, 150), min(others, 5), min(per_device, 2)
        spread, quiet, drain_timeout = min(spread, 1.0), min(quiet, 2), min(drain_timeout, 30)
    pg = None
    database_url = None
    if db == "postgresql":
        from bench.pg import TempPostgres
        pg = TempPostgres().start()
        database_url = pg.url
    try:
        return _run(quick, presses, others, per_device, spread, quiet, database_url, drain_timeout,
                    ack_timeout, seed, db, wait_lane_clear)
    finally:
        if pg:
            pg.stop()


def _run(quick, presses, others, per_device, spread, quiet, database_url, drain_timeout, ack_timeout, seed,
         db, wait_lane_clear) -> dict:
    t_start = time.monotonic()
    timings: dict[str, float] = {}
    env = Env(1 + others + quiet, database_url=database_url).setup()
    timings["setup_s"] = round(time.monotonic() - t_start, 2)
    flooder_cred, other_creds = env.creds[0], env.creds[1:1 + others]
    quiet_creds = env.creds[1 + others:]
    host, port = env.settings.mqtt_host, env.settings.mqtt_port
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    flooder = None
    try:
        t = time.monotonic()
        cloud = env.start_cloud()
        timings["cloud_start_s"] = round(time.monotonic() - t, 2)
        flooder = ctx.Process(target=flooder_main, name="flooder", daemon=True,
                              args=(child_conn, flooder_cred, host, port, presses, drain_timeout,
                                    200))
        flooder.start()
        sampler = Sampler({"cloud": cloud.pid, "broker": env.broker_pid})
        poller = MetricsPoller(cloud)

        async def main() -> dict:
            loop = asyncio.get_running_loop()
            callers = Fleet(other_creds, host, port, alert_resend_s=10.0)
            quiets = Fleet(quiet_creds, host, port, alert_resend_s=10.0)
            sos: list[dict] = []
            by_mid: dict[tuple[str, str], dict] = {}

            def published(twin, mid, t):
                rec = {"device": twin.device_id, "mid": mid, "at": time.monotonic(), "ms": None}
                sos.append(rec)
                by_mid[(twin.device_id, mid)] = rec

            def acked(twin, mid, ms):
                by_mid[(twin.device_id, mid)]["ms"] = ms

            callers.on_alert_published = published
            callers.on_alert_acked = acked
            t = time.monotonic()
            await callers.connect_all()
            await quiets.connect_all()
            timings["connect_s"] = round(time.monotonic() - t, 2)
            kind, _ = await loop.run_in_executor(None, _recv, parent_conn, 60)
            if kind != "ready":
                raise RuntimeError(f"flooder: {_}")
            # Every twin's connect-time status is in: nothing of the start-up is left in the cloud.
            n_twins = 1 + len(callers.connected) + len(quiets.connected)
            await loop.run_in_executor(None, cloud.wait_ingested, "status", n_twins, 30)

            # 1. the reference: one SOS per quiet twin, nothing else going on
            for twin in quiets.connected:
                twin.send_alert("sos")
                await quiets.wait_alerts_acked(ack_timeout)
            quiet_ms = list(quiets.stats.alert_ack_ms)

            # 2. the flood, and 3. the other devices' SOS spread over it
            rnd = random.Random(seed)
            twins = callers.connected
            n = len(twins) * per_device
            slot = spread / max(n, 1)
            schedule = sorted(((k + rnd.uniform(0.05, 0.95)) * slot, twins[k % len(twins)]) for k in range(n))
            sampler.start()
            poller.start()
            parent_conn.send("go")
            kind, t0 = await loop.run_in_executor(None, _recv, parent_conn, 30)
            if kind != "flooding":
                raise RuntimeError(f"flooder: {t0}")
            for offset, twin in schedule:   # from the flood's first PUBLISH (one monotonic clock)
                delay = t0 + offset - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                twin.send_alert("sos")
            # One deadline for everything from here: the flood's start + drain_timeout.
            deadline = t0 + drain_timeout
            all_acked = await callers.wait_alerts_acked(max(0.0, deadline - time.monotonic()))
            others_done = time.monotonic()
            kind, flood = await loop.run_in_executor(None, _recv, parent_conn,
                                                     max(0.0, deadline - time.monotonic()) + 30)
            if kind != "report":
                raise RuntimeError(f"flooder: {flood}")
            rep = callers.report()
            # The flooder acks each of its alert_acks on `ack`, which the cloud takes on the same
            # urgent lane: the lane is clear once it has taken every ack sent so far.
            acks = flood["acks_sent"] + rep["acks_sent"] + quiets.stats.acks_sent
            cleared = None
            if wait_lane_clear:
                cleared = await loop.run_in_executor(None, _wait_acks_ingested, cloud, acks, deadline)
            await callers.close()
            await quiets.close()
            timings["flood_and_others_s"] = round(time.monotonic() - t0, 1)
            return {"sos": sos, "all_acked": all_acked, "others_done": others_done, "flood": flood,
                    "acks_cleared_at": cleared, "acks_expected": acks,
                    "callers": rep, "quiet_ms": quiet_ms, "quiet_acked": not any(t.pending for t in quiets.twins)}

        out = asyncio.run(main())
        usage = sampler.stop()
        inbox_max = poller.stop()
        flooder.join(timeout=10)
        ingested = cloud.ingested()
        cases = _cases(env, flooder_cred[0])
    finally:
        if flooder is not None and flooder.is_alive():
            flooder.kill()
        env.close()

    flood, sos = out["flood"], out["sos"]
    t0 = flood["t0"]
    last_ack = max(flood["acked_at"]) if flood["acked_at"] else None
    drained = flood["acked"] >= presses
    drain_s = round(last_ack - t0, 3) if drained and last_ack else None
    # An SOS never acked counts with the time it was waited for (a lower bound): the
    # percentiles then say "at least", never leave the worst ones out.
    unacked = [r for r in sos if r["ms"] is None]
    for r in unacked:
        r["ms"] = (out["others_done"] - r["at"]) * 1000
    ms_all = [r["ms"] for r in sos]
    # "During the flood": published before the flooder's last press was acked (all of them
    # if the flood never drained within the timeout).
    end = last_ack if drained else float("inf")
    ms_during = [r["ms"] for r in sos if r["at"] < end]
    p_all, p_during = percentiles(ms_all), percentiles(ms_during)
    other_cases = cases["by_device"]
    other_ids = {d for d, _ in other_creds}
    flooder_cases = other_cases.get(flooder_cred[0], [])
    acks_per_s = _per_second([a - t0 for a in flood["acked_at"]])
    result = {
        "quick": quick,
        "store": db,
        "params": {"presses": presses, "others": others, "per_device": per_device, "spread_s": spread,
                   "quiet": quiet, "drain_timeout_s": drain_timeout},
        "target_p99_ms": TARGET_P99_MS,
        # the headline
        "device_flood_other_sos_ack_p99_ms": p_all["p99"],
        "other_sos_ack_p50_ms": p_all["p50"],
        "other_sos_ack_max_ms": p_all["max"],
        "other_sos_ack_ms": p_all,
        "other_sos_ack_ms_during_flood": p_during,
        "other_sos_sent": len(sos),
        "other_sos_acked": len(sos) - len(unacked),
        "other_sos_all_acked": bool(out["all_acked"] and not unacked),
        # > 0: the percentiles above are lower bounds (the unacked ones count with their wait so far)
        "other_sos_unacked": len(unacked),
        "other_sos_resent": out["callers"]["alerts"]["resent"],
        "other_sos_over_target": sum(1 for m in ms_all if m > TARGET_P99_MS),
        # each other-device SOS: [s after the flood's first PUBLISH, ms to its alert_ack, acked]
        "other_sos": [[round(r["at"] - t0, 3), round(r["ms"], 1), r not in unacked] for r in sos],
        "target_met": bool(out["all_acked"] and p_all["p99"] is not None and p_all["p99"] <= TARGET_P99_MS),
        "quiet_sos_ack_ms": percentiles(out["quiet_ms"]),
        "flood": {
            "device_id": flood["device_id"],
            "presses_sent": flood["sent"],
            "presses_resent": flood["resent"],
            "publish_s": round(flood["published_at"] - t0, 3),
            # every press PUBACKed by the broker: it has taken the whole flood
            "broker_took_all_s": round(flood["pubacked_at"] - t0, 3) if flood["pubacked_at"] else None,
            "presses_pubacked": flood["pubacked"],
            "presses_acked": flood["acked"],
            "drained": drained,
            "drain_s": drain_s,
            "acked_per_s": round(flood["acked"] / (last_ack - t0), 1) if last_ack and last_ack > t0 else None,
            "acked_by_second": acks_per_s,
            "press_ack_ms": percentiles(flood["ack_ms"]),
            # ... and until the cloud had also taken every command ack (the flooder's 3,000 among
            # them) off its urgent lane: an SOS arriving before then still queues behind them
            "urgent_lane_clear_s": round(out["acks_cleared_at"] - t0, 2) if out["acks_cleared_at"] else None,
            "command_acks_expected": out["acks_expected"],
            "commands_received": flood["commands"],
            "command_acks_sent": flood["acks_sent"],
            "errors": flood["errors"],
        },
        "cases": {
            "total": cases["total"],
            "devices_with_cases": len(other_cases),
            "flooder": flooder_cases,
            "flooder_open_cases": sum(1 for c in flooder_cases if c["status"] in OPEN),
            "flooder_alerts_stored": cases["alerts"].get(flooder_cred[0], 0),
            "other_devices_with_one_case": sum(1 for d in other_ids if len(other_cases.get(d, [])) == 1),
            "other_devices": len(other_ids),
            "other_press_counts": sorted({c["press_count"] for d in other_ids for c in other_cases.get(d, [])}),
            "one_per_device": all(len(v) == 1 for v in other_cases.values()),
        },
        "cloud_ingested": ingested,
        "cloud_inbox_max_depth": inbox_max,
        "usage": usage,
        "callers": {k: out["callers"][k] for k in ("devices", "connected", "errors")},
        "timings": timings,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    return result


def _recv(conn, timeout: float):
    if not conn.poll(timeout):
        return ("error", f"no word from the flooder within {timeout} s")
    return conn.recv()


def _wait_acks_ingested(cloud, n: int, deadline: float) -> float | None:
    """When the cloud has taken ``n`` command acks (its /metrics), or None at ``deadline``."""
    while True:
        now = time.monotonic()
        if cloud.ingested().get("ack", 0) >= n:
            return now
        if now >= deadline:
            return None
        time.sleep(0.1)


def _per_second(offsets: list[float]) -> list[int]:
    if not offsets:
        return []
    out = [0] * (int(max(offsets)) + 1)
    for o in offsets:
        out[int(o)] += 1
    return out


def _cases(env: Env, flooder_id: str) -> dict:
    """The cases and alerts in the cloud's database, per device (SQLAlchemy on its URL)."""
    from sqlalchemy import func, select

    from cloud.store.db import make_engine
    from cloud.store.models import Alert, AlertCase
    eng = make_engine(env.settings.db_url)
    try:
        with eng.connect() as c:
            rows = c.execute(select(AlertCase.device_id, AlertCase.id, AlertCase.status, AlertCase.press_count)
                             .where(AlertCase.device_id.like("fleet-%")).order_by(AlertCase.id)).all()
            alerts = dict(c.execute(select(Alert.device_id, func.count()).where(Alert.device_id.like("fleet-%"))
                                    .group_by(Alert.device_id)).all())
    finally:
        eng.dispose()
    by_device: dict[str, list] = {}
    for device_id, case_id, status, press_count in rows:
        by_device.setdefault(device_id, []).append({"id": case_id, "status": status, "press_count": press_count})
    return {"total": len(rows), "by_device": by_device, "alerts": alerts}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presses", type=int, default=3000, help="SOS presses from the flooding watch")
    p.add_argument("--others", type=int, default=20, help="other watches calling for help during the flood")
    p.add_argument("--per-device", type=int, default=5, help="SOS alerts per other watch")
    p.add_argument("--spread", type=float, default=10.0, help="s from the flood's start over which they are sent")
    p.add_argument("--quiet", type=int, default=5, help="watches sending one SOS each before the flood (reference)")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="s from the flood's start to wait for every press and every other SOS to be acked")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    r = run(quick=a.quick, presses=a.presses, others=a.others, per_device=a.per_device, spread=a.spread,
            quiet=a.quiet, db=a.db, drain_timeout=a.drain_timeout)
    path = write_result("device_flood", r)
    f, c = r["flood"], r["cases"]
    print(f"other-device SOS -> alert_ack ms: {r['other_sos_ack_ms']} (during the flood: "
          f"{r['other_sos_ack_ms_during_flood']}); all acked: {r['other_sos_all_acked']}; "
          f"over {TARGET_P99_MS} ms: {r['other_sos_over_target']}/{r['other_sos_sent']}")
    print(f"quiet reference ms: {r['quiet_sos_ack_ms']}")
    print(f"flood: {f['presses_acked']}/{f['presses_sent']} presses acked, drained in {f['drain_s']} s "
          f"(broker took all in {f['broker_took_all_s']} s, urgent lane clear of command acks at "
          f"{f['urgent_lane_clear_s']} s), resent {f['presses_resent']}")
    print(f"cases: {c['total']}, flooder {c['flooder']}, others with one case "
          f"{c['other_devices_with_one_case']}/{c['other_devices']}")
    print(f"target p99 <= {TARGET_P99_MS} ms met: {r['target_met']}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
