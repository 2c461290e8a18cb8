# The cloud connection: wait for the network, connect, say hello (presence,
# status, subscriptions), then drain the outbox; on any failure start again
# after a jittered back-off, so a cell full of watches does not reconnect in step.
import json
import random
from app import Wake, flash, messages, netsock
from app.mqtt import Client
from micropython import const

_BACKOFF_FIRST_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_IDLE_WAIT_MS = const(500)


def backoff_ms(attempt):
    base = min(_BACKOFF_MAX_MS, _BACKOFF_FIRST_MS << min(attempt, 16))
    return base // 2 + random.getrandbits(16) % (base // 2 + 1)


class Session:
    def __init__(self, board, device, outbox, network_up, on_message, make_status, keepalive=60,
                 on_link=None, radio=None):
        self.board = board
        self.radio = radio  # the connection goes through its modem (app/netsock.py), on the one UART
        self.clock = board.clock
        self.device = device  # {"id","secret","broker_host","broker_port","tls"}
        self.outbox = outbox
        self.network_up = network_up  # an Event set while the modem is registered
        self.on_message = on_message
        self.make_status = make_status  # () -> status dict with a fresh mid
        self.keepalive = keepalive
        self.client = None
        self.on_link = on_link  # (ok) -> None: the radio counts refusals of a registered link
        self.connects = 0
        self.synced = False  # connected, subscribed and the outbox drained
        self.syncs = 0  # times it got there
        self._kick = Wake(self.clock)

    def kick(self):
        self._kick.set()

    def topic(self, kind):
        return messages.topic(self.device["id"], kind)

    async def run(self):
        attempt = 0
        while True:
            await self.network_up.wait()
            planned = False
            try:
                await self._connect()
                attempt = 0
                await self._hello()
                await self._pump()
                planned = True  # the pump returns only when the radio goes off
            except Exception as e:
                cause = self.client.error if self.client else None
                print("session: link down:", repr(e), "" if cause is None or cause is e else repr(cause))
            finally:
                self.synced = False
                if self.client:
                    if planned:
                        await self.client.disconnect()
                    self.client.close()
                    self.client = None
            if planned or not self.network_up.is_set():
                attempt = 0  # the network went, not the broker: go as soon as it is back
                continue
            attempt += 1
            await self.clock.sleep_ms(backoff_ms(attempt))

    async def _connect(self):
        dev = self.device
        # TLS (the modem's): the broker verified against /data/ca.pem, beside device.json.
        ca = flash.join(self.board.flash_dir, "ca.pem") if dev.get("tls") else None
        try:
            r, w = await self.clock.wait_for_ms(
                netsock.connect(self.radio.modem, dev["broker_host"], dev["broker_port"], ca), 60000 if ca else 30000)
        except Exception:
            if self.on_link:
                self.on_link(False)
            raise
        if self.on_link:
            self.on_link(True)
        c = Client(self.clock, dev["id"], dev["secret"], keepalive=self.keepalive,
                   will=(self.topic("presence"), b'{"online":false}'),
                   on_message=self.on_message)
        self.client = c
        await c.connect(r, w)
        self.connects += 1
        print("session: connected")

    async def _hello(self):
        c = self.client
        body = messages.presence(True, self.clock.wall())
        await c.publish(self.topic("presence"), json.dumps(body).encode(), qos=1, retain=True)
        self.outbox.put("status", self.make_status())
        self.outbox.resend_alerts_now()
        await c.subscribe([(self.topic("cmd"), 1), (self.topic("config"), 1)])

    async def _pump(self):
        c = self.client
        while c.connected:
            now = self.clock.ticks_ms()
            item = self.outbox.due(now, self.clock.ticks_diff)
            if not self.network_up.is_set():
                return
            if item is None:
                if not self.synced and not self.outbox.has_unsent():
                    self.synced = True
                    self.syncs += 1
                wait = self.outbox.next_due_ms(now, self.clock.ticks_diff)
                wait = _IDLE_WAIT_MS if wait is None else min(max(wait, 10), _IDLE_WAIT_MS)
                await self._kick.wait_ms(wait)
                self._kick.clear()
                continue
            name, kind, payload = item
            await c.publish(self.topic(kind), payload, qos=1)
            self.outbox.sent(name, self.clock.ticks_ms(), self.clock.ticks_add)
        raise c.error or Exception("disconnected")

