# The call's state from the modem's own lines (app/calls.py), driven through the
# real Watch with a fake board and modem: what the cloud is told, and when.
import asyncio
import random
import mpytest
from mpytest import eq
from fakeboard import FakeBoard, FakeModem, sent
from app.watch import Watch
from app.calls import clcc_stat, end_seconds

BASE = mpytest.tmpdir("calls")
CENTRE = "+33400000000"
_n = [0]


class CallModem(FakeModem):
    ready = True

    def __init__(self, dial_answer="OK"):
        self.dial_answer = dial_answer
        self.dialled = []
        self.hung_up = 0

    async def dial(self, number):
        self.dialled.append(number)
        return self.dial_answer

    async def answer(self):
        return True

    async def hangup(self):
        self.hung_up += 1
        return True


def new_watch(modem=None, **cfg):
    _n[0] += 1
    w = Watch(FakeBoard(BASE + "/w%d" % _n[0]), install="ut", boot=5)
    w.board.audio = lambda state: w.board.shown.append("audio " + state)
    w.board.display_off = lambda: None
    w.modem = FakeModem()
    w.radio.modem = modem or CallModem()
    w.radio.up.set()
    w.cfg.update(cfg)
    return w


def calls_told(w):
    return [p["call"] for k, p in sent(w) if k == "status" and "call" in p]


def clcc(stat, direction=0, number=CENTRE):
    return '+CLCC: 1,%d,%d,0,0,"%s",145' % (direction, stat, number)


def dial(w, number=CENTRE, cid="c-42"):
    asyncio.run(w._calls().dial(number, need_network=False, cid=cid))


def test_end_line_gives_hhmmss_as_seconds():
    eq(end_seconds("VOICE CALL: END: 000214"), 134)
    eq(end_seconds("VOICE CALL:END:000017"), 17)  # the manuals' examples, without spaces
    eq(end_seconds("VOICE CALL: END: 010203"), 3723)
    eq(end_seconds("VOICE CALL: END"), None)
    eq(end_seconds("VOICE CALL: END: 12"), None)
    eq(clcc_stat(clcc(3)), "3")
    eq(clcc_stat("+CLCC: 1"), None)


def test_call_back_reports_dialling_ringing_connected_and_the_end_with_the_modem_duration():
    w = new_watch()
    dial(w)
    c = w.calls
    for line in (clcc(2), clcc(3), clcc(0), "VOICE CALL: BEGIN"):
        c.urc(line)
    w.board.clock.now += 5000
    for line in (clcc(6), "VOICE CALL: END: 000214", "NO CARRIER"):
        c.urc(line)
    told = calls_told(w)
    eq([t["state"] for t in told], ["dialing", "alerting", "active", "ended"])
    eq(told[-1], {"state": "ended", "dir": "out", "number": CENTRE, "cid": "c-42", "end": "completed", "dur": 134})
    assert all(t["cid"] == "c-42" and t["dir"] == "out" for t in told)
    eq(c.state, None)
    eq(w.radio.needs.get("call"), None)  # the call no longer holds the radio...
    assert w.radio.needs.get("call_report")  # ...but its end is not with the cloud yet
    shown = w.board.shown
    assert shown.count("audio on") == 1 and shown[-1] == "audio off" and "Call ended" in shown, shown


def test_busy_and_no_answer_end_unconnected_without_a_duration():
    for final, end in (("BUSY", "busy"), ("NO ANSWER", "no_answer"), ("NO CARRIER", "failed")):
        w = new_watch()
        dial(w)
        for line in (clcc(2), clcc(3), clcc(6), final):
            w.calls.urc(line)
        told = calls_told(w)
        eq([t["state"] for t in told], ["dialing", "alerting", "ended"])
        eq(told[-1]["end"], end)
        assert "dur" not in told[-1]


def test_a_dial_refused_at_once_is_reported_with_the_modem_answer():
    w = new_watch(CallModem(dial_answer="NO CARRIER"))
    dial(w)
    eq([(t["state"], t["end"]) for t in calls_told(w)], [("ended", "failed")])
    w = new_watch(CallModem(dial_answer="BUSY"))
    dial(w)
    eq(calls_told(w)[-1]["end"], "busy")


