"""Fleet mode: thousands of light device twins in one asyncio process, for load.

A twin (``hwsim/twin.py``) is not the firmware: it is the watch's wire behaviour
only, cheap enough that 10,000 of them fit in one process. A :class:`Fleet` runs N
of them on one event loop and offers load: ``status`` heartbeats and ``loc``
reports at a configured fleet-wide rate, SOS alerts on demand.

The MQTT client is gmqtt (asyncio; the fastest Python client measured in
shared/reference/mqtt-broker-measurements.md). One event loop, no threads.

CLI (the lead exposes it as ``pers sim fleet``; ``hwsim/fleet_run.py``)::

    python -m hwsim.fleet --devices 1000 --rate 200 --duration 30 --sos 20 \
        --broker 127.0.0.1:1883 --credentials fleet.csv --out result.json

``--credentials`` is a CSV ``device_id,secret``, written by ``--provision`` or by
:func:`hwsim.provision.provision_fleet`, which create the devices through the
cloud's own door (``pers device add --count N --json``).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import resource
import ssl
import sys
import time
from collections.abc import Callable

# Re-exported: benchmarks and tests import the fleet's whole toolkit from here.
from hwsim.provision import provision_fleet, read_credentials, write_credentials  # noqa: F401
from hwsim.twin import FW, ROOT, FleetStats, Twin  # noqa: F401

log = logging.getLogger("hwsim.fleet")


def percentiles(values: list[float]) -> dict:
    """p50/p90/p99/max in the unit given (None when empty)."""
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(round(p * (len(v) - 1))))], 3)

    return {"n": len(v), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(v[-1], 3)}



class Fleet:
    """N twins on one event loop, and the load they offer."""

    def __init__(self, credentials: list[tuple[str, str]], host: str = "127.0.0.1", port: int = 1883, *,
                 keepalive: int = 120, connect_concurrency: int = 200, window: int = 2000,
                 alert_resend_s: float | None = 10.0, reconnect_retries: int = 3, ca: str | os.PathLike | None = None):
        self.host, self.port, self.keepalive = host, port, keepalive
        # ca: the twins speak TLS to the broker's TLS listener, verifying it against this
        # CA, as a provisioned watch does (its modem's TLS: hwsim/modem_ssl.py). A large
        # fleet in a benchmark may go without (a handshake each), the tests' go with it.
        self.ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else False
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
            except TimeoutError:
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
                sent_loc += self._send_locs(rr, min(200, max(1, self.window - self.inflight)))
                await asyncio.sleep(0)
            else:
                sent_loc += self._send_paced_locs(rr, int(elapsed * loc_rate) - sent_loc)
                t_sleep = loop.time()
                await asyncio.sleep(tick)
                # Late ticks are sent in a burst afterwards (the schedule catches up), so
                # the count stays right; the lateness says how loaded this loop is.
                lag.append((loop.time() - t_sleep - tick) * 1000)
            if hb_rate:
                sent_status += self._send_heartbeats(hb, int(elapsed * hb_rate) - sent_status)
        return {"loc": sent_loc, "status": sent_status, "seconds": round(loop.time() - start, 3),
                "started_at": round(started_at, 3), "ended_at": round(time.time(), 3)}

    @staticmethod
    def _send_locs(rr, n: int) -> int:
        for _ in range(n):
            next(rr).send_loc()
        return n

    def _send_paced_locs(self, rr, due: int) -> int:
        """The reports due on the schedule. Past 4 windows of unacked publishes one is
        skipped, not queued, and still counted as sent so the schedule does not catch
        up with a burst; the skips are reported as errors."""
        for _ in range(max(0, due)):
            if self.inflight >= self.window * 4:
                self.stats.errors["loc_skipped_backpressure"] += 1
                continue
            next(rr).send_loc()
        return max(0, due)

    @staticmethod
    def _send_heartbeats(hb, due: int) -> int:
        for _ in range(max(0, due)):
            t = next(hb)
            if t.connected:
                t.send_status()
        return max(0, due)

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



def main(argv: list[str] | None = None) -> int:
    from hwsim.fleet_run import main as run_main
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main())
