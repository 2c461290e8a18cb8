"""SIA DC-09 framing against what others published and an independent parser.

Vectors: pysiaalarm's own test cases (github.com/eavanvalkenburg/pysiaalarm,
tests/test_sia_package_cases.py: ``case_cl``, ``case_encrypted``, ``case_null``;
the key "AAAAAAAAAAAAAAAA", AES-128 taken as characters, is its tests/test_utils.py
``KEY``). The CRC's check value is the CRC catalogue's
for CRC-16/ARC ("123456789" -> 0xBB3D), the CRC DC-09 specifies. The parser that
reads our messages is pysiaalarm's (``SIAEvent.from_line``), and the answers we
read are the ones its receiver writes (``create_response``)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.utils import ResponseType

from cloud.domain.errors import Invalid
from cloud.domain.forwarding import dc09
from cloud.domain.forwarding.transport import checked_ip
from cloud.domain.outbound import OutboundHttp, OutboundPolicy, OutboundRefused

# (the whole line as published, without LF/CR): CRC and length cover what follows them.
PUBLISHED = [
    r'E5D50078"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019',
    r'60AB0078"*SIA-DCS"5994L0#AAA[5AB718E008C616BF16F6468033A11326B0F7546CAB230910BCA10E4DEBA42283C436E4F8EF'
    r'F50931070DDE36D5BB5F0C',
    r'76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9',
]


def test_crc16_check_value_and_published_messages():
    assert dc09.crc16("123456789") == 0xBB3D
    for line in PUBLISHED:
        assert f"{dc09.crc16(line[8:]):04X}" == line[:4], line
    # The NULL message's length field is right too (the others' are not, in the source).
    assert int(PUBLISHED[2][4:8], 16) == len(PUBLISHED[2][8:])


def test_published_encrypted_null_decrypts_to_its_timestamp():
    body = PUBLISHED[2].split("[", 1)[1]
    plain = dc09.decrypt(body, dc09.aes_key("A" * 16, "ascii"))  # AES-128, the key as characters
    assert plain.endswith("]_18:24:52,07-05-2020")
    assert dc09.parse_timestamp(plain) == datetime(2020, 7, 5, 18, 24, 52)


def _parsed(raw: bytes, account: str, key: str | None = None) -> SIAEvent:
    line = raw.decode("ascii")
    assert line[0] == "\n" and line[-1] == "\r"
    line = line[1:-1]
    assert int(line[4:8], 16) == len(line[8:])  # the length field, which pysiaalarm does not check
    ev = SIAEvent.from_line(line, {account: SIAAccount(account, key)})
    assert ev.valid_message, (ev.msg_crc, ev.calc_crc)
    return ev


@pytest.mark.parametrize("key", [None, "0123456789ABCDEF", "0123456789ABCDEF01234567", "K" * 32])
def test_messages_read_by_pysiaalarm(key):
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    kb = dc09.aes_key(key, "ascii") if key else None
    link = dc09.Link(account="1A2B", line="3", receiver="12", key=kb)
    cid = _parsed(dc09.message("ADM-CID", link, 42, dc09.event_data("ADM-CID", "1A2B", 1, "101", 7), now),
                  "1A2B", key)
    assert (cid.account, cid.sequence, cid.receiver, cid.line) == ("1A2B", "0042", "R12", "L3")
    assert (cid.event_qualifier, cid.event_type, cid.partition, cid.ri) == ("1", "101", "01", "007")
    assert cid.code == "QA" and cid.timestamp == now.replace(tzinfo=UTC)
    assert cid.response == ResponseType.ACK
    sia = _parsed(dc09.message("SIA-DCS", link, 9999, dc09.event_data("SIA-DCS", "1A2B", 3, "MH", 12), now),
                  "1A2B", key)
    assert (sia.code, sia.ri, sia.message) == ("MH", "1", "012")
    assert sia.response == ResponseType.ACK
    null = _parsed(dc09.message("NULL", link, 1, "", now), "1A2B", key)
    assert null.response == ResponseType.ACK


def test_answers_written_by_pysiaalarm_are_read():
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    for key in (None, "0123456789ABCDEF"):
        link = dc09.Link(account="ABC", key=dc09.aes_key(key, "ascii") if key else None)
        ack = _parsed(dc09.message("ADM-CID", link, 77, dc09.event_data("ADM-CID", "ABC", 1, "100", 1), now),
                      "ABC", key).create_response()
        answer = dc09.read_answer(ack, link.key)
        assert (answer.kind, answer.seq, answer.encrypted) == ("ACK", "0077", key is not None)
    # A message an hour old: the receiver NAKs it with its own time, which we read.
    late = dc09.message("ADM-CID", dc09.Link(account="ABC"), 5, dc09.event_data("ADM-CID", "ABC", 1, "100", 1),
                        now - timedelta(hours=1))
    nak = dc09.read_answer(_parsed(late, "ABC").create_response())
    assert nak.kind == "NAK" and nak.at is not None and abs((nak.at - now).total_seconds()) < 5
    # A code the receiver does not know: DUH.
    odd = dc09.message("SIA-DCS", dc09.Link(account="ABC"), 6, "#ABC|Nri1/ZX001", now)
    assert dc09.read_answer(_parsed(odd, "ABC").create_response()).kind == "DUH"
    with pytest.raises(ValueError):
        dc09.read_answer(b'\n0000001B"ACK"0001L0#ABC[]\r')  # a wrong CRC


def test_pad_makes_whole_blocks_and_keys_are_checked():
    for n in range(0, 40):
        text = dc09.padded("x" * n)
        assert len(text) % 16 == 0 and text.endswith("|" + "x" * n) and "|" not in text[:-n - 1]
    with pytest.raises(Invalid):
        dc09.aes_key("0123", "hex")
    assert len(dc09.aes_key("00" * 24, "hex")) == 24


def test_receiver_host_passes_the_outbound_guard():
    """No packet is sent: literal addresses need no lookup, and each is refused by the guard."""
    strict = OutboundHttp(OutboundPolicy())
    for host in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "0x7f000001", "::1"):
        with pytest.raises(OutboundRefused):
            checked_ip(strict, host, 12000)
    assert checked_ip(OutboundHttp(OutboundPolicy(allow_loopback=True)), "127.0.0.1", 12000) == "127.0.0.1"


def test_codes_agree_with_pysiaalarms_published_contact_id_to_sia_mapping():
    """pysiaalarm/data/adm_mapping.py maps each Contact ID code and qualifier to the SIA
    code a receiver files it under; ours must say the same (384, the wearable's low
    battery, is not in that table: SIA XT/XR, transmitter battery, from its SIA table)."""
    from pysiaalarm.utils import ADM_MAPPING, SIA_CODES

    from cloud.domain.forwarding.codes import CODES, NEW, RESTORE, code_for
    for event, c in CODES.items():
        assert code_for("ADM-CID", event, NEW) == c.cid
        for q, sia in ((NEW, c.sia), (RESTORE, c.sia_restore)):
            assert code_for("SIA-DCS", event, q) == sia and sia in SIA_CODES
            if c.cid != "384":
                assert ADM_MAPPING[c.cid][str(q)] == sia, (event, q)
    assert SIA_CODES["XT"].type == "Transmitter Battery Trouble"
