# Flash store-and-forward for every up message. A message is on flash before
# its first send and leaves only when it is safe to forget: after the PUBACK,
# or for an alert after the cloud's alert_ack (the cloud has stored the case).
#
# One file per message, named so that a plain sort gives the sending order:
# "a" (alerts) before "m" (everything else), then boot and sequence numbers,
# then the installation id (one per flash file system: app/flash.py). Files
# written by firmware from before installation ids have none ("a00000004.
# 00000007.msg", mid "4.7"): they are sent, acknowledged and dropped as before.
import json
import os
from app import flash
from micropython import const

_RETRY_FIRST_MS = const(3000)
_RETRY_MAX_MS = const(60000)
DROP_LETTER = {"loc": "l", "status": "s", "ack": "k", "presence": "p"}


class Outbox:
    def __init__(self, dir, install, boot, limit=100, retry_first_ms=_RETRY_FIRST_MS):
        if not flash.valid_id(install):
            raise ValueError("bad installation id")
        self.dir = dir
        self.install = install
        self.boot = boot
        self.limit = limit
        self.retry_first_ms = retry_first_ms
        flash.makedirs(dir)
        self._seq_path = flash.join(dir, "seq")
        seq = flash.read_json(self._seq_path) or {}
        # A new boot restarts the sequence: (install, boot, seq) stays unique for
        # ever, through an erased flash too (a new install id, boot 1 again).
        self.seq = seq.get("seq", 0) if seq.get("boot") == boot and seq.get("id") == install else 0
        self._retry = {}  # name -> [due ticks, delay ms]; RAM only: resend after reboot
        self.sending = None  # the name last handed out to be sent
        for name in os.listdir(dir):
            if name.endswith(".tmp"):
                os.remove(flash.join(dir, name))  # a write the power cut interrupted

    def new_mid(self):
        self.seq += 1
        flash.write_json(self._seq_path, {"id": self.install, "boot": self.boot, "seq": self.seq})
        return "%s.%d.%d" % (self.install, self.boot, self.seq)

    def _iter(self):
        # The message names, in no order. An iterator: a full outbox must not
        # build lists of a hundred names in the heap (on an ESP32 the garbage of
        # a listing every pump loop fragments it until a 1 KB block is not found).
        for e in os.ilistdir(self.dir):
            if e[0].endswith(".msg"):
                yield e[0]

    def _first(self, ok):
        # The first name in sending order (a plain sort) that ok(name) accepts.
        best = None
        for n in self._iter():
            if (best is None or n < best) and ok(n):
                best = n
        return best

    def _names(self):
        return sorted(self._iter())

    @staticmethod
    def _name(kind, mid):
        # "k3x9q2ab7c1d.17.204" -> "a00000017.00000204.k3x9q2ab7c1d.msg";
        # a mid from before installation ids, "17.204" -> "a00000017.00000204.msg".
        # ValueError for anything else (a ref from outside names no file).
        p = mid.split(".")
        if len(p) == 3:
            if not flash.valid_id(p[0]):
                raise ValueError
            tail = "." + p[0]
            boot, seq = p[1], p[2]
        else:
            boot, seq = p
            tail = ""
        if kind == "alert":
            return "a%08d.%08d%s.msg" % (int(boot), int(seq), tail)
        # The kind's letter lets a full outbox pick what to drop without reading files.
        return "m%08d.%08d%s.%s.msg" % (int(boot), int(seq), tail, DROP_LETTER.get(kind, "x"))

    def put(self, kind, payload):
        # payload: the message dict, with its "mid". Returns the mid.
        if self.count() >= self.limit:
            self._make_room()
        mid = payload["mid"]
        body = json.dumps({"kind": kind, "payload": payload})
        flash.write_atomic(flash.join(self.dir, self._name(kind, mid)), body.encode())
        return mid

    def _make_room(self):
        # Drop the oldest location report first, then the oldest status, then
        # anything routine; alerts are never dropped.
        for letter in "lsm":  # "m": any routine message
            n = self._first(lambda n: n[0] == "m" and (letter == "m" or n[-5] == letter))  # noqa: B023 (called here)
            if n is not None:
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
        n = 0
        for _ in self._iter():
            n += 1
        return n

    @staticmethod
    def mid_of(name):
        # "a00000017.00000204.k3x9q2ab7c1d.msg" -> "k3x9q2ab7c1d.17.204";
        # "a00000017.00000204.msg" (before installation ids) -> "17.204"
        p = name[1:].split(".")
        if len(p) > (3 if name[0] == "a" else 4):
            return "%s.%d.%d" % (p[2], int(p[0]), int(p[1]))
        return "%d.%d" % (int(p[0]), int(p[1]))

    def alerts(self):
        return sorted(n for n in self._iter() if n[0] == "a")

    def due(self, now, ticks_diff):
        # The first message that may be sent now, or None. Reads one file only:
        # a full outbox must not fill the heap.
        retry = self._retry

        def ready(n):
            r = retry.get(n)
            return r is None or ticks_diff(now, r[0]) >= 0
        while True:
            n = self._first(ready)
            if n is None:
                return None
            item = self._load(n)  # None: it was unreadable and is gone
            if item:
                self.sending = n  # on its way: its content is fixed now
                return item

    def next_due_ms(self, now, ticks_diff):
        waits = [ticks_diff(r[0], now) for r in self._retry.values()]
        return max(0, min(waits)) if waits else None

    def sent(self, name, now, ticks_add):
        # The broker has it (PUBACK). Alerts stay until the cloud acknowledges them.
        if name[0] != "a":
            self.remove_name(name)
            return
        r = self._retry.get(name)
        delay = self.retry_first_ms if r is None else min(r[1] * 2, _RETRY_MAX_MS)
        self._retry[name] = [ticks_add(now, delay), delay]

    def has_unsent(self):
        for n in self._iter():
            if n not in self._retry:
                return True
        return False

    def resend_alerts_now(self):
        self._retry = {}

    def remove_name(self, name):
        self._retry.pop(name, None)
        try:
            os.remove(flash.join(self.dir, name))
        except OSError:
            pass

    def add_vitals(self, mid, vitals):
        # Completes an alert not yet sent (a resend keeps its mid: the cloud,
        # which de-duplicates on it, would not look at the new part).
        try:
            name = self._name("alert", mid)
        except (ValueError, AttributeError):
            return False
        if name in self._retry or name == self.sending:
            return False
        path = flash.join(self.dir, name)
        doc = flash.read_json(path)
        if not doc or "payload" not in doc:
            return False
        doc["payload"]["vitals"] = vitals
        flash.write_atomic(path, json.dumps(doc).encode())
        return True

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
