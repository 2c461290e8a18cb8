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
DROP_LETTER = {"loc": "l", "status": "s", "ack": "k", "presence": "p"}
DROP_ORDER = ("l", "s", None)


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
        if kind == "alert":
            return "a%08d.%08d.msg" % (int(boot), int(seq))
        # The kind's letter lets a full outbox pick what to drop without reading files.
        return "m%08d.%08d.%s.msg" % (int(boot), int(seq), DROP_LETTER.get(kind, "x"))

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
        # Drop the oldest location report first, then the oldest status, then
        # anything routine; alerts are never dropped.
        for letter in DROP_ORDER:
            for n in names:
                if n[0] == "m" and (letter is None or n[-5] == letter):
                    os.remove(flash.join(self.dir, n))
                    self._retry.pop(n, None)
                    return

    def _load(self, n):
        try:
            doc = json.loads(flash.read(flash.join(self.dir, n)))
            return (n, doc["kind"], json.dumps(doc["payload"]).encode())
        except (ValueError, KeyError, TypeError):
            os.remove(flash.join(self.dir, n))  # unreadable: it can never be sent
            return None

    def items(self):
        # [(name, kind, payload bytes)] in sending order
        out = []
        for n in self._names():
            item = self._load(n)
            if item:
                out.append(item)
        return out

    def count(self):
        return len(self._names())

    @staticmethod
    def mid_of(name):
        # "a00000017.00000204.msg" -> "17.204"
        boot, seq = name[1:].split(".")[:2]
        return "%d.%d" % (int(boot), int(seq))

    def alerts(self):
        return [n for n in self._names() if n[0] == "a"]

    def due(self, now, ticks_diff):
        # The first message that may be sent now, or None. Reads one file only:
        # a full outbox must not fill the heap.
        for n in self._names():
            r = self._retry.get(n)
            if r is None or ticks_diff(now, r[0]) >= 0:
                item = self._load(n)
                if item:
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

    def unsent(self):
        # Messages never sent this boot (alerts waiting for their ack do not count).
        return [n for n in self._names() if n not in self._retry]

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
