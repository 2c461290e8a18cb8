# Parsing of the down messages (commands and config). Checks just enough that
# the handlers can trust the fields; unknown fields are ignored as the contract
# says, an unknown type or a missing field is refused with a reason.
import json

def config_defaults():
    # A new dict each time, not a module-level one: the watch's own config is
    # the only copy that stays in the heap.
    return {"version": 0, "heartbeat_s": 3600, "sos_hold_ms": 1000,
            "cancel_window_s": 10, "fall_detection": True,
            "callcenter_number": None, "whitelist": [], "kids_mode": False,
            "reminders": [], "track_s": 30, "fall_countdown_s": 15, "fall": {},
            "low_battery_pct": 15, "emergency_number": "112",
            "checkin_at": "", "checkin_window_s": 1800}


class BadCommand(ValueError):
    def __init__(self, reason, cid=None):
        super().__init__(reason)
        self.reason = reason
        self.cid = cid


def _load(payload):
    try:
        doc = json.loads(payload)
    except ValueError:
        raise BadCommand("not json")
    if not isinstance(doc, dict):
        raise BadCommand("not an object")
    return doc


def _typed(value, kind):
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _required(kind):
    # The fields a command of this kind must have, with their types; None: no
    # such kind. Compared one by one, not looked up in a table: a module-level
    # dict of dicts would stay in the heap for good (about 0.5 KB).
    if kind == "alert_ack":
        return (("ref", str), ("stage", str))
    if kind == "call":
        return (("number", str),)
    if kind == "locate":
        return ()
    if kind == "track":
        return (("interval_s", int), ("duration_s", int))
    if kind == "message":
        return (("text", str),)
    if kind == "ring":
        return (("seconds", int),)
    if kind == "vsim":
        return (("profiles", list),)
    return None


def parse_command(payload):
    doc = _load(payload)
    cid = doc.get("cid")
    if not isinstance(cid, str) or not cid or len(cid) > 64:
        raise BadCommand("bad cid")
    if doc.get("v") != 1:
        raise BadCommand("unsupported version", cid)
    kind = doc.get("type")
    fields = _required(kind)
    if fields is None:
        raise BadCommand("unknown type %s" % kind, cid)
    for name, kind_of in fields:
        if not _typed(doc.get(name), kind_of):
            raise BadCommand("bad %s" % name, cid)
    stage = doc.get("stage")
    if kind == "alert_ack" and stage != "received" and stage != "operator" and stage != "closed":
        raise BadCommand("bad stage", cid)
    return doc


def parse_config(payload):
    doc = _load(payload)
    if doc.get("v") != 1:
        raise BadCommand("unsupported version")
    defaults = config_defaults()
    cfg = dict(defaults)
    for name in defaults:
        # Each setting has the type of its default (callcenter_number, None by
        # default, is taken as it comes below).
        default = defaults[name]
        if name in doc and default is not None:
            if not _typed(doc[name], type(default)):
                raise BadCommand("bad %s" % name)
            cfg[name] = doc[name]
    if "version" not in doc:
        raise BadCommand("no version")
    cfg["callcenter_number"] = doc.get("callcenter_number")
    return cfg


class Deduper:
    # Remembers the outcome of the last commands: a redelivered command is acked
    # again with the same outcome but not acted on twice. Bounded: the broker only
    # redelivers recent ones.
    def __init__(self, size=32):
        self.size = size
        self.done = []  # [(cid, outcome)]

    def get(self, cid):
        for c, outcome in self.done:
            if c == cid:
                return outcome
        return None

    def put(self, cid, outcome):
        self.done.append((cid, outcome))
        if len(self.done) > self.size:
            self.done.pop(0)
