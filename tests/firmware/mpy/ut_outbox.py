import os
import mpytest
from mpytest import eq, raises
from app import flash
from app.outbox import Outbox
import hal

ID = "k3x9q2ab7c1d"

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


def test_mid_is_install_boot_sequence_and_survives_reboot():
    d = fresh()
    box = Outbox(d, ID, boot=17)
    eq(box.new_mid(), ID + ".17.1")
    eq(box.new_mid(), ID + ".17.2")
    again = Outbox(d, ID, boot=17)  # same boot reopened: the sequence goes on
    eq(again.new_mid(), ID + ".17.3")
    eq(Outbox(d, ID, boot=18).new_mid(), ID + ".18.1")
    # Another installation at the same boot number starts its own sequence.
    eq(Outbox(d, "other", boot=18).new_mid(), "other.18.1")


def test_names_sort_alerts_first_then_boot_then_sequence():
    d = fresh()
    box = Outbox(d, ID, boot=9)
    box.seq = 99
    s = put(box, "status")
    a = put(box, "alert", kind="sos")
    box2 = Outbox(d, ID, boot=10)
    a2 = put(box2, "alert", kind="sos")
    l2 = put(box2, "loc")
    names = box2._names()
    eq(names, ["a00000009.00000101.%s.msg" % ID, "a00000010.00000001.%s.msg" % ID,
               "m00000009.00000100.%s.s.msg" % ID, "m00000010.00000002.%s.l.msg" % ID])
    eq([Outbox.mid_of(n) for n in names], [a, a2, s, l2])


def test_bad_install_ids_and_refs_name_no_file():
    raises(ValueError, Outbox, fresh(), "", 1)
    raises(ValueError, Outbox, fresh(), "a/b", 1)
    box = Outbox(fresh(), ID, boot=1)
    for ref in ("../x.1.2", "a/b.1.2", "x.1", "1", "x.y.z", "x.1.2.3", ""):
        eq(box.acknowledged(ref), False)
        eq(box.add_vitals(ref, {"hr": 60}), False)


def test_outbox_of_the_old_firmware_is_sent_after_an_upgrade():
    # Files written before installation ids: "<boot>.<seq>" mids, names without an
    # id. After the upgrade (the boot counter goes on, a new id beside it) they
    # still leave first, in order, under their own mids, and the cloud's
    # alert_ack with the old mid takes the alert out.
    import json
    d = fresh()
    flash.makedirs(d)
    old = [("a00000004.00000007.msg", "alert", "4.7"),
           ("m00000004.00000003.s.msg", "status", "4.3"),
           ("m00000004.00000008.l.msg", "loc", "4.8")]
    for name, kind, mid in old:
        with open(d + "/" + name, "w") as f:
            f.write(json.dumps({"kind": kind, "payload": {"v": 1, "mid": mid, "ts": None}}))
    flash.write_json(d + "/seq", {"boot": 4, "seq": 8})
    box = Outbox(d, ID, boot=5)
    eq(box.new_mid(), ID + ".5.1")  # the new boot's sequence, under the id
    a = put(box, "alert", kind="sos")
    eq([json.loads(p)["mid"] for _, _, p in box.items()], ["4.7", a, "4.3", "4.8"])
    eq(box.alerts(), ["a00000004.00000007.msg", "a00000005.00000002.%s.msg" % ID])
    eq([Outbox.mid_of(n) for n in box.alerts()], ["4.7", a])
    eq(box.add_vitals("4.7", {"hr": 70}), True)
    name, kind, payload = box.due(0, diff)
    eq((name, kind, json.loads(payload)["vitals"]), ("a00000004.00000007.msg", "alert", {"hr": 70}))
    box.sent(name, 0, add)
    eq(box.acknowledged("4.7"), True)
    eq(box.acknowledged(a), True)
    for _ in range(2):  # the routine ones go after their PUBACK
        name, kind, _ = box.due(0, diff)
        box.sent(name, 0, add)
    eq(box.count(), 0)
    box.limit = 1  # a full outbox still finds the letter of an old name
    with open(d + "/m00000004.00000009.l.msg", "w") as f:
        f.write(json.dumps({"kind": "loc", "payload": {"v": 1, "mid": "4.9", "ts": None}}))
    put(box, "status")
    eq(kinds(box), ["status"])


def test_messages_survive_a_reboot_alerts_first():
    d = fresh()
    box = Outbox(d, ID, boot=3)
    s1 = put(box, "status")
    a1 = put(box, "alert", kind="sos")
    k1 = put(box, "ack", cid="c")
    a2 = put(box, "alert", kind="sos")
    box2 = Outbox(d, ID, boot=4)  # reboot
    eq(kinds(box2), ["alert", "alert", "status", "ack"])
    import json
    mids = [json.loads(p)["mid"] for _, _, p in box2.items()]
    eq(mids, [a1, a2, s1, k1])
    eq(box2.count(), 4)


