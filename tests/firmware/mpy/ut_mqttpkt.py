import random
import mpytest
from mpytest import eq, raises
from app import mqttpkt as pkt


def roundtrip(data):
    p, rest = pkt.split(data)
    eq(rest, b"")
    return p


def test_connect_flags_will_and_credentials():
    data = pkt.connect("dev-1", "dev-1", "pw", 60, clean=False,
                       will_topic="pers/v1/dev-1/presence", will_payload=b'{"online":false}')
    eq(data[0], 0x10)
    p = roundtrip(data)
    body = p.body
    eq(body[0:6], b"\x00\x04MQTT")
    eq(body[6], 4)
    flags = body[7]
    eq(flags & 0x02, 0)          # clean_session = False
    eq(flags & 0x04, 0x04)       # will
    eq((flags >> 3) & 3, 1)      # will QoS 1
    eq(flags & 0x20, 0x20)       # will retained
    eq(flags & 0xC0, 0xC0)       # username + password
    eq(int.from_bytes(body[8:10], "big"), 60)
    assert b"pers/v1/dev-1/presence" in body and body.endswith(b"\x00\x02pw")


def test_publish_qos1_roundtrip_and_dup():
    payload = b'{"v":1}' * 40  # > 127 bytes: two-byte remaining length
    p = roundtrip(pkt.publish("pers/v1/d/alert", payload, 1, False, 513, dup=True))
    eq(p.kind, pkt.PUBLISH)
    eq(p.topic, "pers/v1/d/alert")
    eq(p.pid, 513)
    eq(p.qos, 1)
    eq(p.dup, True)
    eq(p.retain, False)
    eq(p.payload, payload)


def test_publish_qos0_retained():
    p = roundtrip(pkt.publish("t", "x", 0, True))
    eq((p.qos, p.retain, p.pid, p.payload), (0, True, 0, b"x"))


def test_acks_and_ping():
    eq(roundtrip(pkt.puback(7)).pid, 7)
    eq(roundtrip(b"\x90\x03\x00\x09\x01").granted, [1])
    eq(roundtrip(b"\x20\x02\x01\x00").session_present, True)
    eq(roundtrip(b"\x20\x02\x00\x05").rc, 5)
    eq(roundtrip(pkt.pingreq()).kind, pkt.PINGREQ)
    eq(roundtrip(b"\xd0\x00").kind, pkt.PINGRESP)


def test_subscribe_encoding():
    data = pkt.subscribe(3, [("a/cmd", 1), ("a/config", 1)])
    eq(data[0], 0x82)
    eq(data[2:4], b"\x00\x03")
    assert data.endswith(b"\x00\x08a/config\x01")


def test_split_waits_for_whole_packet_and_keeps_the_rest():
    a = pkt.publish("t", b"hello", 1, False, 1)
    b = pkt.puback(1)
    stream = a + b
    for cut in range(len(a)):
        p, rest = pkt.split(stream[:cut])
        eq(p, None)
    p, rest = pkt.split(stream)
    eq(p.payload, b"hello")
    eq(rest, b)


def test_remaining_length_boundaries():
    for n in (0, 127, 128, 16383, 16384):
        enc = pkt._varint(n)
        got = pkt.decode_length(b"\x30" + enc)
        eq(got[0], n)


def test_malformed_input_raises_only_malformed():
    raises(pkt.MalformedPacket, pkt.split, b"\x30\xff\xff\xff\xff\x01")
    raises(pkt.MalformedPacket, pkt.split, b"\x30\x01\x00")      # topic length cut
    raises(pkt.MalformedPacket, pkt.split, b"\x00\x00")          # reserved type
    raises(pkt.MalformedPacket, pkt.split, b"\x36\x03\x00\x01a")  # qos 3


def test_fuzz_random_bytes():
    random.seed(7)
    for _ in range(3000):
        n = random.randint(0, 40)
        data = bytes(random.getrandbits(8) for _ in range(n))
        try:
            while data:
                p, data2 = pkt.split(data)
                if p is None:
                    break
                data = data2
        except pkt.MalformedPacket:
            pass


mpytest.run(globals())
