# Opening the broker connection over TLS by the modem's own SSL stack (the rest
# of the connection is app/netsock.py's Socket, with tls set). The firmware never
# sees a key or a cipher: it gives the modem the CA it was provisioned with
# (/data/ca.pem) and has it verify the broker's certificate and name against it.
# Loaded for an opening and let go after it (app/netsock.py).
#
# The commands and answers, from SIMCom's A7600 Series SSL Application Note V1.00
# (its examples and result codes) and TinyGSM's A76xx SSL driver (docs/hwsim.md):
#   AT+CCERTLIST            '+CCERTLIST: "<file>"' per certificate file, OK
#   AT+CCERTDOWN="<file>",<len>   ">", exactly len bytes of PEM, OK
#   AT+CCERTDELE="<file>"   OK
#   AT+CSSLCFG="sslversion",<ctx>,3      TLS 1.2 (0 SSL3.0 ... 3 TLS1.2, 4 all)
#   AT+CSSLCFG="authmode",<ctx>,1        1: verify the server (0: no verification)
#   AT+CSSLCFG="cacert",<ctx>,"<file>"   the CA to verify it against
#   AT+CSSLCFG="enableSNI",<ctx>,1       send the host name (SNI)
#   AT+CCHSET=1,1           report each send's result; manual receive (RECV EVENT)
#   AT+CCHSTART             OK and "+CCHSTART: 0" (either order); ERROR if started already
#   AT+CCHSSLCFG=<s>,<ctx>  session s uses that SSL context
#   AT+CCHOPEN=<s>,"<host>",<port>,2     OK, later "+CCHOPEN: <s>,<err>" (2: SSL/TLS client)
#   <err>: 0 success, 5 timeout, 9 network error, 13 DNS error, 14 connect socket
#   error, 15 handshake error (the broker's certificate or name did not verify: the
#   note has no code of its own for it), 17 no network, 19 no certificate set
import binascii

_START_MS = 30000
_OPEN_MS = 50000  # TCP and the TLS handshake, across the air


def ca_file(pem):
    # The CA's name on the modem says which CA it is: a new one is written, never confused.
    return "pers-%08x.pem" % (binascii.crc32(pem) & 0xFFFFFFFF)


async def install_ca(m, path):
    # The CA into the modem's file system, unless it holds it already; its file name.
    with open(path, "rb") as f:
        pem = f.read()
    name = ca_file(pem)
    have = await m.cmd("AT+CCERTLIST", 5000) or ()
    if '+CCERTLIST: "%s"' % name in have:
        return name
    for ln in have:
        if ln.startswith('+CCERTLIST: "pers-'):  # an earlier CA of ours
            await m.cmd("AT+CCERTDELE=" + ln[12:], 5000)
    lines = await m.prompted('AT+CCERTDOWN="%s",%d' % (name, len(pem)), pem, 10000)
    if not lines or lines[-1] != "OK":
        raise OSError("CA not written to the modem: %s" % (lines and lines[-1]))
    print("tls: CA written to the modem as", name)
    return name


async def start(s, host, port, ca):
    m = s.m
    m.net = s
    name = await install_ca(m, ca)
    for c in ('AT+CSSLCFG="sslversion",0,3', 'AT+CSSLCFG="authmode",0,1',
              'AT+CSSLCFG="cacert",0,"%s"' % name, 'AT+CSSLCFG="enableSNI",0,1', "AT+CCHSET=1,1"):
        if not await m.ok(c):
            raise OSError(c)
    s._res = None
    lines = await m.cmd("AT+CCHSTART", 5000)
    if lines and lines[-1] == "OK":
        r = await s._result("+CCHSTART:", _START_MS, lines)
        if r != "+CCHSTART: 0":
            raise OSError("no bearer: %s" % r)
    # (ERROR: the SSL service runs already)
    s.closed = False
    if not await m.ok("AT+CCHSSLCFG=0,0"):
        raise OSError("CCHSSLCFG")
    s._res = None
    lines = await m.cmd('AT+CCHOPEN=0,"%s",%d,2' % (host, port), 5000)
    if not lines or lines[-1] != "OK":
        await m.cmd("AT+CCHCLOSE=0", 5000)  # a session left open by an earlier life: free it
        raise OSError("CCHOPEN refused")
    r = await s._result("+CCHOPEN:", _OPEN_MS, lines)
    if r != "+CCHOPEN: 0,0":
        s.closed = True
        if r == "+CCHOPEN: 0,15":
            print("tls: the broker's certificate does not verify against", ca)
            raise OSError("TLS handshake failed (+CCHOPEN: 0,15): the broker is not the one %s vouches for" % ca)
        raise OSError("connect: %s" % r)
