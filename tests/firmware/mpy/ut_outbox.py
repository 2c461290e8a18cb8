import os
import mpytest
from mpytest import eq
from app import flash
from app.outbox import Outbox

BASE = mpytest.tmpdir("outbox")
_n = [0]


def fresh():
    _n[0] += 1
    return BASE + "/box%d" % _n[0]


def diff(a, b):
    return a - b


def add(t, ms):
    return t + ms


def put(box, topic_kind, **extra):
    msg = {"v": 1, "mid": box.new_mid(), "ts": None}
    msg.update(extra)
    box.put(topic_kind, msg)
    return msg["mid"]


def kinds(box):
    return [k for _, k, _ in box.items()]


def test_mid_is_boot_dot_sequence_and_survives_reboot():
    d = fresh()
    box = Outbox(d, boot=17)
    eq(box.new_mid(), "17.1")
    eq(box.new_mid(), "17.2")
    again = Outbox(d, boot=17)  # same boot reopened: the sequence goes on
    eq(again.new_mid(), "17.3")
    eq(Outbox(d, boot=18).new_mid(), "18.1")


def test_messages_survive_a_reboot_alerts_first():
    d = fresh()
    box = Outbox(d, boot=3)
    s1 = put(box, "status")
    a1 = put(box, "alert", kind="sos")
    k1 = put(box, "ack", cid="c")
    a2 = put(box, "alert", kind="sos")
    box2 = Outbox(d, boot=4)  # reboot
    eq(kinds(box2), ["alert", "alert", "status", "ack"])
    import json
    mids = [json.loads(p)["mid"] for _, _, p in box2.items()]
    eq(mids, [a1, a2, s1, k1])
    eq(box2.count(), 4)


def test_order_is_numeric_not_lexicographic():
    d = fresh()
    box = Outbox(d, boot=1)
    box.seq = 8
    m9 = put(box, "status")
    m10 = put(box, "status")
    import json
    eq([json.loads(p)["mid"] for _, _, p in box.items()], [m9, m10])


def test_routine_message_leaves_after_puback_alert_only_after_alert_ack():
    d = fresh()
    box = Outbox(d, boot=1)
    a = put(box, "alert", kind="sos")
    put(box, "status")
    name, kind, _ = box.due(0, diff)
    eq(kind, "alert")
    box.sent(name, 0, add)                  # PUBACK: the alert stays
    eq(box.count(), 2)
    name2, kind2, _ = box.due(0, diff)       # not due again yet: the status goes
    eq(kind2, "status")
    box.sent(name2, 0, add)
    eq(box.count(), 1)
    eq(box.due(10, diff), None)
    eq(box.due(3000, diff)[0], name)         # retry after the back-off
    box.sent(name, 3000, add)
    eq(box.due(8999, diff), None)            # back-off doubled
    eq(box.due(9000, diff)[0], name)
    eq(box.acknowledged(a), True)
    eq(box.count(), 0)
    eq(box.acknowledged(a), False)


def test_atomic_write_leaves_no_tmp_and_cleans_interrupted_ones():
    d = fresh()
    box = Outbox(d, boot=1)
    put(box, "status")
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    with open(d + "/m00000001.00000099.msg.tmp", "w") as f:
        f.write('{"kind": "sta')           # the power went out mid-write
    box2 = Outbox(d, boot=2)
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    eq(box2.count(), 1)


def test_corrupt_file_is_dropped_not_fatal():
    d = fresh()
    box = Outbox(d, boot=1)
    put(box, "status")
    with open(d + "/m00000001.00000050.msg", "w") as f:
        f.write("garbage")
    eq(len(box.items()), 1)


def test_bounded_drops_oldest_routine_never_alerts():
    d = fresh()
    box = Outbox(d, boot=1, limit=3)
    a = put(box, "alert", kind="sos")
    s1 = put(box, "status")
    s2 = put(box, "status")
    s3 = put(box, "status")
    import json
    mids = [json.loads(p)["mid"] for _, _, p in box.items()]
    eq(mids, [a, s2, s3])
    box2 = Outbox(d, boot=1, limit=2)
    put(box2, "alert", kind="sos")
    put(box2, "alert", kind="sos")
    eq(kinds(box2).count("alert"), 3)


def test_full_outbox_drops_location_reports_before_anything_else():
    d = fresh()
    box = Outbox(d, boot=1, limit=4)
    st = put(box, "status")
    put(box, "loc")
    ak = put(box, "ack")
    l2 = put(box, "loc")
    a = put(box, "alert", kind="sos")  # full: the oldest loc goes
    import json
    mids = [json.loads(p)["mid"] for _, _, p in box.items()]
    eq(mids, [a, st, ak, l2])
    put(box, "alert", kind="sos")      # then the other loc
    put(box, "alert", kind="sos")      # then the status, never the ack before it
    mids = [json.loads(p)["mid"] for _, k, p in box.items() if k != "alert"]
    eq(mids, [ak])



def test_flash_write_atomic_replaces():
    d = fresh()
    flash.makedirs(d + "/a/b")
    flash.write_json(d + "/a/b/x.json", {"n": 1})
    flash.write_json(d + "/a/b/x.json", {"n": 2})
    eq(flash.read_json(d + "/a/b/x.json"), {"n": 2})
    eq(flash.bump_counter(d + "/boot"), 1)
    eq(flash.bump_counter(d + "/boot"), 2)


mpytest.run(globals())
