"""The whole SOS path over the one modem UART: the real firmware's MQTT goes
out as AT+CIPSEND payloads and comes back in +CIPRXGET reads (or, over TLS, as
AT+CCHSEND payloads and +CCHRECV reads: the modem encrypts), interleaved with
the radio's own AT polls, and the watch has no other wire to the network."""
from __future__ import annotations

import re

import pytest

from .conftest import DEV


class Tap:
    """Both directions of the UART, as bytes (wraps the emulator's handler)."""

    def __init__(self, serve):
        self.serve = serve
        self.to_modem = bytearray()
        self.from_modem = bytearray()

    async def __call__(self, reader, writer):
        tap = self

        class R:
            async def read(self, n=-1):
                data = await reader.read(n)
                tap.to_modem += data
                return data

        class W:
            def __getattr__(self, name):
                return getattr(writer, name)

            def write(self, data):
                tap.from_modem += data
                writer.write(data)
        return await self.serve(R(), W())


def _framed(stream: bytes, header: bytes) -> list[tuple[int, bytes]]:
    """(offset, payload) for every header whose first group is a byte count of raw data after it."""
    out = []
    for m in re.finditer(header, stream):
        out.append((m.start(), stream[m.end():m.end() + int(m.group(1))]))
    return out


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """MQTT packets (type, body) in a byte stream."""
    out, i = [], 0
    while i < len(data):
        kind, mult, length, j = data[i] >> 4, 1, 0, i + 1
        while True:
            b = data[j]
            length += (b & 0x7F) * mult
            mult *= 128
            j += 1
            if not b & 0x80:
                break
        out.append((kind, data[j:j + length]))
        i = j + length
    return out


# what each path's commands look like on the UART (A76XX manual: TCP/IP and SSL chapters)
PATHS = {
    "tcp": {"open": (b"AT+NETOPEN\r\n", b'AT+CIPOPEN=0,"TCP","127.0.0.1",'), "send": rb"AT\+CIPSEND=0,(\d+)\r\n",
            "read": rb"\+CIPRXGET: 2,0,(\d+),\d+\r\n", "ask": b"AT+CIPRXGET=2,0,"},
    "tls": {"open": (b"AT+CCHSTART\r\n", b'AT+CCHOPEN=0,"127.0.0.1",'), "send": rb"AT\+CCHSEND=0,(\d+)\r\n",
            "read": rb"\+CCHRECV: DATA,0,(\d+)\r\n", "ask": b"AT+CCHRECV=0,"},
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_sos_reaches_the_broker_and_its_puback_comes_back_over_the_one_uart(make_watch, cloud, path):
    cmds = PATHS[path]
    w = make_watch(device_extra={"linger_ms": 3_600_000}, tls=path == "tls")
    tap = Tap(w.modem.serve)
    w.modem.serve = tap
    with w:
        assert set(w._ports) == {"bus", "uart", "i2c"}  # no wire to the network beside the UART
        cloud.wait("status", timeout=60)
        w.press("red", 1.2)
        alert = cloud.wait("alert", timeout=60)[0]
        cloud.command(DEV, cid="uart-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 60)
        up, down = bytes(tap.to_modem), bytes(tap.from_modem)
    # the bearer and the connection were opened with the manual's commands
    assert cmds["open"][0] in up and cmds["open"][1] in up
    # the alert went up as the payload of an AT+CIPSEND (AT+CCHSEND)
    sends = _framed(up, cmds["send"])
    topic = f"pers/v1/{DEV}/alert".encode()
    alert_pids = set()
    for _, payload in sends:
        for kind, body in _packets(payload):
            if kind == 3 and body[2:2 + len(topic)] == topic:
                alert_pids.add(body[2 + len(topic):4 + len(topic)])
    assert alert_pids, "no alert PUBLISH in any AT+CIPSEND payload"
    # its PUBACK came back inside a +CIPRXGET: 2 read, and so did the cloud's ack command
    reads = b"".join(p for _, p in _framed(down, cmds["read"]))
    got = _packets(reads)
    assert any(kind == 4 and body in alert_pids for kind, body in got), "no PUBACK for the alert"
    assert any(kind == 3 and b"alert_ack" in body for kind, body in got)
    # the radio kept polling on the same UART while the connection was open
    assert up.count(b"AT+CSQ\r\n", up.index(cmds["open"][1])) >= 1
    assert up.count(cmds["ask"]) >= 2
