# Builders for the up messages of the wire contract v1 (PROTOCOL.md). Optional
# parts are left out rather than sent as null, so the payload stays small.

FW = "0.1.0"
ROOT = "pers/v1/"


def topic(device_id, kind):
    return ROOT + device_id + "/" + kind


def _base(mid, ts):
    return {"v": 1, "mid": mid, "ts": ts}


def _put(msg, **parts):
    for k in parts:
        if parts[k] is not None:
            msg[k] = parts[k]
    return msg


def cell_part(cell):
    if not cell:
        return None
    # The keys split from one string: a tuple of them would be loaded from the
    # code image as one heap object per key, for good.
    return {k: cell[k] for k in "mcc mnc lac cid rssi rat".split() if cell.get(k) is not None}


def net_part(cell, rssi=None, profile=None):
    if not cell and rssi is None:
        return None
    n = {}
    if profile:
        n["profile"] = profile
    if cell:
        n["op"] = cell.get("op")
        n["rat"] = cell.get("rat")
    if rssi is not None:
        n["rssi"] = rssi
    return n


def alert(mid, ts, kind, trigger, loc=None, cell=None, batt=None, net=None, ref=None, vitals=None):
    m = _base(mid, ts)
    m["kind"] = kind
    m["trigger"] = trigger
    return _put(m, ref=ref, loc=loc, cell=cell_part(cell), batt=batt, vitals=vitals, net=net, fw=FW)


def loc_report(mid, ts, reason, loc=None, cell=None, batt=None, ref=None, vitals=None):
    return _put(_base(mid, ts), loc=loc, cell=cell_part(cell), batt=batt, vitals=vitals, reason=reason, ref=ref)


def status(mid, ts, batt=None, net=None, uptime=None, cfg=None, outbox=None):
    return _put(_base(mid, ts), batt=batt, net=net, fw=FW, uptime=uptime, cfg=cfg, outbox=outbox)


def ack(mid, ts, cid, ok=True, err=None):
    m = _base(mid, ts)
    m["cid"] = cid
    m["ok"] = ok
    m["err"] = err
    return m


def presence(online, ts=None):
    m = {"online": online}
    if online:
        m["ts"] = ts
    return m