def test_a_duration_the_modem_did_not_give_is_counted_by_the_watch():
    w = new_watch()
    dial(w, cid=None)
    w.calls.urc("VOICE CALL: BEGIN")
    w.board.clock.now += 61500
    w.calls.urc("VOICE CALL: END")
    told = calls_told(w)
    eq(told[-1]["dur"], 61)
    assert "cid" not in told[-1]


def test_a_second_call_back_during_a_call_does_not_disturb_it():
    m = CallModem()
    w = new_watch(m)
    dial(w)
    w.calls.urc("VOICE CALL: BEGIN")
    dial(w, cid="c-43")
    eq(m.dialled, [CENTRE])
    eq(w.calls.cid, "c-42")
    eq(w.calls.state, "active")


def test_the_centre_calling_is_answered_and_reported():
    w = new_watch(callcenter_number=CENTRE)
    c = w._calls()
    c.urc("RING")
    c.urc(clcc(4, 1))
    c.urc('+CLIP: "%s",145,"",0,"",0' % CENTRE)
    asyncio.run(c.answer())
    c.urc("VOICE CALL: BEGIN")
    c.urc(clcc(0, 1))
    c.urc("VOICE CALL:END:000017")
    told = calls_told(w)
    eq([t["state"] for t in told], ["incoming", "active", "ended"])
    eq(told[-1], {"state": "ended", "dir": "in", "number": CENTRE, "end": "completed", "dur": 17})


def test_an_unanswered_ringing_call_is_reported_missed():
    w = new_watch(whitelist=["+33611111111"])
    c = w._calls()
    c.urc('+CLIP: "+33611111111",145,"",0,"",0')
    c.urc("MISSED_CALL: 10:02AM +33611111111")
    eq([(t["state"], t.get("end")) for t in calls_told(w)], [("incoming", None), ("ended", "missed")])


def test_a_caller_rejected_in_kids_mode_is_never_reported():
    m = CallModem()
    w = new_watch(m, kids_mode=True, callcenter_number=CENTRE)
    c = w._calls()
    c.urc('+CLIP: "+33799999999",145,"",0,"",0')
    c.urc("NO CARRIER")
    asyncio.run(c._reject())
    eq(calls_told(w), [])
    eq(c.state, None)


def test_garbage_call_lines_change_nothing():
    w = new_watch()
    c = w._calls()
    for line in ("+CLCC:", "+CLCC: x,y", clcc(9), "VOICE CALL:", "VOICE CALL: END: zz", "BUSY"):
        c.urc(line)
    eq(calls_told(w), [])
    eq(c.state, None)


LINES = ('+CLIP: "+33611111111",145,"",0,"",0', clcc(2), clcc(3), clcc(0), clcc(4, 1), clcc(6),
         "VOICE CALL: BEGIN", "VOICE CALL: END: 000214", "VOICE CALL:END:000017", "BUSY", "NO ANSWER",
         "NO CARRIER", "MISSED_CALL: 10:02AM +33611111111", "RING")
ALPHABET = '+:,"0123456789 ENDCLVOIABGRx\xff'
STATES = ("dialing", "alerting", "incoming", "active", "ended")


def mangle(line):
    r = random.getrandbits(2)
    if r == 0:
        return line[:random.getrandbits(5) % (len(line) + 1)]
    if r == 1:
        i = random.getrandbits(5) % (len(line) + 1)
        return line[:i] + random.choice(ALPHABET) + line[i:]
    return line


def test_random_and_mangled_call_lines_never_raise_and_only_report_what_the_contract_allows():
    random.seed(7)
    w = new_watch()
    c = w._calls()
    for i in range(300):
        if i % 25 == 0 and c.state is None:
            dial(w, cid="c-%d" % i)
        c.urc(mangle(random.choice(LINES)))
    for t in calls_told(w):
        assert t["state"] in STATES and t["dir"] in ("out", "in"), t
        assert 0 <= t.get("dur", 0) <= 359999, t


mpytest.run(globals())
