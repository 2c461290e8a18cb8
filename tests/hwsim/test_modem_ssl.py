"""The emulated modem's SSL commands on its UART (hwsim/modem_ssl.py), with no
firmware: a client speaks AT over a real loopback UART, downloads a CA into the
modem's file system and opens a TLS session to a loopback TLS echo server (Python's
``ssl``, with a certificate from cloud/tls.py). What is asserted is what the SIMCom
A76XX AT Command Manual's SSL chapter gives: OK first and the result as a URC, the
">" prompt, the "+CCHRECV: DATA" header and its raw bytes, result code 15 (handshake
error) for a CA that did not sign the server's certificate or a name it does not
hold, and TLS 1.2 at most, as the A76XX offers (AT+CSSLCFG "sslversion")."""
from __future__ import annotations

import asyncio
import ssl

from cloud.tls import ensure_certificates
from hwsim.events import Recorder
from hwsim.link import AirLink
from hwsim.modem import ModemEmulator
from hwsim.scenario import ModemSpec, WorldSpec
from hwsim.world import World
from tests.hwsim.test_modem_socket import SPEED, Uart


async def _scenario(tmp_path) -> None:
    good = ensure_certificates(tmp_path / "good", ["127.0.0.1"])  # not "localhost": a name it does not hold
    other = ensure_certificates(tmp_path / "other", ["127.0.0.1"])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(good.certfile, good.keyfile)
    versions: list[str] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        versions.append(writer.get_extra_info("ssl_object").version())
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    rec = Recorder()
    rec.speed = SPEED
    modem = ModemEmulator(World(WorldSpec(), rec.now), ModemSpec(family="A7670"), rec)
    modem.air = AirLink(rec, modem.data_ready)
    uart_server = await asyncio.start_server(modem.serve, "127.0.0.1", 0)
    tls_server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
    port = tls_server.sockets[0].getsockname()[1]
    u = Uart(*await asyncio.open_connection("127.0.0.1", uart_server.sockets[0].getsockname()[1]))
    await u.expect(rb"RDY\r\n", timeout=30)
    await u.at("ATE0")
    # the CA into the modem's file system: the prompt, exactly the bytes, OK
    await u.at("AT+CCERTLIST", rb"\r\nOK\r\n")
    assert b"+CCERTLIST:" not in u.seen
    for name, files in (("ca.pem", good), ("other.pem", other)):
        pem = files.cafile.read_bytes()
        await u.send(b'AT+CCERTDOWN="%s",%d\r\n' % (name.encode(), len(pem)))
        await u.expect(rb">$")
        await u.send(pem)
        await u.expect(rb"\r\nOK\r\n")
    await u.at("AT+CCERTLIST", rb'\+CCERTLIST: "ca.pem"\r\n\r\n\+CCERTLIST: "other.pem"\r\n\r\nOK\r\n')
    for cmd in ('AT+CSSLCFG="sslversion",0,4', 'AT+CSSLCFG="authmode",0,1', 'AT+CSSLCFG="cacert",0,"ca.pem"',
                'AT+CSSLCFG="enableSNI",0,1', "AT+CCHSET=1,1"):
        assert (await u.at(cmd)).group(1) == b"OK", cmd
    while not modem.registered():
        await asyncio.sleep(0.05)
    assert (await u.at("AT+CCHSTART")).group(1) == b"OK"
    await u.expect(rb"\+CCHSTART: 0\r\n", timeout=10)
    assert (await u.at("AT+CCHSTART")).group(1) == b"ERROR"  # started already
    assert (await u.at("AT+CCHSSLCFG=0,0")).group(1) == b"OK"

    # the right CA and the name in the certificate: connected, at TLS 1.2
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,0\r\n", timeout=10)
    payload = b"\r\nOK\r\n+x>\x00\xff"
    await u.send(b"AT+CCHSEND=0,%d\r\n" % len(payload))
    await u.expect(rb">$")
    await u.send(payload)
    await u.expect(rb"\r\nOK\r\n")
    await u.expect(rb"\+CCHSEND: 0,0\r\n")
    await u.expect(rb"\+CCHEVENT: 0,RECV EVENT\r\n", timeout=10)
    await u.send(b"AT+CCHRECV=0,1500\r\n")
    await u.expect(rb"\r\nOK\r\n\r\n\+CCHRECV: DATA,0,%d\r\n" % len(payload))
    assert await u.take(len(payload)) == payload
    await u.expect(rb"\r\n\+CCHRECV: 0,0\r\n")
    assert versions == ["TLSv1.2"]
    assert (await u.at("AT+CCHCLOSE=0")).group(1) == b"OK"
    await u.expect(rb"\+CCHCLOSE: 0,0\r\n")

    # a name the certificate does not hold (it resolves to loopback all the same): 15
    assert (await u.at(f'AT+CCHOPEN=0,"localhost",{port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,15\r\n", timeout=10)
    # another CA: 15 again, and no session left behind
    assert (await u.at('AT+CSSLCFG="cacert",0,"other.pem"')).group(1) == b"OK"
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,15\r\n", timeout=10)
    assert (await u.at("AT+CCHSEND=0,5")).group(1) == b"ERROR"
    refused = [e["reason"] for e in rec.of("link") if e["state"] == "refused"]
    assert len(refused) == 2 and all("TLS handshake failed" in r for r in refused), refused
    assert "certificate verify failed" in refused[1] or "unable to get local issuer" in refused[1], refused
    # the files are the modem's: a power cycle keeps them
    u.w.close()
    u = Uart(*await asyncio.open_connection("127.0.0.1", uart_server.sockets[0].getsockname()[1]))
    await u.expect(rb"RDY\r\n", timeout=30)
    await u.at("AT+CCERTLIST", rb'\+CCERTLIST: "ca.pem"\r\n')
    u.w.close()
    tls_server.close()
    uart_server.close()


def test_ssl_commands_over_the_uart_as_the_a76xx_manual_gives(tmp_path):
    asyncio.run(_scenario(tmp_path))
