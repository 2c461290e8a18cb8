"""The MQTT edge: paho-mqtt in, domain Ingestor, commands out.

Delivery guarantee: the cloud's session is persistent (clean_session=False) and
acks are manual, so the broker's PUBACK for a message is sent only after the
domain has committed it. If this process dies before that, the broker
redelivers the message to the next cloud process.
"""
from __future__ import annotations

import itertools
import json
import logging
import queue
import threading

import paho.mqtt.client as mqtt
from sqlalchemy.exc import DBAPIError

from cloud import metrics, protocol

log = logging.getLogger("pers.mqtt")

UP_SUBSCRIPTIONS = [f"{protocol.ROOT}/+/{kind}" for kind in protocol.UP_KINDS]
# Alerts never wait behind a backlog of location reports.
PRIORITY = {"alert": 0, "ack": 1, "presence": 2, "status": 3, "loc": 4}


class MqttBridge:
    def __init__(self, ingestor, *, host: str, port: int, username: str, password: str | None,
                 client_id: str | None = None, shared_group: str | None = None, keepalive: int = 30):
        self.ingestor = ingestor
        self.host, self.port, self.keepalive = host, port, keepalive
        self.shared_group = shared_group
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                  clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._inbox: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self.connected = threading.Event()

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put((99, next(self._seq), None))
        self.client.disconnect()
        self.client.loop_stop()
        self._worker.join(timeout=5)

    # --- paho callbacks (network thread) -------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the cloud's connection", extra={"reason": str(reason_code)})
            return
        prefix = f"$share/{self.shared_group}/" if self.shared_group else ""
        client.subscribe([(prefix + t, 1) for t in UP_SUBSCRIPTIONS])
        self.connected.set()
        log.info("connected to broker", extra={"host": self.host, "port": self.port,
                                               "session_present": flags.session_present})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker, reconnecting", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage):
        kind = msg.topic.rsplit("/", 1)[-1]
        self._inbox.put((PRIORITY.get(kind, 5), next(self._seq), msg))

    # --- ingest worker ---------------------------------------------------------------
    def _work(self) -> None:
        while True:
            _, _, msg = self._inbox.get()
            if msg is None or self._stop.is_set():
                return
            self._handle_until_stored(msg)
            if msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)

    def _handle_until_stored(self, msg: mqtt.MQTTMessage) -> None:
        """While the database is unavailable, keep trying the same message and do
        not PUBACK it: if we die meanwhile, the broker redelivers it."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                self.ingestor.handle(msg.topic, msg.payload)
                return
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
                return

    # --- CommandSender port ------------------------------------------------------------
    def send_command(self, device_id: str, command: dict) -> None:
        payload = json.dumps(command, separators=(",", ":")).encode()
        self.client.publish(protocol.down_topic(device_id, "cmd"), payload, qos=1)

    def publish_config(self, device_id: str, config: dict) -> None:
        payload = json.dumps(config, separators=(",", ":")).encode()
        self.client.publish(protocol.down_topic(device_id, "config"), payload, qos=1, retain=True)
