"""The two watch protocols against frames nobody here wrote (traccar_frames.py), and
the pitfalls each with its own frame."""
import json

import pytest

from cloud import protocol
from cloud.gateway import iw, messages, setracker
from tests.cloud.gateway.traccar_frames import IW, SETRACKER


def _one_3g(raw: str) -> setracker.Frame:
    frames = setracker.split(bytearray(raw.encode()), 16384)
    assert len(frames) == 1
    return frames[0]


@pytest.mark.parametrize("raw,expected,reply", SETRACKER, ids=[f[0][:28] for f in SETRACKER])
def test_setracker_frames_of_traccar(raw, expected, reply):
    typ, kind, alarm, fix, lat, lon, batt, cells, wifi, length_ok = expected
    frame = _one_3g(raw)
    rep, answer = setracker.decode(frame)
    assert (frame.type, frame.length_ok, answer) == (typ, length_ok, reply)
    assert (rep.kind, rep.alarm, rep.valid, rep.batt, len(rep.cells), len(rep.wifi)) == (
        kind, alarm, fix, batt, cells, wifi)
    if lat is not None:
        assert rep.lat == pytest.approx(lat, abs=1e-5) and rep.lon == pytest.approx(lon, abs=1e-5)
    # and every one of them makes a message the contract accepts
    topic, payload = messages.up_message(frame.imei, rep, messages.frame_mid(frame.imei, frame.content))
    _, up_kind, msg = protocol.parse_up(topic, payload)
    assert up_kind == {"alarm": "alert", "location": "loc", "heartbeat": "status"}[kind]
    if alarm:
        assert msg.kind == alarm


@pytest.mark.parametrize("raw,expected,reply", IW, ids=[f[0][:16] for f in IW])
def test_iw_frames_of_traccar(raw, expected, reply):
    frames = iw.split(bytearray(raw.encode()), 16384)
    assert len(frames) == 1
    frame = frames[0]
    answer = iw.login_reply() if frame.type == "AP00" else iw.reply(frame)
    assert answer.decode().startswith(reply)
    if frame.type == "AP00":
        assert iw.login_imei(frame) == "353456789012345"
        assert len(answer) == len("IWBP00,20260101000000,0#")
        return
    if expected is None:
        assert iw.serial_of(frame) == "080835"
        return
    typ, kind, alarm, fix, lat, lon, batt, cells, wifi = expected
    rep = iw.decode(frame)
    assert (frame.type, rep.kind, rep.alarm, rep.valid, rep.batt, len(rep.cells), len(rep.wifi)) == (
        typ, kind, alarm, fix, batt, cells, wifi)
    if lat is not None:
        assert rep.lat == pytest.approx(lat, abs=1e-5) and rep.lon == pytest.approx(lon, abs=1e-5)
    topic, payload = messages.up_message("353456789012345", rep, messages.new_mid())
    protocol.parse_up(topic, payload)


# --- the pitfalls -------------------------------------------------------------------

def _alarm_frame(status: str, fix: str = "A", kind: str = "AL") -> str:
    content = (f"{kind},051226,101500,{fix},48.856600,N,2.352200,E,0.00,0.0,0.0,6,80,15,0,0,{status},"
               "1,1,208,1,10,20,140")
    return f"[3G*3528390000001*{len(content):04X}*{content}]"


def test_sos_and_low_battery_bits_together_are_an_sos():
    rep, _ = setracker.decode(_one_3g(_alarm_frame("00010001")))  # bit 16 SOS + bit 0 low battery
    assert rep.alarm == "sos"
    rep, _ = setracker.decode(_one_3g(_alarm_frame("00030000")))  # bit 16 SOS + bit 17 low battery
    assert rep.alarm == "sos"


def test_unplugging_the_charger_is_no_sos_but_is_replied_to():
    rep, reply = setracker.decode(_one_3g(_alarm_frame("00004000")))  # bit 14: external power cut
    assert rep.alarm is None and rep.kind == "location" and rep.note == "charger unplugged"
    assert reply == "AL"
    topic, _ = messages.up_message("3528390000001", rep, "m1")
    assert topic.endswith("/loc")


def test_al_lte_without_a_fix_is_still_an_sos_with_its_cell():
    rep, reply = setracker.decode(_one_3g(_alarm_frame("00010000", fix="V", kind="AL_LTE")))
    assert (rep.alarm, rep.valid, reply) == ("sos", False, "AL")
    topic, payload = messages.up_message("3528390000001", rep, "m2")
    body = json.loads(payload)
    assert topic.endswith("/alert") and "loc" not in body
    assert body["cell"] == {"mcc": 208, "mnc": 1, "lac": 10, "cid": 20}  # for the ingest's cell lookup


def test_a_wrong_length_field_still_decodes_the_alarm_and_the_next_frame():
    good = _alarm_frame("00010000")
    liar = good.replace(good.split("*")[2], "0010", 1)  # says 16 bytes
    short = good.replace(good.split("*")[2], "0FFF", 1)  # says more than there is
    buf = bytearray((liar + short + "[3G*3528390000001*0002*LK]").encode())
    frames = setracker.split(buf, 16384)
    # The one that claims too much is cut at its ']' only once more bytes prove it ends there.
    assert [f.type for f in frames] == ["AL", "AL", "LK"] and not frames[0].length_ok
    assert all(setracker.decode(f)[0].alarm == "sos" for f in frames[:2])


def test_an_alarm_frame_with_an_unreadable_body_is_an_sos():
    rep, reply = setracker.decode(_one_3g("[3G*3528390000001*0008*AL,junk!]"))
    assert (rep.alarm, reply) == ("sos", "AL")
    rep = iw.decode(iw.split(bytearray(b"IWAP10garbage#"), 4096)[0])
    assert rep.alarm == "sos"


def test_garbage_and_oversize_are_frame_errors():
    with pytest.raises(setracker.FrameError):
        setracker.split(bytearray(b"GET / HTTP/1.1\r\n"), 4096)
    with pytest.raises(setracker.FrameError):
        setracker.split(bytearray(b"[3G*1234*0FFF*" + b"x" * 5000), 4096)
    with pytest.raises(setracker.FrameError):
        iw.split(bytearray(b"IWAP01" + b"9" * 5000), 4096)
    assert setracker.split(bytearray(b"[3G*12"), 4096) == []  # incomplete: wait for more


def test_downlinks():
    assert setracker.encode("3G", "1234", None, "CR") == b"[3G*1234*0002*CR]"
    assert setracker.encode("ZJ", "1234", "0001", "AL") == b"[ZJ*1234*0001*0002*AL]"
    assert setracker.command({"type": "call", "number": "+33100000000"}) == [("CALL,+33100000000", "CALL")]
    assert [c for c, _ in setracker.config({"callcenter_number": "+331", "whitelist": ["+332"],
                                            "fall_detection": False})] == [
        "SOS,+331,,", "CENTER,+331", "WHITELIST1,+332,,,,", "FALLDOWN,0"]
    assert iw.command({"type": "locate"}, "353456789012345", "000001") == [b"IWBP16,353456789012345,000001#"]
    serials = iter(["000002", "000003", "000004"])
    out = iw.config({"callcenter_number": "+331", "whitelist": ["+332"], "fall_detection": True}, "35345",
                    serials.__next__)
    assert out[0] == b"IWBP12,35345,000002,+331,,#" and out[1] == b"IWBP14,35345,000003,|+332#"
    assert bytes.fromhex(out[2].decode().split(",")[3].rstrip("#")) == b">*fall@1*<"
