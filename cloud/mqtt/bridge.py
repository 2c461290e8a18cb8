"""The MQTT edge: two broker sessions in, domain Ingestor, commands out.

Delivery guarantee: the cloud's sessions are persistent (clean session 0) and
acks are manual, so the broker's PUBACK for a message is sent only after the
domain has committed it. If this process dies before that, the broker
redelivers the message to the next cloud process.

Throughput and priority (docs/scaling.md, "The ingest path"):
- Two sessions. Alerts and command acks are subscribed on the alert session
  ("<username>-alerts", paho), so in the broker they never queue behind the bulk
  session's backlog (Mosquitto keeps one FIFO per session: an SOS behind 100,000
  location reports of a reconnect storm would wait for all of them). Commands
  (``alert_ack`` first of all) and config leave on it too. The bulk session
  (``loc``/``status``/``presence``) is read by ``receiver.BulkReceiver``, which
  cuts whole socket reads into packets (docs/decisions/ingest-receiver.md).
- Two lanes. ``alert`` and ``ack`` go to the urgent lane, which the worker always
  empties first, one message and one transaction each: an alert never waits behind
  location reports, only behind the batch being committed when it arrived.
- The urgent lane is fair: one queue per device, served round-robin, one message
  per device per turn, the devices with the fewest messages waiting first. A watch
  that sends 3,000 presses as fast as it can (a stuck button, a hostile device)
  only delays another wearer's SOS by the transaction in progress; its own presses
  merge into its one case (``Ingestor``'s press budget).
- Nothing blocks the lanes: every message goes through ``Ingestor.accept``, which
  stores, rejects or quarantines it. Only a transient store failure (the database
  is down) is retried, with back-off, without a PUBACK. The age of the oldest
  message waiting for its commit is exported (``pers_ingest_oldest_waiting_seconds``)
  and ``/healthz`` fails when it passes ``PERS_INGEST_STUCK_AFTER_S``.
- The bulk lane is drained up to ``batch_max`` messages at a time into ONE
  transaction (``Ingestor.handle_batch``), then all of them are PUBACKed in one
  write. Batches form by themselves under load (whatever queued while the previous
  batch was committed); at low load a batch short of ``batch_max`` waits up to
  ``linger_s`` for more, so a trickle of reports is one transaction per short window
  rather than one per message. An alert ends that wait.
- Backpressure: the bulk lane is bounded (``bulk_max``, overshot by at most one
  socket read). When it is full the receiver stops reading, so the broker holds the
  rest in our persistent session; while it waits it still sends its keepalive.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from cloud import metrics, protocol
from cloud.mqtt.receiver import BulkReceiver, Delivery
from cloud.settings import alert_username as default_alert_username
from cloud.store.errors import is_transient

if TYPE_CHECKING:
    from cloud.domain.ingest import Ingestor

log = logging.getLogger("pers.mqtt")

UP_SUBSCRIPTIONS = [f"{protocol.ROOT}/+/{kind}" for kind in protocol.UP_KINDS]
# Alerts (and the watch's command acks, which move cases on) never wait behind a
# backlog of location reports, status heartbeats or presence.
URGENT_KINDS = frozenset({"alert", "ack"})

class LocalMessage:
    """An up message from another ingress of this process (the watch gateway), taken by
    this bridge's worker like a broker's: the same lanes, the same single writer, the
    urgent lane first. ``future`` gets the ingest's ``Outcome`` once it is stored (None
    if it could not be, or the bridge stopped first)."""
    __slots__ = ("topic", "payload", "qos", "mid", "future")

    def __init__(self, topic: str, payload: bytes):
        self.topic, self.payload, self.qos, self.mid = topic, payload, 0, 0
        self.future: Future = Future()


def _resolve(msg, outcome) -> None:
    if isinstance(msg, LocalMessage) and not msg.future.done():
        msg.future.set_result(outcome)


def _device_of(topic: str) -> str:
    parts = topic.split("/", 3)
    return parts[2] if len(parts) > 2 else ""


class Inbox:
    """A fair urgent lane (one FIFO per device, served round-robin) and a bounded bulk
    lane, with one lock. Every message carries the monotonic time it arrived, so the
    age of the oldest one not yet committed is known (``oldest_wait``)."""

    def __init__(self, bulk_max: int, clock=time.monotonic):
        self.bulk_max = bulk_max
        self._clock = clock
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self.urgent: OrderedDict[str, deque] = OrderedDict()  # device -> [(arrived, msg)], in turn order
        self._urgent_n = 0
        self.bulk: deque = deque()
        self._bulk_arrivals: deque = deque()  # [arrived, messages left] per put_bulk, oldest first
        self._taken_at: float | None = None    # arrival of the oldest message the worker holds
        self.closed = False

    def put_urgent(self, msg) -> None:
        with self._lock:
            device = _device_of(msg.topic)
            q = self.urgent.get(device)
            if q is None:
                q = self.urgent[device] = deque()  # a device with nothing queued joins the end of the turn
            q.append((self._clock(), msg))
            self._urgent_n += 1
            self._work.notify()

    def put_bulk(self, msgs: list, wait_s: float) -> bool:
        """Append all of ``msgs`` once the lane has room, waiting up to ``wait_s`` for it.
        False (nothing appended) if there was still no room; True once closed."""
        with self._lock:
            if len(self.bulk) >= self.bulk_max and not self.closed:
                ok = self._room.wait_for(lambda: len(self.bulk) < self.bulk_max or self.closed, wait_s)
                metrics.BACKPRESSURE.labels("waited" if ok else "still_full").inc()
                if not ok:
                    return False
            if not self.closed and msgs:
                self.bulk.extend(msgs)
                self._bulk_arrivals.append([self._clock(), len(msgs)])
                self._work.notify()
            return True

    def _take_urgent_turn(self) -> tuple[list, float]:
        """One message from each device that has any. Within the turn, devices with the
        fewest messages waiting go first (a wearer's one SOS before a flood's next
        press), then by turn order; a device with more goes to the back of the next
        turn. Under the lock."""
        turn = []
        for _ in range(len(self.urgent)):
            device, q = self.urgent.popitem(last=False)
            turn.append((len(q), len(turn), q.popleft()))
            if q:
                self.urgent[device] = q
        turn.sort(key=lambda t: t[:2])
        self._urgent_n -= len(turn)
        return [msg for _, _, (_, msg) in turn], min(arrived for _, _, (arrived, _) in turn)

    def _take_bulk(self, n: int) -> tuple[list, float | None]:
        out = [self.bulk.popleft() for _ in range(n)]
        oldest = self._bulk_arrivals[0][0] if self._bulk_arrivals else None
        left = n
        while left and self._bulk_arrivals:
            seg = self._bulk_arrivals[0]
            used = min(left, seg[1])
            seg[1] -= used
            left -= used
            if seg[1] == 0:
                self._bulk_arrivals.popleft()
        return out, oldest

    def take(self, batch_max: int, timeout: float = 0.5, linger: float = 0.0) -> tuple[list, list] | None:
        """(urgent messages, []) if any are waiting (one per device: a fair turn), else
        ([], up to batch_max bulk messages); ([], []) on timeout; None once closed. With
        ``linger``, a bulk batch short of batch_max waits up to that long for more (one
        transaction per short window rather than per message at low load); an urgent
        message ends the wait. What is taken counts as waiting until ``done()``."""
        with self._lock:
            self._taken_at = None
            self._work.wait_for(lambda: self._urgent_n or self.bulk or self.closed, timeout)
            if linger and self.bulk and not self._urgent_n and len(self.bulk) < batch_max:
                self._work.wait_for(lambda: self._urgent_n or len(self.bulk) >= batch_max or self.closed, linger)
            if self.closed:
                return None
            if self._urgent_n:
                out, self._taken_at = self._take_urgent_turn()
                return out, []
            n = min(batch_max, len(self.bulk))
            out, self._taken_at = self._take_bulk(n)
            if n:
                self._room.notify_all()
            return [], out

    def done(self) -> None:
        """The worker has committed (or quarantined, or given up on) what it took."""
        with self._lock:
            self._taken_at = None

    def oldest_wait(self) -> float:
        """Seconds since the oldest message not yet committed arrived (0: none)."""
        with self._lock:
            arrivals = [t for t in (self._taken_at,
                                    self._bulk_arrivals[0][0] if self._bulk_arrivals else None) if t is not None]
            arrivals += [q[0][0] for q in self.urgent.values() if q]
            return max(0.0, self._clock() - min(arrivals)) if arrivals else 0.0

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._work.notify_all()
            self._room.notify_all()

    def depth(self) -> tuple[int, int]:
        return self._urgent_n, len(self.bulk)


class MqttBridge:
    def __init__(self, ingestor: Ingestor | None = None, *, host: str, port: int, username: str,
                 password: str | None, client_id: str | None = None, shared_group: str | None = None,
                 keepalive: int = 30, batch_max: int = 500, bulk_max: int = 5000, backpressure_wait_s: float = 2.0,
                 alert_username: str | None = None, linger_s: float = 0.0, alerts_apart: bool = True):
        # Who stores what arrives (``accept``/``handle_batch``): given here, or through
        # attach() when the ingestor is built after the bridge because it publishes its
        # acks through the bridge (cloud/wiring.py).
        self.ingestor = ingestor
        # False only to measure what the alert session buys (bench/sos_flood_bench.py):
        # alerts and acks then come on the bulk session, behind its backlog in the broker.
        self.alerts_apart = alerts_apart
        self.linger_s = linger_s
        self.host, self.port, self.keepalive = host, port, keepalive
        self.batch_max, self.backpressure_wait_s = batch_max, backpressure_wait_s
        self._inbox = Inbox(bulk_max)
        prefix = f"$share/{shared_group}/" if shared_group else ""
        urgent = [prefix + t for t in UP_SUBSCRIPTIONS if t.rsplit("/", 1)[-1] in URGENT_KINDS]
        bulk = [prefix + t for t in UP_SUBSCRIPTIONS if t.rsplit("/", 1)[-1] not in URGENT_KINDS]
        self._alert_topics = urgent if alerts_apart else []
        self.receiver = BulkReceiver(
            host=host, port=port, client_id=client_id or username, username=username, password=password,
            topics=bulk if alerts_apart else urgent + bulk,
            deliver=self._deliver_bulk, on_state=lambda up: self._session_state("bulk", up), keepalive=keepalive)
        alert_username = alert_username or default_alert_username(username)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=alert_username,
                                  clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        self.client.username_pw_set(alert_username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_queued_messages_set(0)
        # Commands leave on this session, alert_ack first of all: a flood's 3,000 acks to
        # one watch must not hold another watch's ack in paho's queue (default window: 20).
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._up = {"bulk": False, "alerts": False}
        metrics.INBOX_DEPTH.labels("urgent").set_function(lambda: self._inbox.depth()[0])
        metrics.INBOX_DEPTH.labels("bulk").set_function(lambda: self._inbox.depth()[1])
        metrics.OLDEST_WAITING.set_function(self._inbox.oldest_wait)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="ingest-worker", daemon=True)
        self.connected = threading.Event()

    def attach(self, ingestor: Ingestor) -> None:
        """Give the bridge its ingestor, once, before start()."""
        if self.ingestor is not None:
            raise RuntimeError("the bridge already has an ingestor")
        self.ingestor = ingestor

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self.ingestor is None:
            # Nobody to store them: messages would be taken from the broker and lost.
            raise RuntimeError("the bridge was started without an ingestor (attach one first)")
        self._worker.start()
        self.receiver.start()
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.close()
        for q in list(self._inbox.urgent.values()):
            for _, msg in q:
                _resolve(msg, None)
        for msg in list(self._inbox.bulk):
            _resolve(msg, None)
        self.receiver.stop()
        self.client.disconnect()
        self.client.loop_stop()
        self._worker.join(timeout=5)

    def submit(self, topic: str, payload: bytes) -> Future:
        """Hand one up message of another ingress (the watch gateway) to this bridge's
        worker; the future gets its Outcome once stored. May wait for room in the bulk
        lane (backpressure): call it from a worker thread, not an event loop."""
        msg = LocalMessage(topic, payload)
        if topic.rsplit("/", 1)[-1] in URGENT_KINDS:
            self._inbox.put_urgent(msg)
        else:
            while not self._inbox.put_bulk([msg], self.backpressure_wait_s):
                if self._stop.is_set():
                    break
        if self._stop.is_set():
            _resolve(msg, None)
        return msg.future

    def oldest_waiting_s(self) -> float:
        """Age of the oldest message received and not yet committed (0: none): a stuck
        ingest shows here long before anyone notices the missing alarms."""
        return self._inbox.oldest_wait()

    def _session_state(self, session: str, up: bool) -> None:
        self._up[session] = up
        if all(self._up.values()):
            self.connected.set()
        else:
            self.connected.clear()

    # --- the bulk session (receiver thread) ---------------------------------------
    def _deliver_bulk(self, deliveries: list[Delivery], receiver: BulkReceiver) -> None:
        if not self.alerts_apart:
            bulk = []
            for d in deliveries:
                if d.topic.rsplit("/", 1)[-1] in URGENT_KINDS:
                    self._inbox.put_urgent(d)
                else:
                    bulk.append(d)
            deliveries = bulk
        while not self._inbox.put_bulk(deliveries, self.backpressure_wait_s):
            if self._stop.is_set():
                return
            log.warning("ingest inbox full for %.1f s: the store is not keeping up", self.backpressure_wait_s,
                        extra={"depth": self._inbox.depth()[1]})
            receiver.keepalive_due()

    # --- the alert session (paho's network thread) ---------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the cloud's alert session", extra={"reason": str(reason_code)})
            return
        if self._alert_topics:
            client.subscribe([(t, 1) for t in self._alert_topics])
        self._session_state("alerts", True)
        log.info("connected to broker", extra={"host": self.host, "port": self.port, "session": "alerts",
                                               "session_present": flags.session_present})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._session_state("alerts", False)
        if not self._stop.is_set():
            log.warning("disconnected from broker, reconnecting", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage):
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind in URGENT_KINDS:
            self._inbox.put_urgent(msg)
        else:  # only if the broker has an old subscription of ours: store it all the same
            self._inbox.put_bulk([msg], self.backpressure_wait_s)

    # --- ingest worker ---------------------------------------------------------------
    def _work(self) -> None:
        while True:
            taken = self._inbox.take(self.batch_max, linger=self.linger_s)
            if taken is None or self._stop.is_set():
                return
            urgent, bulk = taken
            for msg in urgent:
                if self._handle_until_stored(msg):
                    self._ack(msg)
            if bulk:
                metrics.BATCH_SIZE.observe(len(bulk))
                if self._batch_until_stored(bulk):
                    received = [m for m in bulk if isinstance(m, Delivery)]
                    self.receiver.ack(received)
                    for msg in bulk:
                        if not isinstance(msg, Delivery):
                            self._ack(msg)
            self._inbox.done()

    def _ack(self, msg) -> None:
        if isinstance(msg, Delivery):
            self.receiver.ack([msg])
        elif msg.qos > 0:
            self.client.ack(msg.mid, msg.qos)

    def _handle_until_stored(self, msg: mqtt.MQTTMessage) -> bool:
        """Store, reject or quarantine the message (``Ingestor.accept``). While the store
        is unavailable (a transient failure), keep trying the same message and do not
        PUBACK it: if we die meanwhile, the broker redelivers it. False when stopped
        before it was stored (then it must not be acked)."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                _resolve(msg, self.ingestor.accept(msg.topic, msg.payload))
                return True
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    # A bug in the quarantine path itself: retrying would stall every watch
                    # behind this message. Last resort: counted, logged with its bytes, acked.
                    metrics.REJECTED.labels("internal_error").inc()
                    log.exception("ingest failed, quarantine too", extra={"topic": msg.topic,
                                                                          "payload": msg.payload[:512]})
                    _resolve(msg, None)
                    return True
                log.warning("store unavailable; retrying", extra={"topic": msg.topic, "retry_in_s": delay,
                                                                  "error": str(exc)[:300]})
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        _resolve(msg, None)
        return False

    def _batch_until_stored(self, msgs: list[mqtt.MQTTMessage]) -> bool:
        """The batch form of _handle_until_stored: all of it or none of it is committed.
        A failure that is not the store being unavailable (one message's fault) must not
        hold up the others: they are then taken one by one through ``accept``, which
        quarantines the one at fault."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                outcomes = self.ingestor.handle_batch([(m.topic, m.payload) for m in msgs])
                for m, out in zip(msgs, outcomes):
                    _resolve(m, out)
                return True
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    log.exception("batch failed; taking its messages one by one", extra={"size": len(msgs)})
                    return all([self._handle_until_stored(m) for m in msgs])
                log.warning("store unavailable; retrying the batch",
                            extra={"size": len(msgs), "retry_in_s": delay, "error": str(exc)[:300]})
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        for m in msgs:
            _resolve(m, None)
        return False

    # --- CommandSender port ------------------------------------------------------------
    def send_command(self, device_id: str, command: dict) -> None:
        payload = json.dumps(command, separators=(",", ":")).encode()
        # The alert session's socket is not busy with a flood of PUBACKs.
        self.client.publish(protocol.down_topic(device_id, "cmd"), payload, qos=1)

    def publish_config(self, device_id: str, config: dict) -> None:
        payload = json.dumps(config, separators=(",", ":")).encode()
        self.client.publish(protocol.down_topic(device_id, "config"), payload, qos=1, retain=True)
