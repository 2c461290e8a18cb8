"""The MQTT edge: paho-mqtt in, domain Ingestor, commands out.

Delivery guarantee: the cloud's session is persistent (clean_session=False) and
acks are manual, so the broker's PUBACK for a message is sent only after the
domain has committed it. If this process dies before that, the broker
redelivers the message to the next cloud process.

Throughput and priority (docs/scaling.md, "The ingest path"):
- Two sessions (``alert_username`` given, the default in a service): alerts and
  command acks are subscribed on their own connection, so in the broker they
  never queue behind the bulk session's backlog (Mosquitto keeps one FIFO per
  session: an SOS behind 100,000 location reports of a reconnect storm would
  wait for all of them). Commands (``alert_ack`` first of all) leave on it too.
- Two lanes. ``alert`` and ``ack`` go to the urgent lane, which the worker always
  empties first, one message and one transaction each: an alert never waits behind
  location reports, only behind the batch being committed when it arrived.
- ``loc``/``status``/``presence`` go to the bulk lane, which the worker drains up to
  ``batch_max`` messages at a time into ONE transaction (``Ingestor.handle_batch``),
  then PUBACKs all of them. Batches form by themselves under load (whatever queued
  while the previous batch was committed); at low load a batch is one message.
- Backpressure: the bulk lane is bounded (``bulk_max``). When it is full, paho's
  network thread waits in ``on_message`` (up to ``backpressure_wait_s`` per message),
  so it stops reading the socket and the broker holds the rest in our persistent
  session. The wait is bounded so the network thread still gets round its loop (it
  writes our PUBACKs and keepalive PINGREQs) even when the store is down; only then
  can the lane overflow, by one message per wait.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque

import paho.mqtt.client as mqtt
from sqlalchemy.exc import DBAPIError

from cloud import metrics, protocol

log = logging.getLogger("pers.mqtt")

UP_SUBSCRIPTIONS = [f"{protocol.ROOT}/+/{kind}" for kind in protocol.UP_KINDS]
# Alerts (and the watch's command acks, which move cases on) never wait behind a
# backlog of location reports, status heartbeats or presence.
URGENT_KINDS = frozenset({"alert", "ack"})

class Inbox:
    """An unbounded urgent lane and a bounded bulk lane, with one lock."""

    def __init__(self, bulk_max: int):
        self.bulk_max = bulk_max
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self.urgent: deque = deque()
        self.bulk: deque = deque()
        self.closed = False

    def put_urgent(self, msg) -> None:
        with self._lock:
            self.urgent.append(msg)
            self._work.notify()

    def put_bulk(self, msg, wait_s: float) -> bool:
        """Append, waiting up to ``wait_s`` for room. False if it had to overflow."""
        with self._lock:
            ok = True
            if len(self.bulk) >= self.bulk_max and not self.closed:
                ok = self._room.wait_for(lambda: len(self.bulk) < self.bulk_max or self.closed, wait_s)
                metrics.BACKPRESSURE.labels("waited" if ok else "overflowed").inc()
            self.bulk.append(msg)
            self._work.notify()
            return ok

    def take(self, batch_max: int, timeout: float = 0.5) -> tuple[list, list] | None:
        """(urgent messages, []) if any are waiting, else ([], up to batch_max bulk
        messages); ([], []) on timeout; None once closed."""
        with self._lock:
            self._work.wait_for(lambda: self.urgent or self.bulk or self.closed, timeout)
            if self.closed:
                return None
            if self.urgent:
                out = list(self.urgent)
                self.urgent.clear()
                return out, []
            n = min(batch_max, len(self.bulk))
            out = [self.bulk.popleft() for _ in range(n)]
            if n:
                self._room.notify_all()
            return [], out

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._work.notify_all()
            self._room.notify_all()

    def depth(self) -> tuple[int, int]:
        return len(self.urgent), len(self.bulk)


class _BurstReadClient(mqtt.Client):
    """paho reads one packet per turn of its loop (a select(), then the write and
    keepalive checks), whatever ``max_packets`` says. Under a flood of small QoS 1
    messages that turn costs more than the packet: read up to ``burst`` packets per
    turn while the socket has them and ``more()`` allows (the bridge stops the burst
    when its bulk lane is full, so the loop still writes our PUBACKs and keepalives)."""

    def __init__(self, *args, burst: int = 64, more=lambda: True, **kwargs):
        super().__init__(*args, **kwargs)
        # _packet_read and _loop_rc_handle are paho internals (1.6 to 2.2): without them, no burst.
        internals = all(hasattr(mqtt.Client, a) for a in ("_packet_read", "_loop_rc_handle"))
        self._burst, self._more = (burst if internals else 1), more

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        for _ in range(self._burst - 1):
            if rc != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is None or not self._more():
                break
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return rc


class MqttBridge:
    def __init__(self, ingestor, *, host: str, port: int, username: str, password: str | None,
                 client_id: str | None = None, shared_group: str | None = None, keepalive: int = 30,
                 batch_max: int = 500, bulk_max: int = 5000, backpressure_wait_s: float = 2.0,
                 alert_username: str | None = None):
        self.ingestor = ingestor
        self.host, self.port, self.keepalive = host, port, keepalive
        self.shared_group = shared_group
        self.batch_max, self.backpressure_wait_s = batch_max, backpressure_wait_s
        self._inbox = Inbox(bulk_max)
        self.client = _BurstReadClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                       clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True,
                                       more=lambda: self._inbox.depth()[1] < self._inbox.bulk_max)
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.alert_client: mqtt.Client | None = None
        if alert_username:
            # A plain client: its traffic is a few messages, read as they come.
            self.alert_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=alert_username,
                                            clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
            self.alert_client.username_pw_set(alert_username, password)
            self.alert_client.reconnect_delay_set(min_delay=1, max_delay=10)
            self.alert_client.max_queued_messages_set(0)
            self.alert_client.on_connect = self._on_connect
            self.alert_client.on_disconnect = self._on_disconnect
            self.alert_client.on_message = self._on_message
        self._up: dict[mqtt.Client, bool] = {c: False for c in self._clients()}
        metrics.INBOX_DEPTH.labels("urgent").set_function(lambda: self._inbox.depth()[0])
        metrics.INBOX_DEPTH.labels("bulk").set_function(lambda: self._inbox.depth()[1])
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self.connected = threading.Event()

    # --- lifecycle -----------------------------------------------------------------
    def _clients(self) -> list[mqtt.Client]:
        return [self.client] + ([self.alert_client] if self.alert_client else [])

    def start(self) -> None:
        self._worker.start()
        for c in self._clients():
            c.connect_async(self.host, self.port, keepalive=self.keepalive)
            c.loop_start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.close()
        for c in self._clients():
            c.disconnect()
            c.loop_stop()
        self._worker.join(timeout=5)

    def _subscriptions(self, client: mqtt.Client) -> list[str]:
        if self.alert_client is None:
            return UP_SUBSCRIPTIONS
        urgent = client is self.alert_client
        return [t for t in UP_SUBSCRIPTIONS if (t.rsplit("/", 1)[-1] in URGENT_KINDS) == urgent]

    # --- paho callbacks (network thread) -------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the cloud's connection", extra={"reason": str(reason_code)})
            return
        prefix = f"$share/{self.shared_group}/" if self.shared_group else ""
        client.subscribe([(prefix + t, 1) for t in self._subscriptions(client)])
        self._up[client] = True
        if all(self._up.values()):
            self.connected.set()
        log.info("connected to broker", extra={"host": self.host, "port": self.port,
                                               "session": "alerts" if client is self.alert_client else "bulk",
                                               "session_present": flags.session_present})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._up[client] = False
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker, reconnecting", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage):
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind in URGENT_KINDS:
            self._inbox.put_urgent((client, msg))  # acked on the session it came on
        elif not self._inbox.put_bulk(msg, self.backpressure_wait_s) and not self._stop.is_set():
            log.warning("ingest inbox full for %.1f s: the store is not keeping up", self.backpressure_wait_s,
                        extra={"depth": self._inbox.depth()[1]})

    # --- ingest worker ---------------------------------------------------------------
    def _work(self) -> None:
        while True:
            taken = self._inbox.take(self.batch_max)
            if taken is None or self._stop.is_set():
                return
            urgent, bulk = taken
            for client, msg in urgent:
                if self._handle_until_stored(msg):
                    self._ack(msg, client)
            if bulk:
                metrics.BATCH_SIZE.observe(len(bulk))
                if self._batch_until_stored(bulk):
                    for msg in bulk:
                        self._ack(msg)

    def _ack(self, msg: mqtt.MQTTMessage, client: mqtt.Client | None = None) -> None:
        if msg.qos > 0:
            (client or self.client).ack(msg.mid, msg.qos)

    def _handle_until_stored(self, msg: mqtt.MQTTMessage) -> bool:
        """While the database is unavailable, keep trying the same message and do
        not PUBACK it: if we die meanwhile, the broker redelivers it. False when
        stopped before it was stored (then it must not be acked)."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                self.ingestor.handle(msg.topic, msg.payload)
                return True
            except DBAPIError:
                log.exception("store unavailable; retrying", extra={"topic": msg.topic, "retry_in_s": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                # A bug, not bad input (bad input is rejected inside handle()):
                # count it and move on rather than block every watch behind it.
                # An alert is not lost by this: the watch re-sends until acked.
                metrics.REJECTED.labels("internal_error").inc()
                log.exception("ingest failed", extra={"topic": msg.topic, "payload": msg.payload[:512]})
                return True
        return False

    def _batch_until_stored(self, msgs: list[mqtt.MQTTMessage]) -> bool:
        """The batch form of _handle_until_stored: all of it or none of it is committed.
        A failure that is not the store being unavailable (a bug tripped by one message)
        must not hold up the others: they are then handled one by one."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                self.ingestor.handle_batch([(m.topic, m.payload) for m in msgs])
                return True
            except DBAPIError:
                log.exception("store unavailable; retrying the batch",
                              extra={"size": len(msgs), "retry_in_s": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                log.exception("batch failed; handling its messages one by one", extra={"size": len(msgs)})
                stored = [self._handle_until_stored(m) for m in msgs]
                return all(stored)
        return False

    # --- CommandSender port ------------------------------------------------------------
    def send_command(self, device_id: str, command: dict) -> None:
        payload = json.dumps(command, separators=(",", ":")).encode()
        # The alert session's socket is not busy with a flood of PUBACKs.
        (self.alert_client or self.client).publish(protocol.down_topic(device_id, "cmd"), payload, qos=1)

    def publish_config(self, device_id: str, config: dict) -> None:
        payload = json.dumps(config, separators=(",", ":")).encode()
        self.client.publish(protocol.down_topic(device_id, "config"), payload, qos=1, retain=True)
