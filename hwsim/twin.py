"""A light device twin: the watch's wire behaviour only, no firmware.

It speaks exactly the contract of PROTOCOL.md / ``cloud/protocol.py``:

- client id = username = device id, its own secret, ``clean_session=False``;
- last will ``pers/v1/<id>/presence`` ``{"online":false}`` QoS 1 retained, and
  ``{"online":true}`` retained on connect, then a ``status``;
- ``status`` heartbeats and ``loc`` reports when its fleet says so;
- SOS ``alert``s re-sent (same ``mid``, back-off) until the cloud's ``alert_ack``
  ``received`` arrives; the PUBLISH -> ``alert_ack`` latency is recorded;
- it subscribes to its ``cmd`` topic and acks every command on ``ack``.

Messages are plain dicts matching ``cloud.protocol`` (building pydantic models for
10k loc/s would cost the load generator more than the cloud);
``tests/system/test_fleet.py`` validates every kind with ``cloud.protocol.parse_up``.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwsim.fleet import Fleet

ROOT = "pers/v1"
FW = "fleet-0.1"


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

    def __init__(self, fleet: Fleet, device_id: str, secret: str):
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
        await client.connect(host, port, ssl=fleet.ssl, keepalive=keepalive, version=MQTTv311)
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
