"""The emulated modem's SSL commands (hwsim/modem_ssl.py) replayed against exchanges
nobody here wrote:

- SIMCom, "A7600 Series SSL Application Note" V1.00 (2020-06-19), chapter 3: the
  example sessions "Access to SSL/TLS server (only verify the server)" (3.3),
  "Access to TCP server" (3.1) and "Download certificate into module" (3.7), and the
  result codes of 4.1.1 / URCs of 4.1.2. The commands are the note's, verbatim,
  except the server: the note dials www.baidu.com, these tests a TLS server on
  loopback (host and port changed, nothing else).
- TinyGSM's A76xx SSL driver (lewisxhe/TinyGSM-fork, src/TinyGsmClientA76xxSSL.h,
  by LilyGO, who make the T-A76XX boards): what it waits for after AT+CCHOPEN
  ("+CCHOPEN:" then "<mux>,<err>"), AT+CCHRECV? ("+CCHRECV: LEN,<len0>,<len1>") and
  AT+CCHRECV=<mux>,<size> ("+CCHRECV: DATA,<mux>,<len>", the bytes, "+CCHRECV:").

Where a source shows no more than a name (error 19, "Not set certificates"), the
test asserts hwsim's documented reading of it (docs/hwsim.md)."""
from __future__ import annotations

import asyncio
import ssl

from cloud.tls import ensure_certificates
from hwsim.events import Recorder
from hwsim.link import AirLink
from hwsim.modem import ModemEmulator
from hwsim.modem_ssl import ERR
from hwsim.scenario import ModemSpec, WorldSpec
from hwsim.world import World
from tests.hwsim.test_modem_socket import SPEED, Uart

# [AN 4.1.1], the table as printed: the codes a driver sees in +CCHOPEN/+CCHSEND/...
NOTE_ERR_CODES = {0: "Operation succeeded", 1: "Alerting state(reserved)", 2: "Unknown error", 3: "Busy",
                  4: "Peer closed", 5: "Operation timeout", 6: "Transfer failed", 7: "Memory error",
                  8: "Invalid parameter", 9: "Network error", 10: "Open session error", 11: "State error",
                  12: "Create socket error", 13: "Get DNS error", 14: "Connect socket error",
                  15: "Handshake error", 16: "Close socket error", 17: "Nonet", 18: "Send data timeout",
                  19: "Not set certificates"}


def test_hwsim_result_codes_are_the_notes():
    assert set(ERR.values()) == set(NOTE_ERR_CODES) - {1}  # 1 is "reserved": hwsim never gives it
    named = {"timeout": "Operation timeout", "dns": "Get DNS error", "handshake": "Handshake error",
             "connect socket": "Connect socket error", "no network": "Nonet", "network": "Network error",
             "no certificate": "Not set certificates", "peer closed": "Peer closed"}
    assert {k: NOTE_ERR_CODES[ERR[k]] for k in named} == named


