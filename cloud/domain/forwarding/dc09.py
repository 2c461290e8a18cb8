"""SIA DC-09 (ANSI/SIA DC-09-2013/2021) framing: what goes on the wire, and reading
the receiver's answer. No sockets here (transport.py) and no database (outbox.py).

A message is ``<LF><crc><0LLL><"id"><seq><Rrcvr><Lpref><#acct>[<data>]<timestamp><CR>``:
the CRC (CRC-16, polynomial 0x8005 reflected, initial 0, four upper-case hex
digits) and the length (``0`` then three hex digits) both cover the text from the
first ``"`` to the end of the timestamp. Encrypted (``"*SIA-DCS"``), everything after
``[`` is AES-CBC with a zero IV over ``<pad>|<data>]<timestamp>``, the random pad
bringing the text to a whole number of 16-byte blocks, sent as upper-case hex."""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cloud.domain.errors import Invalid

FORMATS = ("ADM-CID", "SIA-DCS")
_ZERO_IV = bytes(16)
_PAD_ALPHABET = string.ascii_letters + string.digits  # the pad must not contain | [ ]
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def crc16(text: str | bytes) -> int:
    """The DC-09 CRC: CRC-16/ARC (poly 0x8005 reflected as 0xA001, init 0, no final xor)."""
    data = text.encode("ascii") if isinstance(text, str) else text
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(body: str) -> bytes:
    """Wrap ``"id"...timestamp`` in LF, CRC, length and CR."""
    if len(body) > 0xFFF:
        raise Invalid("a DC-09 message is at most 4095 characters")
    return f"\n{crc16(body):04X}0{len(body):03X}{body}\r".encode("ascii")


def timestamp(at: datetime) -> str:
    """``_HH:MM:SS,MM-DD-YYYY`` in UTC, as the standard writes it."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.strftime("_%H:%M:%S,%m-%d-%Y")


def parse_timestamp(text: str) -> datetime | None:
    """The (naive, UTC) time in a ``_HH:MM:SS,MM-DD-YYYY`` anywhere in ``text``."""
    m = re.search(r"_(\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})", text)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%H:%M:%S,%m-%d-%Y")
    except ValueError:
        return None


def aes_key(key: str, encoding: str) -> bytes:
    """The AES key (16, 24 or 32 bytes: AES-128/192/256) from its configured text.
    ``hex``: the standard's notation, 32/48/64 hex digits. ``ascii``: the characters
    themselves are the key (16/24/32 of them), as many panels and receivers take it
    (pysiaalarm among them)."""
    key = key.strip()
    if encoding == "hex":
        if not _HEX.match(key) or len(key) not in (32, 48, 64):
            raise Invalid("a hex AES key has 32, 48 or 64 hex digits (AES-128, -192 or -256)")
        return bytes.fromhex(key)
    if encoding == "ascii":
        if len(key) not in (16, 24, 32) or not key.isascii():
            raise Invalid("an ASCII AES key has 16, 24 or 32 characters (AES-128, -192 or -256)")
        return key.encode("ascii")
    raise Invalid("the key encoding is 'hex' or 'ascii'")


def encrypt(plain: str, key: bytes) -> str:
    enc = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).encryptor()
    return (enc.update(plain.encode("ascii")) + enc.finalize()).hex().upper()


def decrypt(hex_text: str, key: bytes) -> str:
    raw = bytes.fromhex(hex_text)
    if len(raw) % 16:
        raise ValueError("ciphertext is not whole AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV)).decryptor()
    return (dec.update(raw) + dec.finalize()).decode("ascii", "replace")


def padded(text: str) -> str:
    """``<random pad>|text``, a whole number of AES blocks (the pad is at least one
    character, so the ``|`` always has something before it)."""
    pad_len = 16 - (len(text) + 1) % 16 or 16
    return "".join(secrets.choice(_PAD_ALPHABET) for _ in range(pad_len)) + "|" + text


@dataclass(frozen=True)
class Link:
    """The prefixes a receiver is configured with: account (3-16 hex), receiver number
    (optional, 1-6 hex), line/prefix number (1-6 hex), and the key when encrypted."""
    account: str
    line: str = "0"
    receiver: str | None = None
    key: bytes | None = None

    def header(self, seq: int) -> str:
        rcv = f"R{self.receiver}" if self.receiver else ""
        return f"{seq:04d}{rcv}L{self.line}#{self.account}"


def event_data(fmt: str, account: str, qualifier: int, code: str, zone: int, partition: int = 1) -> str:
    """The ``[...]`` content, without brackets. ADM-CID: ``#acct|Q EEE GG ZZZ``
    (qualifier 1 new event, 3 restore, 6 previously reported); SIA-DCS:
    ``#acct|Nri<partition>/<code><zone>``."""
    if fmt == "ADM-CID":
        return f"#{account}|{qualifier}{code} {partition:02d} {zone:03d}"
    if fmt == "SIA-DCS":
        return f"#{account}|Nri{partition}/{code}{zone:03d}"
    raise Invalid(f"message format must be one of {', '.join(FORMATS)}")


def message(fmt: str, link: Link, seq: int, data: str, at: datetime) -> bytes:
    """A whole DC-09 message. ``fmt`` is ADM-CID, SIA-DCS or NULL (the supervision poll,
    whose data is empty). ``seq`` is 1-9999."""
    if not 0 < seq <= 9999:
        raise ValueError("sequence numbers are 0001-9999")
    ts = timestamp(at)
    if link.key is None:
        return frame(f'"{fmt}"{link.header(seq)}[{data}]{ts}')
    return frame(f'"*{fmt}"{link.header(seq)}[{encrypt(padded(f"{data}]{ts}"), link.key)}')


@dataclass(frozen=True)
class Answer:
    kind: str  # ACK, NAK, DUH, RSP
    seq: str
    encrypted: bool
    body: str
    at: datetime | None  # the receiver's clock (a NAK carries it)


_ANSWER = re.compile(r'^"(?P<enc>\*?)(?P<kind>ACK|NAK|DUH|RSP)"(?P<seq>\d{4})')


def read_answer(raw: bytes, key: bytes | None = None) -> Answer:
    """The receiver's answer (one line, LF...CR), its CRC checked; ValueError if it is
    not a DC-09 answer. An encrypted answer's timestamp is read after decryption."""
    text = raw.decode("ascii", "replace").strip("\r\n\x00 ")
    if len(text) < 8:
        raise ValueError(f"answer too short: {text!r}")
    body = text[8:]
    if f"{crc16(body):04X}" != text[:4].upper():
        raise ValueError(f"answer CRC mismatch: {text!r}")
    m = _ANSWER.match(body)
    if not m:
        raise ValueError(f"not an ACK, NAK, DUH or RSP: {text!r}")
    clear = body
    if m.group("enc") and key is not None and "[" in body:
        try:
            clear = body + decrypt(body.split("[", 1)[1].strip(), key)
        except ValueError:
            pass
    return Answer(m.group("kind"), m.group("seq"), bool(m.group("enc")), body, parse_timestamp(clear))


def skew(receiver_at: datetime, ours: datetime) -> timedelta:
    """What to add to our clock to stamp messages with the receiver's time."""
    return receiver_at - ours
