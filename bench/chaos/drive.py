"""The chaos run's driver: twins through the fault proxy send the alert stream while
the faults are done to the system at random moments, one twin floods SOS presses, and
the real firmware watches press and lose power. It records what was sent, so that
bench/chaos/verify.py can count what the database lost or duplicated."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from bench.chaos.devices import POISON_ALARMS, factory_reset, firmware_watch, send_alert
from bench.chaos.system import System

FAULTS = ("cloud_kill9", "broker_kill9", "db_unavailable", "coverage_cut", "deliveries", "clock_far_off",
          "power_cut", "factory_reset", "poison", "device_flood")
# Faults the driver schedules on the whole system; the others ride on the alerts themselves.
SYSTEM_FAULTS = FAULTS[:5]


async def drive(system: System, creds, *, alerts: int, spread_s: float, outage_s: float, seed: int,
                watch_creds=(), flood: int = 3000, gateway=(), gateway_alarms: int = 3) -> dict:
    return await ChaosDrive(system, seed, outage_s).run(creds, alerts=alerts, spread_s=spread_s,
                                                         watch_creds=watch_creds, flood=flood, gateway=gateway,
                                                         gateway_alarms=gateway_alarms)


class ChaosDrive:
    """One run's state: the seeded randomness (one generator, drawn in a fixed order, so a
    seed replays the same run), the fault proxy, the fleet, and the record of what was sent."""

    def __init__(self, system: System, seed: int, outage_s: float):
        from bench.chaos.mqtt_fault_proxy import FaultProxy
        self.system, self.seed, self.outage_s = system, seed, outage_s
        self.rng = random.Random(seed)
        # The devices' path is TLS (the broker's TLS listener, through the proxy) when the
        # system has it: the cloud's own clients stay on loopback 1883.
        self.tls = system.tls
        upstream = system.tls_port if self.tls is not None else system.mqtt_port
        self.proxy = FaultProxy(("127.0.0.1", upstream), seed=seed, tls=self.tls).start()
        self.faults: Counter = Counter()
        # (device, mid, generation) -> monotonic first send; the generation counts the
        # device's factory resets, since a wiped device sends its old ids again.
        self.sent: dict[tuple[str, str, int], float] = {}
        self.generation: Counter = Counter()
        self.junk: list[tuple[str, bytes]] = []  # unreadable bytes sent on alert topics
        self.acked_at: list[tuple[str, float, float]] = []  # (device, publish perf_counter, ack ms)

    async def run(self, creds, *, alerts: int, spread_s: float, watch_creds, flood: int, gateway=(),
                  gateway_alarms: int = 3) -> dict:
        from hwsim.fleet import Fleet
        from hwsim.gateway_twin import GatewayStats, GatewayTwin
        self.loop = asyncio.get_running_loop()
        # Off-the-shelf watches on the gateway, straight to its port (their link is TCP, not
        # MQTT: the proxy's faults are not theirs; the cloud's kill -9 and the held database are).
        self.gateway_stats = GatewayStats()
        self.gateway_twins = [GatewayTwin(imei, proto, "127.0.0.1", self.system.gateway_port, self.gateway_stats,
                                          resend_s=3.0) for imei, proto in gateway]
        for t in self.gateway_twins:
            t.start()
        self.gateway_at = {int(alerts * (i + 0.5) / (len(gateway) * gateway_alarms)): i % max(1, len(gateway))
                           for i in range(len(gateway) * gateway_alarms)} if gateway else {}
        ca = self.tls.cafile if self.tls is not None else None
        fleet = Fleet(creds, port=self.proxy.port, alert_resend_s=2.0, reconnect_retries=10**6, ca=ca)
        await fleet.connect_all()
        fleet.on_alert_acked = lambda twin, mid, ms: self.acked_at.append(
            (twin.device_id, time.perf_counter() - ms / 1000, ms))
        schedule = self._fault_schedule(alerts, spread_s)
        # The firmware watches press at random moments too, so the faults find them mid-alarm.
        started = time.monotonic()
        watch_runs = [self.loop.run_in_executor(None, firmware_watch, dev, secret, self.proxy.port,
                                                started + self.rng.uniform(0.1, 0.8) * spread_s, self.seed + i, ca)
                      for i, (dev, secret) in enumerate(watch_creds)]
        faults_task = asyncio.create_task(self._run_faults(schedule))
        # The flood comes first, before the scheduled faults (from 10 % of the spread), so the
        # other devices' ack delay meanwhile measures the flood and nothing else.
        flooder, others = fleet.twins[0], fleet.twins[1:]
        flood_window, flood_sent_s = self._flood(flooder, flood)
        drained = asyncio.create_task(self._flood_drained(flooder, flood_window))
        await self._alert_stream(others, alerts, spread_s)
        await faults_task
        await drained
        acked = await fleet.wait_alerts_acked(timeout=180)
        from hwsim.gateway_twin import wait_answered
        self.gateway_answered = await wait_answered(self.gateway_twins, timeout=180)
        for t in self.gateway_twins:
            await t.close()
        watches = list(await asyncio.gather(*watch_runs))
        return await self._record(fleet, acked, watches, flooder, flood, flood_window, flood_sent_s)

    def _fault_schedule(self, alerts: int, spread_s: float) -> list[tuple[float, str]]:
        """Each fault kind at least once, at random moments within the alert stream."""
        rng = self.rng
        schedule = [(rng.uniform(0.1, 0.9) * spread_s, k) for k in SYSTEM_FAULTS]
        extra = max(0, alerts // 400)
        schedule += [(rng.uniform(0.1, 0.9) * spread_s, rng.choice(SYSTEM_FAULTS)) for _ in range(extra)]
        return sorted(schedule)

    async def _run_faults(self, schedule: list[tuple[float, str]]) -> None:
        start = self.loop.time()
        for at, kind in schedule:
            await asyncio.sleep(max(0.0, start + at - self.loop.time()))
            await self._fault(kind)

    async def _in_thread(self, fn, *args):
        await self.loop.run_in_executor(None, fn, *args)

    async def _fault(self, kind: str) -> None:
        self.faults[kind] += 1
        system = self.system
        if kind == "cloud_kill9":
            system.kill_cloud()
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await self._in_thread(system.start_cloud)
        elif kind == "broker_kill9":
            system.kill_broker()
        elif kind == "db_unavailable":
            await self._in_thread(system.lock_database, self.rng.uniform(2.0, 4.0))
        elif kind == "coverage_cut":
            self.proxy.outage(self.outage_s)
        elif kind == "deliveries":
            await self._bad_deliveries()

    async def _bad_deliveries(self) -> None:
        """PUBLISH packets dropped and duplicated both ways for a few seconds."""
        proxy, loop = self.proxy, self.loop
        while proxy.in_outage():  # no traffic to drop during a coverage cut
            await asyncio.sleep(0.5)
        p = proxy.policy
        p.drop_up, p.dup_up, p.drop_down, p.dup_down = 0.2, 0.2, 0.2, 0.2
        hit = lambda: sum(n for k, n in proxy.stats.items()  # noqa: E731
                          if k.startswith(("dropped_", "duplicated_")))
        before, until = hit(), loop.time() + self.rng.uniform(3, 6)
        # Long enough to hit real traffic, even if an outage overlaps the window.
        while loop.time() < until or (hit() - before < 10 and loop.time() < until + 30):
            await asyncio.sleep(0.2)
        p.drop_up = p.dup_up = p.drop_down = p.dup_down = 0.0

    def _flood(self, flooder, presses: int) -> tuple[list, float]:
        """One twin presses SOS ``presses`` times at once; returns the flood's window
        [start, drained] (drained filled in later) and how long sending took."""
        flood_window: list = [time.perf_counter(), None]
        for _ in range(presses):
            mid = send_alert(flooder, "sos")
            self.sent[(flooder.device_id, mid, 0)] = time.monotonic()
        self.faults["device_flood"] += 1
        return flood_window, time.perf_counter() - flood_window[0]

    @staticmethod
    async def _flood_drained(flooder, flood_window: list) -> None:
        while flooder.pending:
            await asyncio.sleep(0.1)
        flood_window[1] = time.perf_counter()

    async def _alert_stream(self, others, alerts: int, spread_s: float) -> None:
        rng = self.rng
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
                self.faults["clock_far_off"] += 1
            if i in resets and await factory_reset(twin):
                self.generation[twin.device_id] += 1
                self.faults["factory_reset"] += 1
            if i in poisons or rng.random() < 0.02:
                poison = rng.choice(POISON_ALARMS)
                self._junk(twin, i)
            self._send(twin, kind, offset, poison)
            if i in self.gateway_at:
                self.gateway_twins[self.gateway_at[i]].sos(kind)
            await asyncio.sleep(interval)
        if not self.faults["clock_far_off"]:
            self._send(rng.choice(others), "sos", -10 * 86400, None)
            self.faults["clock_far_off"] += 1

    def _junk(self, twin, i: int) -> None:
        """Unreadable bytes on its alert topic (an alarm nobody can read) and a poison report."""
        self.faults["poison"] += 1
        body = f"SOS!!! {twin.device_id} {i}".encode()
        twin.publish("alert", {}, raw=body, count=False)
        self.junk.append((twin.device_id, body))
        twin.publish("loc", {}, raw=b'{"v":1,"mid":"p.1","ts":1e13,"loc":{"lat":NaN,"lon":4,"src":"gnss"}}',
                     count=False)

    def _send(self, twin, kind: str, offset: int, poison: str | None) -> None:
        mid = send_alert(twin, kind, offset, poison)
        self.sent[(twin.device_id, mid, self.generation[twin.device_id])] = time.monotonic()

    async def _record(self, fleet, acked: bool, watches: list[dict], flooder, flood: int, flood_window: list,
                      flood_sent_s: float) -> dict:
        self.faults["power_cut"] += sum(w["power_cuts"] for w in watches)
        # What the firmware put on the wire (it chose the mids) must be stored too.
        for (dev, mid), at in self.proxy.alerts_up.items():
            if dev.startswith("chaos-fw-"):
                self.sent.setdefault((dev, mid, 0), at)
        # The other devices' PUBLISH -> alert_ack while the flood was being drained.
        during = [ms for dev, t, ms in self.acked_at
                  if dev != flooder.device_id and flood_window[0] <= t <= (flood_window[1] or t)]
        report = fleet.report()
        unacked = {t.device_id: sorted(t.pending) for t in fleet.twins if t.pending}
        unacked.update({w["device"]: f"outbox holds {w['outbox_left']}" for w in watches if not w["acked"]})
        await fleet.close()
        self.proxy.stop()
        from hwsim.fleet import percentiles
        gw = self.gateway_stats
        return {"gateway": {"twins": len(self.gateway_twins), "alarms_sent": dict(gw.alarms_sent),
                            "answered": dict(gw.replied), "all_answered": self.gateway_answered,
                            "reply_ms": percentiles(gw.reply_ms), "resent": gw.resent,
                            "stray_replies": gw.stray_replies, "reconnects": gw.reconnects},
                "sent": self.sent, "faults": dict(self.faults),
                "all_acked": acked and all(w["acked"] for w in watches),
                "unacked": unacked, "fleet": report, "watches": watches, "proxy": dict(self.proxy.stats),
                "junk": self.junk,
                "flood": {"device": flooder.device_id, "presses": flood, "sent_in_s": round(flood_sent_s, 3),
                          "drained_in_s": round((flood_window[1] or flood_window[0]) - flood_window[0], 3),
                          "other_alerts_acked_meanwhile": len(during),
                          "other_worst_ack_ms": round(max(during), 1) if during else None}}