async def _session(tmp_path) -> None:
    files = ensure_certificates(tmp_path / "broker", ["127.0.0.1"])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(files.certfile, files.keyfile)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # answers each request with a reply of its own length, "bye" with a close
        while data := await reader.read(4096):
            if data == b"bye":
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    rec = Recorder()
    rec.speed = SPEED
    modem = ModemEmulator(World(WorldSpec(), rec.now), ModemSpec(family="A7670"), rec)
    modem.air = AirLink(rec, modem.data_ready)
    uart_server = await asyncio.start_server(modem.serve, "127.0.0.1", 0)
    tls_server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = tls_server.sockets[0].getsockname()[1]
    u = Uart(*await asyncio.open_connection("127.0.0.1", uart_server.sockets[0].getsockname()[1]))
    await u.expect(rb"RDY\r\n", timeout=30)
    await u.at("ATE0")
    while not modem.registered():
        await asyncio.sleep(0.05)

    # [AN 3.7] AT+CCERTDOWN="client_key.der",1702 then ">" and the file, OK; AT+CCERTLIST
    # lists it as +CCERTLIST: "client_key.der". (Our own CA's bytes, under the note's names.)
    pem = files.cafile.read_bytes()
    for name in ("client_key.der", "ca_cert.pem"):
        await u.send(b'AT+CCERTDOWN="%s",%d\r\n' % (name.encode(), len(pem)))
        await u.expect(rb">")
        await u.send(pem)
        await u.expect(rb"\r\nOK\r\n")
    await u.at("AT+CCERTLIST", rb'\+CCERTLIST: "ca_cert.pem"\r\n\r\n\+CCERTLIST: "client_key.der"\r\n\r\nOK\r\n')

    # [AN 3.3] "Access to SSL/TLS server (only verify the server)", command by command
    for cmd in ('AT+CSSLCFG="sslversion",0,4', 'AT+CSSLCFG="authmode",0,1', 'AT+CSSLCFG="cacert",0,"ca_cert.pem"',
                "AT+CCHSET=1"):
        assert (await u.at(cmd)).group(1) == b"OK", cmd
    assert (await u.at("AT+CCHSTART")).group(1) == b"OK"
    await u.expect(rb"\r\n\+CCHSTART: 0\r\n", timeout=10)
    assert (await u.at("AT+CCHSSLCFG=0,0")).group(1) == b"OK"
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{port},2')).group(1) == b"OK"
    # TinyGSM: waitResponse(GSM_NL "+CCHOPEN:"), skip the mux, the error code before '\n'
    await u.expect(rb"\r\n\+CCHOPEN: 0,0\r\n", timeout=10)
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: MAUI htp User Agent\r\n" \
              b"Proxy-Connection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    await u.send(b"AT+CCHSEND=0,%d\r\n" % len(request))
    await u.expect(rb">")
    await u.send(request)
    # [AN 3.3] OK, "+CCHSEND: 0,0", then the reply reported unasked (AT+CCHSET=1: recv_mode 0)
    await u.expect(rb"\r\nOK\r\n\r\n\+CCHSEND: 0,0\r\n", timeout=10)
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    await u.expect(rb"\r\n\+CCHRECV: DATA,0,%d\r\n" % len(reply), timeout=10)
    assert await u.take(len(reply)) == reply
    assert (await u.at("AT+CCHCLOSE=0")).group(1) == b"OK"
    await u.expect(rb"\r\n\+CCHCLOSE: 0,0\r\n")
    assert (await u.at("AT+CCHSTOP")).group(1) == b"OK"
    await u.expect(rb"\r\n\+CCHSTOP: 0\r\n")

    # Manual receive, as TinyGSM's driver does it: AT+CCHSET=1,1, the RECV EVENT [AN 4.1.2],
    # AT+CCHRECV? for the lengths, AT+CCHRECV=<mux>,<size> for the bytes.
    assert (await u.at("AT+CCHSET=1,1")).group(1) == b"OK"
    assert (await u.at("AT+CCHSTART")).group(1) == b"OK"
    await u.expect(rb"\+CCHSTART: 0\r\n", timeout=10)
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,0\r\n", timeout=10)
    await u.send(b"AT+CCHSEND=0,%d\r\n" % len(request))
    await u.expect(rb">")
    await u.send(request)
    await u.expect(rb"\+CCHSEND: 0,0\r\n", timeout=10)
    await u.expect(rb"\r\n\+CCHEVENT: 0,RECV EVENT\r\n", timeout=10)
    await u.at("AT+CCHRECV?", rb"\r\n\+CCHRECV: LEN,%d,0\r\n\r\nOK\r\n" % len(reply))
    await u.send(b"AT+CCHRECV=0,1024\r\n")
    await u.expect(rb"\+CCHRECV: DATA,0,%d\r\n" % len(reply))
    assert await u.take(len(reply)) == reply
    await u.expect(rb"\r\n\+CCHRECV: 0,0\r\n")
    # the server closes: "+CCH_PEER_CLOSED: <session_id>" [AN 4.1.2]
    await u.send(b"AT+CCHSEND=0,3\r\n")
    await u.expect(rb">")
    await u.send(b"bye")
    await u.expect(rb"\r\n\+CCH_PEER_CLOSED: 0\r\n", timeout=10)

    # [AN 4.1.1] 19 "Not set certificates": the server verified against no CA the modem holds
    assert (await u.at('AT+CSSLCFG="cacert",0,"absent.pem"')).group(1) == b"OK"
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,19\r\n", timeout=10)
    # 14 "Connect socket error": nobody listens there (a port just closed, on loopback)
    probe = await asyncio.start_server(serve, "127.0.0.1", 0)
    closed_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    assert (await u.at('AT+CSSLCFG="cacert",0,"ca_cert.pem"')).group(1) == b"OK"
    assert (await u.at(f'AT+CCHOPEN=0,"127.0.0.1",{closed_port},2')).group(1) == b"OK"
    await u.expect(rb"\+CCHOPEN: 0,14\r\n", timeout=10)
    u.w.close()
    tls_server.close()
    uart_server.close()


def test_the_application_notes_sessions_on_hwsims_modem(tmp_path):
    asyncio.run(_session(tmp_path))
