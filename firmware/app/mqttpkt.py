# MQTT 3.1.1 packet encoding and decoding, no I/O, so it can be unit-tested and
# fuzzed on its own. Only what a watch needs: CONNECT/CONNACK, PUBLISH (QoS 0/1),
# PUBACK, SUBSCRIBE/SUBACK, PINGREQ/PINGRESP, DISCONNECT.
from micropython import const

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

_MAX_PACKET = const(65536)  # the broker's max_packet_size; anything bigger is an attack or a bug


class MalformedPacket(ValueError):
    pass


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return len(s).to_bytes(2, "big") + s


def _packet(first_byte, body):
    return bytes([first_byte]) + _varint(len(body)) + body


def connect(client_id, username=None, password=None, keepalive=60, clean=False,
            will_topic=None, will_payload=b"", will_qos=1, will_retain=True):
    flags = 0x02 if clean else 0
    payload = _str(client_id)
    if will_topic is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        payload += _str(will_topic) + _str(will_payload)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
    if password is not None:
        flags |= 0x40
        payload += _str(password)
    body = _str("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + payload
    return _packet(CONNECT << 4, body)


def publish(topic, payload, qos=0, retain=False, pid=0, dup=False):
    if isinstance(payload, str):
        payload = payload.encode()
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = _str(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return _packet(first, body)


def puback(pid):
    return _packet(PUBACK << 4, pid.to_bytes(2, "big"))


def subscribe(pid, topics):
    # topics: list of (topic, qos)
    body = pid.to_bytes(2, "big")
    for topic, qos in topics:
        body += _str(topic) + bytes([qos])
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def pingreq():
    return b"\xc0\x00"


def disconnect():
    return b"\xe0\x00"


class Packet:
    # A decoded packet; only the fields its type uses are set.
    def __init__(self, kind, flags, body):
        self.kind = kind
        self.flags = flags
        self.body = body
        self.pid = 0
        self.topic = None
        self.payload = None
        self.qos = 0
        self.retain = False
        self.dup = False
        self.rc = 0
        self.session_present = False
        self.granted = None


def decode_length(data, start=1):
    # Returns (remaining length, index of the body) or None if more bytes are needed.
    n = 0
    shift = 0
    i = start
    while True:
        if i >= len(data):
            return None
        b = data[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return n, i
        shift += 7
        if shift > 21:
            raise MalformedPacket("remaining length too long")


def split(data):
    # Cut one packet off the front of `data`: (Packet, rest) or (None, data).
    if len(data) < 2:
        return None, data
    got = decode_length(data)
    if got is None:
        return None, data
    length, start = got
    if length > _MAX_PACKET:
        raise MalformedPacket("packet too large")
    end = start + length
    if len(data) < end:
        return None, data
    return parse(data[0], bytes(data[start:end])), data[end:]


def _need(body, n):
    if len(body) < n:
        raise MalformedPacket("truncated")


def parse(first, body):
    kind = first >> 4
    p = Packet(kind, first & 0x0F, body)
    if kind == PUBLISH:
        p.qos = (first >> 1) & 0x03
        if p.qos > 1:
            if p.qos == 3:
                raise MalformedPacket("qos 3")
        p.retain = bool(first & 1)
        p.dup = bool(first & 0x08)
        _need(body, 2)
        tlen = int.from_bytes(body[0:2], "big")
        _need(body, 2 + tlen)
        try:
            p.topic = body[2:2 + tlen].decode()
        except UnicodeError:
            raise MalformedPacket("topic not utf-8")
        i = 2 + tlen
        if p.qos:
            _need(body, i + 2)
            p.pid = int.from_bytes(body[i:i + 2], "big")
            i += 2
        p.payload = body[i:]
    elif kind == CONNACK:
        _need(body, 2)
        p.session_present = bool(body[0] & 1)
        p.rc = body[1]
    elif kind in (PUBACK, SUBACK):
        _need(body, 2)
        p.pid = int.from_bytes(body[0:2], "big")
        if kind == SUBACK:
            p.granted = list(body[2:])
    elif kind in (PINGRESP, PINGREQ, DISCONNECT):
        pass
    elif kind == 0 or kind == 15:
        raise MalformedPacket("reserved type %d" % kind)
    return p
