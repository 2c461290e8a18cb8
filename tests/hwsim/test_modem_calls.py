"""hwsim's voice calls on their own (CPython, no firmware), as the SIMCom A76XX
and SIM7600 AT manuals give them: +CLCC state reports with AT+CLCC=1 (stat 2
dialling, 3 alerting, 0 active, 6 disconnect; 4 incoming), VOICE CALL: BEGIN,
VOICE CALL: END: <HHMMSS>, BUSY and NO ANSWER, all on the hwsim clock."""
from __future__ import annotations

import pytest

from hwsim.scenario import FarEndSpec, ScenarioError, parse
from tests.hwsim.test_device_model import modem

NUMBER = "+33400000000"
CALL_LINES = ("+CLCC", "VOICE CALL", "BUSY", "NO ", "RING", "+CLIP", "MISSED_CALL")


def listen(m) -> list[str]:
    """The call's lines the modem writes (not its boot banner or registration URCs)."""
    out: list[str] = []
    m._urc = lambda line: out.append(line) if line.startswith(CALL_LINES) else None
    return out


def clcc(stat: int, direction: int = 0, number: str = NUMBER) -> str:
    return f'+CLCC: 1,{direction},{stat},0,0,"{number}",{145 if number.startswith("+") else 129}'


def dialled(far: FarEndSpec, clcc_on: bool = True):
    m, rec = modem()
    rec.t = 20
    out = listen(m)
    m.far_end = far
    if clcc_on:
        assert m.answer("AT+CLCC=1") == ["OK"]
    assert m.answer(f"ATD{NUMBER};") == ["OK"]
    return m, rec, out


def run(m, rec, until: float, step: float = 0.25):
    while rec.t < until:
        rec.t = round(rec.t + step, 2)
        m._unsolicited()


def test_an_answered_call_rings_connects_and_ends_with_its_duration_as_hhmmss():
    m, rec, out = dialled(FarEndSpec(answer_after_s=5, hangup_after_s=134))
    run(m, rec, 21)
    assert out == [clcc(2), clcc(3)]  # dialling, then the far end rings
    assert m.answer("AT+CLCC") == [clcc(3), "OK"] and m.answer("AT+CLCC?") == ["+CLCC: 1", "OK"]
    run(m, rec, 25)
    assert out[2:] == [clcc(0), "VOICE CALL: BEGIN"]
    run(m, rec, 25 + 133.5)
    assert m.call is not None  # the far end hangs up 134 s after it answered, not before
    run(m, rec, 25 + 134.25)
    assert out[4:] == [clcc(6), "VOICE CALL: END: 000214"]  # 2 min 14 s
    assert m.call is None and m.answer("AT+CLCC") == ["OK"]
    ends = [e for e in rec.events if e["type"] == "call" and e["state"] == "end"]
    assert ends[-1]["duration_s"] == 134 and ends[-1]["why"] == "far end hung up"


def test_a_long_call_carries_its_hours_in_the_end_line():
    m, rec, out = dialled(FarEndSpec(answer_after_s=1, hangup_after_s=3723), clcc_on=False)
    run(m, rec, 21 + 3723 + 1, step=1.0)
    assert out == ["VOICE CALL: BEGIN", "VOICE CALL: END: 010203"]  # no +CLCC without AT+CLCC=1


@pytest.mark.parametrize("far,final,at", [(FarEndSpec(answer="busy", answer_after_s=4), "BUSY", 24),
                                          (FarEndSpec(answer="no_answer", no_answer_s=45), "NO ANSWER", 65)])
def test_a_busy_or_unanswered_far_end_ends_the_call_without_connecting(far, final, at):
    m, rec, out = dialled(far)
    run(m, rec, at - 0.5)
    assert m.call is not None and out == [clcc(2), clcc(3)]
    run(m, rec, at + 0.25)
    assert out[2:] == [clcc(6), final] and m.call is None
    assert "VOICE CALL: BEGIN" not in out


def test_the_watch_hanging_up_ends_the_call_and_the_far_end_hanging_up_too():
    m, rec, out = dialled(FarEndSpec(answer_after_s=2))
    run(m, rec, 30)
    assert m.answer("AT+CHUP") == ["OK"]
    assert out[-2:] == [clcc(6), "VOICE CALL: END: 000008"]
    assert m.answer(f"ATD{NUMBER};") == ["OK"]
    run(m, rec, 40)
    m.remote_hangup()
    assert out[-2:] == [clcc(6), "VOICE CALL: END: 000008"]


def test_an_incoming_call_reports_incoming_then_active_once_answered():
    m, rec = modem()
    rec.t = 20
    out = listen(m)
    m.answer("AT+CLCC=1")
    m.incoming_call("+33611111111")
    m._unsolicited()
    assert out == ["RING", clcc(4, 1, "+33611111111"), '+CLIP: "+33611111111",145,"",0,"",0']
    assert m.answer("ATA") == ["OK", "VOICE CALL: BEGIN"]
    assert out[-1] == clcc(0, 1, "+33611111111")
    rec.t = 37
    m.remote_hangup()
    assert out[-2:] == [clcc(6, 1, "+33611111111"), "VOICE CALL: END: 000017"]


def test_no_network_no_call_and_clcc_is_forgotten_at_power_off():
    m, rec = modem()
    rec.t = 5  # still booting: not registered
    assert m.answer(f"ATD{NUMBER};") == ["NO CARRIER"] and m.call is None
    m.answer("AT+CLCC=1")
    m._reset_state()
    assert m.answer("AT+CLCC?") == ["+CLCC: 0", "OK"]


def test_the_far_end_is_read_and_checked_from_the_scenario():
    sc = parse({"far_end": {"answer": "busy", "answer_after_s": 2}})
    assert sc.far_end == FarEndSpec(answer="busy", answer_after_s=2)
    with pytest.raises(ScenarioError, match="far_end"):
        parse({"far_end": {"answer": "maybe"}})
    with pytest.raises(ScenarioError, match="far_end"):
        parse({"far_end": {"ring_for": 3}})
