# The alarm state machine and command handling, driven through the real Watch
# with a fake board.
import json
import os
import mpytest
from mpytest import eq
from fakeboard import FakeBoard, FakeModem, sent
from app.watch import Watch

BASE = mpytest.tmpdir("watch")
FIX = os.getenv("PERS_FIXTURES")
_n = [0]


def new_watch():
    _n[0] += 1
    w = Watch(FakeBoard(BASE + "/w%d" % _n[0]), install="ut", boot=17)
    w.modem = FakeModem()
    return w


def cmd(w, **fields):
    doc = {"v": 1, "ts": 1}
    doc.update(fields)
    w.on_message("pers/v1/dev-0001/cmd", json.dumps(doc).encode())


def acks(w):
    return [p for k, p in sent(w) if k == "ack"]


def test_press_raises_one_alert_with_location_and_cell():
    w = new_watch()
    mid = w.alarm.raise_alert()
    eq(w.board.shown[-1], "Calling for help")
    assert w.board.buzz, "no vibration"
    (kind, a), = sent(w)
    eq(kind, "alert")
    eq((a["mid"], a["kind"], a["trigger"], a["ts"]), (mid, "sos", "button", 1763780000))
    eq(a["loc"]["src"], "gnss")
    eq(a["cell"]["cid"], 67890)
    eq(a["batt"]["pct"], 64)


def test_old_fix_is_sent_as_last_known():
    w = new_watch()
    w.modem.age = 10 * 60 * 1000
    w.alarm.raise_alert()
    eq(sent(w)[0][1]["loc"]["src"], "last")


def test_stages_drive_the_display_and_the_outbox():
    w = new_watch()
    mid = w.alarm.raise_alert()
    cmd(w, cid="c1", type="alert_ack", ref=mid, stage="received")
    eq(w.board.shown[-1], "Help is coming")
    eq([k for k, _ in sent(w)], ["ack"])  # the alert left, the ack waits
    eq(acks(w)[0]["cid"], "c1")
    eq(acks(w)[0]["ok"], True)
    cmd(w, cid="c2", type="alert_ack", ref=mid, stage="operator", text="An operator is with you")
    eq(w.board.shown[-1], "An operator is with you")
    cmd(w, cid="c3", type="alert_ack", ref=mid, stage="closed", text="Alarm closed")
    eq(w.board.shown[-1], "Alarm closed")
    eq(w.alarm.state, "idle")
    cmd(w, cid="c4", type="alert_ack", ref=mid, stage="received")  # late, after closed
    eq(w.board.shown[-1], "Alarm closed")


def test_received_without_text_says_help_is_coming():
    w = new_watch()
    mid = w.alarm.raise_alert()
    payload = json.load(open(FIX + "/cmd_alert_ack_received.json"))["payload"]
    payload["ref"] = mid
    del payload["text"]
    w.on_message("pers/v1/dev-0001/cmd", json.dumps(payload).encode())
    eq(w.board.shown[-1], "Help is coming")


def test_second_press_is_the_same_alarm():
    w = new_watch()
    w.alarm.raise_alert()
    shown = len(w.board.shown)
    w.alarm.raise_alert()
    eq(w.alarm.state, "calling")
    eq(len(w.board.shown), shown)  # no second "Calling for help" screen
    eq([k for k, _ in sent(w)], ["alert", "alert"])


def test_repeated_cid_acked_again_not_acted_twice():
    w = new_watch()
    cmd(w, cid="r1", type="ring", seconds=2)
    cmd(w, cid="r1", type="ring", seconds=2)
    eq(w.board.buzz, [2000])
    eq([a["cid"] for a in acks(w)], ["r1", "r1"])


def test_unsupported_and_bad_commands_are_acked_not_ok():
    w = new_watch()
    cmd(w, cid="x1", type="teleport", where="moon")
    cmd(w, cid="x2", type="ring", seconds="loud")
    got = acks(w)
    eq([(a["cid"], a["ok"]) for a in got], [("x1", False), ("x2", False)])
    assert got[1]["err"]


def test_locate_sends_a_request_report():
    w = new_watch()
    cmd(w, cid="l1", type="locate")
    kinds = [k for k, _ in sent(w)]
    eq(sorted(kinds), ["ack", "loc"])
    loc = [p for k, p in sent(w) if k == "loc"][0]
    eq(loc["reason"], "request")


def test_newer_config_is_applied_and_kept_older_ignored():
    w = new_watch()
    doc = json.load(open(FIX + "/config.json"))["payload"]
    doc["sos_hold_ms"] = 1500
    w.on_message("pers/v1/dev-0001/config", json.dumps(doc).encode())
    eq(w.cfg["sos_hold_ms"], 1500)
    doc["version"] = 1
    doc["sos_hold_ms"] = 9
    w.on_message("pers/v1/dev-0001/config", json.dumps(doc).encode())
    eq(w.cfg["sos_hold_ms"], 1500)
    again = Watch(w.board, install="ut", boot=18)  # after a reboot
    eq(again.cfg["version"], 3)


def test_open_alarm_survives_reboot():
    w = new_watch()
    w.alarm.raise_alert()
    again = Watch(w.board, install="ut", boot=18)
    again.alarm.restore()
    eq(again.alarm.state, "calling")


mpytest.run(globals())
