# Flash store-and-forward for every up message. A message is on flash before
# its first send and leaves only when it is safe to forget: after the PUBACK,
# or for an alert after the cloud's alert_ack (the cloud has stored the case).
#
# One file per message, named so that a plain sort gives the sending order:
# "a" (alerts) before "m" (everything else), then boot and sequence numbers.
import json
import os
from app import flash

RETRY_FIRST_MS = 3000
RETRY_MAX_MS = 60000


class Outbox:
    def __init__(self, dir, boot, limit=100, retry_first_ms=RETRY_FIRST_MS):
        self.dir = dir
        self.boot = boot
        self.limit = limit
        self.retry_first_ms = retry_first_ms
        flash.makedirs(dir)
        self._seq_path = flash.join(dir, "seq")
        seq = flash.read_json(self._seq_path) or {}
        # A new boot restarts the sequence: (boot, seq) stays unique for ever.
        self.seq = seq.get("seq", 0) if seq.get("boot") == boot else 0
        self._retry = {}  # name -> [due ticks, delay ms]; RAM only: resend after reboot
        for name in os.listdir(dir):
            if name.endswith(".tmp"):
                os.remove(flash.join(dir, name))  # a write the power cut interrupted

    def new_mid(self):
        self.seq += 1
        flash.write_json(self._seq_path, {"boot": self.boot, "seq": self.seq})
        return "%d.%d" % (self.boot, self.seq)

    def _names(self):
        return sorted(n for n in os.listdir(self.dir) if n.endswith(".msg"))

    @staticmethod
    def _name(kind, mid):
        boot, seq = mid.split(".")
        return "%s%08d.%08d.msg" % ("a" if kind == "alert" else "m", int(boot), int(seq))

    def put(self, kind, payload):
        # payload: the message dict, with its "mid". Returns the mid.
        names = self._names()
        if len(names) >= self.limit:
            self._make_room(names)
        mid = payload["mid"]
        body = json.dumps({"kind": kind, "payload": payload})
        flash.write_atomic(flash.join(self.dir, self._name(kind, mid)), body.encode())
        return mid

    def _make_room(self, names):
        # Drop the oldest routine message; alerts are never dropped.
        for n in names:
            if n[0] == "m":
                os.remove(flash.join(self.dir, n))
                self._retry.pop(n, None)
                return

    def items(self):
        # [(name, kind, payload bytes)] in sending order
        out = []
        for n in self._names():
            try:
                doc = json.loads(flash.read(flash.join(self.dir, n)))
                out.append((n, doc["kind"], json.dumps(doc["payload"]).encode()))
            except (ValueError, KeyError, TypeError):
                os.remove(flash.join(self.dir, n))  # unreadable: it can never be sent
        return out

    def count(self):
        return len(self._names())

    def alerts(self):
        return [n for n in self._names() if n[0] == "a"]

    def due(self, now, ticks_diff):
        # The first message that may be sent now, or None.
        for item in self.items():
            r = self._retry.get(item[0])
            if r is None or ticks_diff(now, r[0]) >= 0:
                return item
        return None

    def next_due_ms(self, now, ticks_diff):
        waits = [ticks_diff(r[0], now) for r in self._retry.values()]
        return max(0, min(waits)) if waits else None

    def sent(self, name, now, ticks_add):
        # The broker has it (PUBACK). Alerts stay until the cloud acknowledges them.
        if name[0] != "a":
            self.remove_name(name)
            return
        r = self._retry.get(name)
        delay = self.retry_first_ms if r is None else min(r[1] * 2, RETRY_MAX_MS)
        self._retry[name] = [ticks_add(now, delay), delay]

    def resend_alerts_now(self):
        self._retry = {}

    def remove_name(self, name):
        self._retry.pop(name, None)
        try:
            os.remove(flash.join(self.dir, name))
        except OSError:
            pass

    def acknowledged(self, mid):
        # The cloud's alert_ack for an alert mid: it may leave the outbox now.
        try:
            name = self._name("alert", mid)
        except (ValueError, AttributeError):
            return False
        if flash.exists(flash.join(self.dir, name)):
            self.remove_name(name)
            return True
        return False