def test_order_is_numeric_not_lexicographic():
    d = fresh()
    box = Outbox(d, ID, boot=1)
    box.seq = 8
    m9 = put(box, "status")
    m10 = put(box, "status")
    import json
    eq([json.loads(p)["mid"] for _, _, p in box.items()], [m9, m10])


def test_routine_message_leaves_after_puback_alert_only_after_alert_ack():
    d = fresh()
    box = Outbox(d, ID, boot=1)
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
    box = Outbox(d, ID, boot=1)
    put(box, "status")
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    with open(d + "/m00000001.00000099.msg.tmp", "w") as f:
        f.write('{"kind": "sta')           # the power went out mid-write
    box2 = Outbox(d, ID, boot=2)
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    eq(box2.count(), 1)


def test_corrupt_file_is_dropped_not_fatal():
    d = fresh()
    box = Outbox(d, ID, boot=1)
    put(box, "status")
    with open(d + "/m00000001.00000050.msg", "w") as f:
        f.write("garbage")
    eq(len(box.items()), 1)


def test_bounded_drops_oldest_routine_never_alerts():
    d = fresh()
    box = Outbox(d, ID, boot=1, limit=3)
    a = put(box, "alert", kind="sos")
    put(box, "status")
    s2 = put(box, "status")
    s3 = put(box, "status")
    import json
    mids = [json.loads(p)["mid"] for _, _, p in box.items()]
    eq(mids, [a, s2, s3])
    box2 = Outbox(d, ID, boot=1, limit=2)
    put(box2, "alert", kind="sos")
    put(box2, "alert", kind="sos")
    eq(kinds(box2).count("alert"), 3)


def test_full_outbox_drops_location_reports_before_anything_else():
    d = fresh()
    box = Outbox(d, ID, boot=1, limit=4)
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


def identity(d):
    # As main.py draws it: through the randomness every board uses.
    return flash.boot_identity(d, hal.random_bytes)


def test_first_boot_draws_an_install_id_and_a_reboot_keeps_it():
    d = fresh()
    flash.makedirs(d)
    ident, boot = identity(d)
    eq(boot, 1)
    eq(len(ident), flash.ID_LEN)
    assert flash.valid_id(ident), ident
    eq(identity(d), (ident, 2))
    eq(identity(d), (ident, 3))
    eq(flash.read(d + "/install"), ident.encode())
    eq(flash.read(d + "/boot"), b"3")


def test_two_fresh_flash_file_systems_get_different_ids():
    ids = set()
    for _ in range(20):
        d = fresh()
        flash.makedirs(d)
        ident, boot = identity(d)
        eq(boot, 1)
        ids.add(ident)
    eq(len(ids), 20)


def rmtree(d):
    for e in os.ilistdir(d):
        p = d + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d)


def test_a_wipe_changes_the_id_and_no_mid_repeats():
    d = fresh()
    flash.makedirs(d)
    ident, boot = identity(d)
    box = Outbox(d + "/outbox", ident, boot)
    before = [box.new_mid() for _ in range(3)]
    rmtree(d)  # esptool erase_flash, then a reflash: the same device, nothing on flash
    flash.makedirs(d)
    ident2, boot2 = identity(d)
    eq(boot2, 1)  # the counter starts again...
    assert ident2 != ident, ident
    box2 = Outbox(d + "/outbox", ident2, boot2)
    after = [box2.new_mid() for _ in range(3)]
    eq([m.split(".", 1)[1] for m in after], [m.split(".", 1)[1] for m in before])  # ...and so do boot.seq
    eq(set(before) & set(after), set())  # but not the mids


def test_counter_without_an_id_is_an_upgrade_and_keeps_counting():
    d = fresh()
    flash.makedirs(d)
    with open(d + "/boot", "w") as f:
        f.write("41")  # the old firmware's counter, no id beside it
    ident, boot = identity(d)
    eq(boot, 42)
    assert flash.valid_id(ident)
    eq(identity(d), (ident, 43))


def test_no_counter_to_trust_draws_a_new_id():
    d = fresh()
    flash.makedirs(d)
    ident, _ = identity(d)
    with open(d + "/boot", "w") as f:
        f.write("garbage")  # unreadable: (id, boot) might repeat, so a new id
    ident2, boot = identity(d)
    eq(boot, 1)
    assert ident2 != ident
    os.remove(d + "/boot")  # a cut between writing the id and the counter
    ident3, boot = identity(d)
    eq(boot, 1)
    assert ident3 != ident2
    with open(d + "/install", "w") as f:
        f.write("../../etc")  # not an id this firmware made: replaced, counter kept
    ident4, boot = identity(d)
    eq(boot, 2)
    assert ident4 != ident3 and flash.valid_id(ident4)


def test_new_id_uses_every_bit_it_is_given():
    eq(flash.new_id(lambda n: b"\0" * n), "0" * flash.ID_LEN)
    eq(flash.new_id(lambda n: b"\xff" * n), "z" * flash.ID_LEN)
    eq(flash.new_id(lambda n: b"\0" * (n - 1) + b"\x21"), "11" + "0" * (flash.ID_LEN - 2))


mpytest.run(globals())
