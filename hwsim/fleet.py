"""Fleet mode: thousands of light device twins in one asyncio process, for load.

A twin is not the firmware: it is the watch's wire behaviour only (PROTOCOL.md,
``cloud/protocol.py``), cheap enough that 10,000 of them fit in one process:

- client id = username = device id, its own secret, ``clean_session=False``;
- last will ``pers/v1/<id>/presence`` ``{"online":false}`` QoS 1 retained, and
  ``{"online":true}`` retained on connect, then a ``status``;
- ``status`` heartbeats, ``loc`` reports at a configured fleet-wide rate;
- SOS ``alert``s on demand, re-sent (same ``mid``, back-off) until the cloud's
  ``alert_ack`` ``received`` arrives; the PUBLISH -> ``alert_ack`` latency is recorded;
- it subscribes to its ``cmd`` topic and acks every command on ``ack``.

Messages are plain dicts matching ``cloud.protocol`` exactly (building pydantic
models for 10k loc/s would cost the load generator more than the cloud);
``tests/system/test_fleet.py`` validates every kind with ``cloud.protocol.parse_up``.

The MQTT client is gmqtt (asyncio; the fastest Python client measured in
shared/reference/mqtt-broker-measurements.md). One event loop, no threads.

CLI (the lead exposes it as ``pers sim fleet``)::

    python -m hwsim.fleet --devices 1000 --rate 200 --duration 30 --sos 20 \
        --broker 127.0.0.1:1883 --credentials fleet.csv --out result.json

``--credentials`` is a CSV ``device_id,secret`` (written by ``--provision`` or
by :func:`provision_fleet`).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import itertools
import json
import logging
import os
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = "pers/v1"
FW = "fleet-0.1"
log = logging.getLogger("hwsim.fleet")


def percentiles(values: list[float]) -> dict:
    """p50/p90/p99/max in the unit given (None when empty)."""
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(round(p * (len(v) - 1))))], 3)

    return {"n": len(v), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(v[-1], 3)}


# --- provisioning (reuses the cloud's own code) --------------------------------------

def provision_fleet(settings, n: int, *, tenant_name: str = "Les Tilleuls care home", prefix: str = "fleet",
                    credentials: Path | None = None, sync_broker: bool = True, start: int = 0) -> list[tuple[str, str]]:
    """Create ``n`` devices in the cloud database for ``tenant_name`` and write the
    broker's password file (``cloud.runtime.sync_broker_auth``).

    A bulk insert of ``Device`` rows, one transaction, with the same hash as
    ``provision_device`` (``mosquitto_hash``, PBKDF2-SHA512, 101 iterations) and
    one audit entry for the batch. Returns ``[(device_id, secret)]``; the secrets
    are written to ``credentials`` (CSV, mode 0600) when given and never stored
    in the database. Device ids: ``<prefix>-<7 digits>``."""
    from sqlalchemy import select

    from cloud.domain.clock import SystemClock
    from cloud.domain.security import mosquitto_hash, new_device_secret
    from cloud.domain.uow import transaction
    from cloud.runtime import sync_broker_auth
    from cloud.store.db import make_engine, make_sessionmaker
    from cloud.store.models import AuditEntry, Device, Tenant

    engine = make_engine(settings.db_url)
    sm = make_sessionmaker(engine)
    clock = SystemClock()
    with sm() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == tenant_name))
        if tenant is None:
            raise ValueError(f"no tenant named {tenant_name!r} (seed the database first)")
        tenant_id = tenant.id
    now = clock.now()
    creds = [(f"{prefix}-{i:07d}", new_device_secret()) for i in range(start, start + n)]
    rows = [{"id": d, "tenant_id": tenant_id, "wearer_id": None, "broker_hash": mosquitto_hash(sec),
             "online": False, "created_at": now} for d, sec in creds]
    with transaction(sm) as tx:
        for i in range(0, len(rows), 2000):
            tx.session.execute(Device.__table__.insert(), rows[i:i + 2000])
        tx.session.add(AuditEntry(at=now, actor="fleet", action="device.provisioned", tenant_id=tenant_id,
                                  target=f"device:{creds[0][0]}..{creds[-1][0]}" if creds else None,
                                  detail={"count": n}))
    engine.dispose()
    if credentials is not None:
        write_credentials(credentials, creds)
    if sync_broker:
        sync_broker_auth(settings)
    return creds


def write_credentials(path: Path, creds: list[tuple[str, str]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        csv.writer(fh).writerows(creds)


def read_credentials(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(row[0], row[1]) for row in csv.reader(fh) if row and not row[0].startswith("#")]


# --- the twin ------------------------------------------------------------------------

def _gmqtt():
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv311
    return gmqtt, MQTTv311


@dataclass
class FleetStats:
    sent: Counter = field(default_factory=Counter)        # by kind, first sends only
    pubacked: int = 0
    resent_alerts: int = 0
    commands: Counter = field(default_factory=Counter)    # by command type
    acks_sent: int = 0
    alert_ack_ms: list = field(default_factory=list)      # PUBLISH -> alert_ack received
    errors: Counter = field(default_factory=Counter)
    connect_ms: list = field(default_factory=list)
    # Per wall-clock second, so a benchmark can count what was sent and PUBACKed in the very
    # window it measures the system under test over; a loc report is filed under its own
    # ``ts``, which the cloud stores as device_ts, so sent and stored match report for report.
    loc_sent_at: Counter = field(default_factory=Counter)
    loc_pubacked_at: Counter = field(default_factory=Counter)
    pubacked_by_kind: Counter = field(default_factory=Counter)
    loop_lag_ms: list = field(default_factory=list)       # run_load's paced ticks: late by


class Twin:
    """One light device twin. All twins of a fleet share one event loop."""

    __slots__ = ("fleet", "device_id", "secret", "client", "boot", "seq", "pending", "acked_alerts",
                 "connected", "topics", "lat", "lon", "uptime0", "seen_cids", "unacked")

    def __init__(self, fleet: "Fleet", device_id: str, secret: str):
        self.fleet, self.device_id, self.secret = fleet, device_id, secret
        self.client = None
        # mid = "<boot>.<seq>", unique per device for ever as the contract asks:
        # a fresh boot number per run (wall-clock based) so reruns on the same DB never collide.
        self.boot = fleet.boot
        self.seq = itertools.count(1)
        self.pending: dict[str, tuple[float, bytes]] = {}   # alert mid -> (first publish time, payload)
        self.acked_alerts: set[str] = set()
        self.seen_cids: set[str] = set()
        # Kinds of the QoS 1 publishes awaiting their PUBACK, oldest first: the broker acks
        # one connection's publishes in order, and gmqtt's hook gives only the packet id.
        self.unacked: list[str] = []
        self.connected = False
        base = f"{ROOT}/{device_id}/"
        self.topics = {k: base + k for k in ("alert", "loc", "status", "ack", "presence", "cmd")}
        rnd = random.Random(device_id)
        self.lat = 45.70 + rnd.random() * 0.15   # around Lyon
        self.lon = 4.78 + rnd.random() * 0.15
        self.uptime0 = time.monotonic()

    # --- messages (exactly cloud.protocol's shapes) ---
    def next_mid(self) -> str:
        return f"{self.boot}.{next(self.seq)}"

    def _loc(self, ts: int) -> dict:
        return {"lat": round(self.lat, 6), "lon": round(self.lon, 6), "acc": 8.5, "src": "gnss", "ts": ts, "sats": 7}

    def status_msg(self) -> dict:
        return {"v": 1, "mid": self.next_mid(), "ts": int(time.time()), "batt": {"pct": 80, "mv": 3900},
                "net": {"profile": "fr-1", "op": "20801", "rssi": -85, "rat": "LTE"}, "fw": FW,
                "uptime": int(time.monotonic() - self.uptime0), "cfg": 0, "outbox": len(self.pending)}

    def loc_msg(self, reason: str = "periodic", ref: str | None = None) -> dict:
        ts = int(time.time())
        m = {"v": 1, "mid": self.next_mid(), "ts": ts, "loc": self._loc(ts),
             "cell": {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE"},
             "batt": {"pct": 80, "mv": 3900}, "reason": reason}
        if ref:
            m["ref"] = ref
        return m

    def alert_msg(self, kind: str = "sos") -> dict:
        ts = int(time.time())
        return {"v": 1, "mid": self.next_mid(), "ts": ts, "kind": kind, "trigger": "button",
                "loc": self._loc(ts), "cell": {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85,
                                               "rat": "LTE"},
                "batt": {"pct": 64, "mv": 3850}, "vitals": {"hr": 92}, "net": {"profile": "fr-1", "op": "20801"},
                "fw": FW}

    # --- connection ---
    async def connect(self, host: str, port: int, keepalive: int) -> None:
        gmqtt, MQTTv311 = _gmqtt()
        fleet = self.fleet
        will = gmqtt.Message(self.topics["presence"], b'{"online":false}', qos=1, retain=True)
        client = _client_class()(self.device_id, clean_session=False, will_message=will,
                             logger=fleet.gmqtt_log)
        client.twin = self
        client.set_auth_credentials(self.device_id, self.secret)
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.set_config({"reconnect_retries": fleet.reconnect_retries, "reconnect_delay": 2})
        self.client = client
        t0 = time.perf_counter()
        await client.connect(host, port, keepalive=keepalive, version=MQTTv311)
        fleet.stats.connect_ms.append((time.perf_counter() - t0) * 1000)
        self.connected = True
        client.subscribe(self.topics["cmd"], qos=1)
        self.publish("presence", {"online": True, "ts": int(time.time())}, retain=True, count=False)
        self.publish("status", self.status_msg())

    async def disconnect(self) -> None:
        if self.client is not None and self.connected:
            self.connected = False
            try:
                await asyncio.wait_for(self.client.disconnect(), 5)
            except Exception:  # noqa: BLE001 - closing anyway
                pass

    def publish(self, kind: str, msg: dict, *, retain: bool = False, count: bool = True,
                raw: bytes | None = None) -> bytes:
        payload = raw if raw is not None else json.dumps(msg, separators=(",", ":")).encode()
        self.client.publish(self.topics[kind], payload, qos=1, retain=retain)
        self.unacked.append(kind)
        self.fleet.inflight += 1
        if self.fleet.record is not None:
            self.fleet.record.append((self.topics[kind], payload))
        if count:
            self.fleet.stats.sent[kind] += 1
            if kind == "loc":
                self.fleet.stats.loc_sent_at[msg["ts"]] += 1
        return payload

    # --- behaviours ---
    def send_loc(self) -> None:
        self.publish("loc", self.loc_msg())

    def send_status(self) -> None:
        self.publish("status", self.status_msg())

    def send_alert(self, kind: str = "sos") -> str:
        msg = self.alert_msg(kind)
        payload = self.publish("alert", msg)
        now = time.perf_counter()
        self.pending[msg["mid"]] = (now, payload)
        self.fleet.alert_published(self, msg["mid"], now)
        if self.fleet.alert_resend_s:  # None or 0: never re-sent (a flooding device, bench/device_flood_bench.py)
            asyncio.get_running_loop().call_later(self.fleet.alert_resend_s, self._resend, msg["mid"],
                                                  self.fleet.alert_resend_s)
        return msg["mid"]

    def _resend(self, mid: str, delay: float) -> None:
        """The contract: re-send until alert_ack received (not only the PUBACK), with back-off."""
        if mid not in self.pending or self.fleet.stopping:
            return
        if self.connected:
            self.publish("alert", {}, raw=self.pending[mid][1], count=False)
            self.fleet.stats.resent_alerts += 1
        nxt = min(delay * 2, 60.0)
        asyncio.get_running_loop().call_later(nxt, self._resend, mid, nxt)

    def _on_message(self, client, topic, payload, qos, properties):
        fleet = self.fleet
        try:
            cmd = json.loads(payload)
            cid, ctype = cmd["cid"], cmd["type"]
        except (ValueError, KeyError, TypeError):
            fleet.stats.errors["bad_command"] += 1
            return 0
        fleet.stats.commands[ctype] += 1
        if ctype == "alert_ack" and cmd.get("stage") == "received":
            ref = cmd.get("ref")
            sent = self.pending.pop(ref, None)
            if sent is not None:
                self.acked_alerts.add(ref)
                ms = (time.perf_counter() - sent[0]) * 1000
                fleet.stats.alert_ack_ms.append(ms)
                fleet.alert_acked(self, ref, ms)
        elif ctype == "locate" and cid not in self.seen_cids:
            self.publish("loc", self.loc_msg("request"))
        # Ack every command, once acted on; a repeated cid is acked again, not acted on twice.
        self.seen_cids.add(cid)
        self.publish("ack", {"v": 1, "mid": self.next_mid(), "ts": int(time.time()), "cid": cid, "ok": True})
        fleet.stats.acks_sent += 1
        return 0

    def _on_disconnect(self, client, packet, exc=None):
        if self.connected and not self.fleet.stopping:
            self.fleet.stats.errors["disconnected"] += 1


@functools.lru_cache(maxsize=1)
def _client_class():
    """A gmqtt.Client that reports PUBACKs (gmqtt has no public hook for them)."""
    gmqtt, _ = _gmqtt()

    class TwinClient(gmqtt.Client):
        twin: Twin

        def _remove_message_from_queue(self, mid):  # called on PUBACK: gmqtt has no public hook
            super()._remove_message_from_queue(mid)
            twin = self.twin
            fleet = twin.fleet
            fleet.stats.pubacked += 1
            if twin.unacked:
                kind = twin.unacked.pop(0)
                fleet.stats.pubacked_by_kind[kind] += 1
                if kind == "loc":
                    fleet.stats.loc_pubacked_at[int(time.time())] += 1
            fleet.inflight -= 1
            if fleet.inflight < fleet.window and fleet._window_waiter is not None:
                w, fleet._window_waiter = fleet._window_waiter, None
                if not w.done():
                    w.set_result(None)

    return TwinClient


class Fleet:
    """N twins on one event loop, and the load they offer."""

    def __init__(self, credentials: list[tuple[str, str]], host: str = "127.0.0.1", port: int = 1883, *,
                 keepalive: int = 120, connect_concurrency: int = 200, window: int = 2000,
                 alert_resend_s: float | None = 10.0, reconnect_retries: int = 3):
        self.host, self.port, self.keepalive = host, port, keepalive
        self.connect_concurrency = connect_concurrency
        self.window = window                      # max QoS1 publishes waiting for PUBACK, fleet-wide
        self.alert_resend_s = alert_resend_s      # None or 0: alerts are never re-sent by the twin
        self.reconnect_retries = reconnect_retries
        self.boot = int(time.time() * 10) % 10**9
        self.twins = [Twin(self, d, s) for d, s in credentials]
        self.stats = FleetStats()
        self.inflight = 0
        self._window_waiter: asyncio.Future | None = None
        self.stopping = False
        self.record: list[tuple[str, bytes]] | None = None   # every (topic, payload) sent, when a list
        self.connect_s: float | None = None
        self.on_alert_published: Callable[[Twin, str, float], None] | None = None
        self.on_alert_acked: Callable[[Twin, str, float], None] | None = None
        self.gmqtt_log = logging.getLogger("hwsim.fleet.gmqtt")
        self.gmqtt_log.setLevel(logging.ERROR)

    # hooks for benchmarks
    def alert_published(self, twin: Twin, mid: str, t: float) -> None:
        if self.on_alert_published:
            self.on_alert_published(twin, mid, t)

    def alert_acked(self, twin: Twin, mid: str, ms: float) -> None:
        if self.on_alert_acked:
            self.on_alert_acked(twin, mid, ms)

    @property
    def connected(self) -> list[Twin]:
        return [t for t in self.twins if t.connected]

    async def connect_all(self) -> float:
        """Connect every twin, ``connect_concurrency`` at a time. Returns seconds taken."""
        sem = asyncio.Semaphore(self.connect_concurrency)

        async def one(t: Twin):
            async with sem:
                for attempt in range(3):
                    try:
                        await asyncio.wait_for(t.connect(self.host, self.port, self.keepalive), 30)
                        return
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        self.stats.errors[f"connect:{type(exc).__name__}"] += 1
                        await asyncio.sleep(0.5 * (attempt + 1))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in self.twins))
        self.connect_s = time.perf_counter() - t0
        return self.connect_s

    async def wait_window(self) -> None:
        while self.inflight >= self.window:
            self._window_waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._window_waiter), 1.0)
            except asyncio.TimeoutError:
                pass

    async def drain(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def run_load(self, duration: float, *, loc_rate: float = 0.0, heartbeat_s: float = 0.0,
                       max_rate: bool = False, stop: asyncio.Event | None = None,
                       taken: Callable[[], int] | None = None, max_ahead: int = 5000) -> dict:
        """Offer load for ``duration`` s: ``loc_rate`` loc reports/s fleet-wide (or as fast as the
        PUBACK window allows with ``max_rate``), and a status heartbeat from every twin each
        ``heartbeat_s`` (spread evenly). Returns what was offered.

        ``taken()`` (with ``max_rate``): how many of this run's reports the system under
        test has taken so far; the fleet then stays at most ``max_ahead`` reports ahead of
        it, i.e. it offers as fast as the system takes them, not as fast as the broker
        queues them (which only spends the machine's CPU on a backlog)."""
        twins = self.connected
        if not twins:
            return {"loc": 0, "status": 0, "seconds": 0.0}
        loop = asyncio.get_running_loop()
        start = loop.time()
        started_at = time.time()
        end = start + duration
        sent_loc = sent_status = 0
        lag = self.stats.loop_lag_ms
        rr = itertools.cycle(twins)
        hb = itertools.cycle(twins)
        hb_rate = len(twins) / heartbeat_s if heartbeat_s > 0 else 0.0
        tick = 0.01
        while loop.time() < end and not (stop and stop.is_set()):
            elapsed = loop.time() - start
            if max_rate:
                if taken is not None and sent_loc - taken() >= max_ahead:
                    await asyncio.sleep(0.002)
                    continue
                await self.wait_window()
                for _ in range(min(200, max(1, self.window - self.inflight))):
                    next(rr).send_loc()
                    sent_loc += 1
                await asyncio.sleep(0)
            else:
                due = int(elapsed * loc_rate) - sent_loc
                for _ in range(max(0, due)):
                    if self.inflight >= self.window * 4:
                        self.stats.errors["loc_skipped_backpressure"] += 1
                        sent_loc += 1
                        continue
                    next(rr).send_loc()
                    sent_loc += 1
                t_sleep = loop.time()
                await asyncio.sleep(tick)
                # Late ticks are sent in a burst afterwards (the schedule catches up), so
                # the count stays right; the lateness says how loaded this loop is.
                lag.append((loop.time() - t_sleep - tick) * 1000)
            if hb_rate:
                due = int(elapsed * hb_rate) - sent_status
                for _ in range(max(0, due)):
                    t = next(hb)
                    if t.connected:
                        t.send_status()
                    sent_status += 1
        return {"loc": sent_loc, "status": sent_status, "seconds": round(loop.time() - start, 3),
                "started_at": round(started_at, 3), "ended_at": round(time.time(), 3)}

    async def sos(self, count: int, *, interval_s: float = 0.05, twins: list[Twin] | None = None) -> list[str]:
        """``count`` SOS alerts from distinct twins (cycling if fewer), ``interval_s`` apart."""
        pool = twins or self.connected
        mids = []
        for i in range(count):
            mids.append(pool[i % len(pool)].send_alert("sos"))
            if interval_s:
                await asyncio.sleep(interval_s)
        return mids

    async def wait_alerts_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(t.pending for t in self.twins) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not any(t.pending for t in self.twins)

    async def close(self) -> None:
        self.stopping = True
        sem = asyncio.Semaphore(500)

        async def one(t):
            async with sem:
                await t.disconnect()

        await asyncio.gather(*(one(t) for t in self.twins))

    def report(self) -> dict:
        s = self.stats
        ru = resource.getrusage(resource.RUSAGE_SELF)
        n_conn = len(self.connected)
        return {
            "devices": len(self.twins),
            "connected": n_conn,
            "connect_s": round(self.connect_s, 3) if self.connect_s else None,
            "connect_per_s": round(n_conn / self.connect_s, 1) if self.connect_s else None,
            "connect_ms": percentiles(s.connect_ms),
            "sent": dict(s.sent),
            "sent_total": sum(s.sent.values()),
            "pubacked": s.pubacked,
            "pubacked_by_kind": dict(s.pubacked_by_kind),
            "loc_sent_at": {str(k): v for k, v in sorted(s.loc_sent_at.items())},
            "loc_pubacked_at": {str(k): v for k, v in sorted(s.loc_pubacked_at.items())},
            "loop_lag_ms": percentiles(s.loop_lag_ms),
            "alerts": {"sent": s.sent.get("alert", 0), "acked": len(s.alert_ack_ms),
                       "unacked": sum(len(t.pending) for t in self.twins), "resent": s.resent_alerts},
            "alert_ack_ms": percentiles(s.alert_ack_ms),
            "commands": dict(s.commands),
            "acks_sent": s.acks_sent,
            "errors": dict(s.errors),
            "errors_total": sum(s.errors.values()),
            "fleet_rss_mb": round(_rss_mb(os.getpid()), 1),
            "fleet_cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        }


def _rss_mb(pid: int) -> float:
    try:
        import psutil
        return psutil.Process(pid).memory_info().rss / 2**20
    except Exception:  # noqa: BLE001
        return float("nan")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run_fleet(creds, host, port, *, duration, loc_rate, heartbeat_s, sos, max_rate=False,
                    window=2000, connect_concurrency=200, ack_timeout=30.0) -> dict:
    fleet = Fleet(creds, host, port, window=window, connect_concurrency=connect_concurrency)
    await fleet.connect_all()
    t0 = time.perf_counter()
    load = asyncio.create_task(fleet.run_load(duration, loc_rate=loc_rate, heartbeat_s=heartbeat_s,
                                              max_rate=max_rate))
    if sos:
        await asyncio.sleep(min(1.0, duration / 4))
        await fleet.sos(sos, interval_s=min(0.05, duration / max(sos, 1) / 2))
    offered = await load
    await fleet.drain()
    if sos:
        await fleet.wait_alerts_acked(ack_timeout)
    elapsed = time.perf_counter() - t0
    rep = fleet.report()
    rep["offered"] = offered
    rep["elapsed_s"] = round(elapsed, 3)
    t0 = time.perf_counter()
    await fleet.close()
    rep["close_s"] = round(time.perf_counter() - t0, 3)
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pers sim fleet", description="Run N light device twins against a broker.")
    p.add_argument("--devices", type=int, default=100, help="number of twins (first N of the credentials)")
    p.add_argument("--rate", type=float, default=10.0, help="location reports per second, fleet-wide")
    p.add_argument("--max-rate", action="store_true", help="publish loc reports as fast as PUBACKs come back")
    p.add_argument("--heartbeat", type=float, default=60.0, help="status heartbeat period per twin, s (0: off)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    p.add_argument("--sos", type=int, default=0, help="SOS alerts to send during the run (distinct twins)")
    p.add_argument("--broker", default="127.0.0.1:1883", help="host:port")
    p.add_argument("--credentials", type=Path, help="CSV device_id,secret")
    p.add_argument("--provision", action="store_true",
                   help="first create the devices in the cloud DB (PERS_* settings) and write the broker's "
                        "password file; the secrets go to --credentials")
    p.add_argument("--tenant", default="Les Tilleuls care home")
    p.add_argument("--prefix", default="fleet")
    p.add_argument("--window", type=int, default=2000, help="max publishes awaiting PUBACK, fleet-wide")
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--ack-timeout", type=float, default=30.0, help="s to wait for outstanding alert_acks")
    p.add_argument("--out", type=Path, help="write the JSON result here too")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.credentials is None:
        p.error("--credentials is required")
    if args.provision:
        from cloud.settings import Settings
        provision_fleet(Settings(), args.devices, tenant_name=args.tenant, prefix=args.prefix,
                        credentials=args.credentials)
    creds = read_credentials(args.credentials)[: args.devices]
    if len(creds) < args.devices:
        print(f"only {len(creds)} credentials in {args.credentials}", file=sys.stderr)
    limit = raise_nofile()
    if len(creds) + 100 > limit:
        print(f"warning: open-file limit {limit} < devices + 100; some twins will fail to connect",
              file=sys.stderr)
    host, _, port = args.broker.rpartition(":")
    rep = asyncio.run(run_fleet(creds, host or "127.0.0.1", int(port), duration=args.duration,
                                loc_rate=args.rate, heartbeat_s=args.heartbeat, sos=args.sos,
                                max_rate=args.max_rate, window=args.window,
                                connect_concurrency=args.connect_concurrency, ack_timeout=args.ack_timeout))
    # The per-second series are for a benchmark reading --out; on a terminal they would
    # bury the figures under a line per second of load.
    print(json.dumps({k: v for k, v in rep.items() if k not in ("loc_sent_at", "loc_pubacked_at")}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rep, indent=2) + "\n")
    return 0 if rep["errors_total"] == 0 and rep["alerts"]["unacked"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
