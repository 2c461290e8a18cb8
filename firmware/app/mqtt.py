# A minimal asyncio MQTT 3.1.1 client over any stream pair (the modem's own TCP
# socket over the AT UART, app/netsock.py). QoS 1 only for what matters: an alarm must
# be acknowledged by the broker, and commands must be acknowledged to it.
import asyncio
from app import Flag, Wake
from app import mqttpkt as pkt


class MQTTError(Exception):
    pass


class Client:
    def __init__(self, clock, client_id, password, keepalive=60, will=None,
                 on_message=None, timeout_ms=10000, retries=2):
        self.clock = clock
        self.client_id = client_id
        self.password = password
        self.keepalive = keepalive
        self.will = will  # (topic, payload) published by the broker if we vanish
        self.on_message = on_message  # sync callback(topic, payload): PUBACK follows it
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.connected = False
        self.session_present = False
        self._buf = b""
        self._pid = 0
        self._waiting = {}  # pid -> [Event, packet]
        # One lock for raw writes (so two tasks never interleave bytes) and one
        # per protocol exchange (publish/subscribe wait for their ack in turn).
        self._wlock = asyncio.Lock()
        self._xlock = asyncio.Lock()
        self._closed = Flag()
        self._ping_outstanding = False
        self._tasks = []
        self.error = None

    async def connect(self, reader, writer):
        self._r, self._w = reader, writer
        will_topic, will_payload = self.will if self.will else (None, b"")
        self.connected = True  # so _write works; reset on failure below
        try:
            await self._write(pkt.connect(self.client_id, self.client_id, self.password,
                                          self.keepalive, clean=False,
                                          will_topic=will_topic, will_payload=will_payload,
                                          will_qos=1, will_retain=True))
            p = await self.clock.wait_for_ms(self._read_packet(), self.timeout_ms)
        except Exception as e:
            self._fail(e)
            raise MQTTError("connect: %r" % (e,))
        if p.kind != pkt.CONNACK or p.rc != 0:
            self._fail(MQTTError("refused"))
            raise MQTTError("connection refused rc=%d" % p.rc)
        self.session_present = p.session_present
        self._tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._pinger())]
        return p.session_present

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def publish(self, topic, payload, qos=1, retain=False):
        # An awaitable, not a coroutine of its own: that would be one more frame
        # in the heap for every message on its way.
        if qos == 0:
            return self._write(pkt.publish(topic, payload, 0, retain))
        return self._exchange(lambda pid, dup: pkt.publish(topic, payload, 1, retain, pid, dup))

    async def subscribe(self, topics):
        p = await self._exchange(lambda pid, dup: pkt.subscribe(pid, topics))
        if p.granted and 0x80 in p.granted:
            raise MQTTError("subscription refused")
        return p.granted

    async def _exchange(self, build):
        # One exchange at a time: send build(pid, dup), wait for the ack with
        # this pid, retransmit (DUP) on timeout. Returns the ack.
        async with self._xlock:
            pid = self._next_pid()
            slot = [Wake(self.clock), None]
            self._waiting[pid] = slot
            try:
                for attempt in range(self.retries + 1):
                    if not self.connected:
                        raise MQTTError("disconnected")
                    await self._write(build(pid, attempt > 0))
                    if not await slot[0].wait_ms(self.timeout_ms):
                        continue
                    if slot[1] is None:
                        raise MQTTError("disconnected")
                    return slot[1]
            finally:
                self._waiting.pop(pid, None)
            # The broker is not answering: the link is dead even if TCP has not noticed.
            self._fail(MQTTError("no ack for pid %d" % pid))
            raise MQTTError("no ack")

    async def _write(self, data):
        if not self.connected:
            raise MQTTError("disconnected")
        async with self._wlock:
            try:
                self._w.write(data)
                await self._w.drain()
            except Exception as e:
                self._fail(e)
                raise MQTTError("write: %r" % (e,))

    async def _read_packet(self):
        while True:
            p, self._buf = pkt.split(self._buf)
            if p is not None:
                return p
            chunk = await self._r.read(256)  # small blocks: a fragmented heap still has them
            if not chunk:
                raise MQTTError("connection closed by peer")
            self._buf += chunk

    async def _reader(self):
        try:
            while self.connected:
                p = await self._read_packet()
                if p.kind in (pkt.PUBACK, pkt.SUBACK):
                    slot = self._waiting.get(p.pid)
                    if slot:
                        slot[1] = p
                        slot[0].set()
                elif p.kind == pkt.PINGRESP:
                    self._ping_outstanding = False
                elif p.kind == pkt.PUBLISH:
                    self._deliver(p)
                    if p.qos == 1:
                        # After the handler: it has stored whatever must survive
                        # a reboot, so the broker may now forget the message.
                        await self._write(pkt.puback(p.pid))
        except Exception as e:
            self._fail(e)

    def _deliver(self, p):
        if self.on_message is None:
            return
        try:
            self.on_message(p.topic, p.payload)
        except Exception as e:
            # A poison message must not kill the connection nor be redelivered
            # for ever: it is logged and acknowledged.
            print("mqtt: handler failed on", p.topic, repr(e))

    async def _pinger(self):
        half = self.keepalive * 500
        try:
            while self.connected:
                await self.clock.sleep_ms(half)
                if not self.connected:
                    return
                if self._ping_outstanding:
                    self._fail(MQTTError("ping timeout"))
                    return
                self._ping_outstanding = True
                await self._write(pkt.pingreq())
        except Exception as e:
            self._fail(e)

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
        was = self.connected
        self.connected = False
        for slot in self._waiting.values():
            slot[0].set()  # wake waiters; slot[1] stays None = disconnected
        try:
            self._w.close()
        except Exception:
            pass
        if was:
            self._closed.set()

    async def wait_closed(self):
        await self._closed.wait()

    async def disconnect(self):
        if self.connected:
            try:
                await self._write(pkt.disconnect())
            except MQTTError:
                pass
        self.close()

    def close(self):
        self._fail(MQTTError("closed"))
        cur = asyncio.current_task()
        for t in self._tasks:
            if t is not cur:
                t.cancel()
        self._tasks = []
