"""The outbound guard (cloud/domain/outbound.py): what the server refuses to call, and
how it calls what it accepts.

No test here sends a packet to a private, link-local or public address: refusals are
proven with an injected resolver (it answers 10.0.0.1, 169.254.169.254...) and a
connect function that records every attempt, and the one listener that is really
called is on loopback, explicitly allowed."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from cloud.domain.notify import Notifier, SmsGatewayChannel, WebhookChannel
from cloud.domain.outbound import OutboundHttp, OutboundPolicy, OutboundRefused, tcp_connect
from cloud.store.models import Contact, Notification, Tenant
from tests.cloud.helpers import alert
from tests.conftest import free_port

REFUSED_ADDRESSES = ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1",
                     "0.0.0.0", "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1",
                     "::ffff:169.254.169.254", "::", "ff02::1", "192.0.2.10"]
PUBLIC = "93.184.216.34"  # never connected to: the recording connect function stops every test before


class Recorder:
    """A resolver answering fixed addresses in turn, and a connect function that records
    every attempt and connects only to loopback (anything else fails the test)."""

    def __init__(self, *answers: list[str]):
        self.answers, self.lookups, self.connects = list(answers), [], []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        self.connects.append((ip, port))
        assert ip in ("127.0.0.1", "::1"), f"the test tried to connect to {ip}"
        return tcp_connect(ip, port, timeout)


def guard(rec: Recorder, **policy) -> OutboundHttp:
    return OutboundHttp(OutboundPolicy(**policy), resolver=rec.resolve, connect=rec.connect)


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_private_loopback_link_local_and_metadata_addresses_are_refused_before_any_connection(address):
    rec = Recorder([address])
    http = guard(rec)
    with pytest.raises(OutboundRefused, match="refused"):
        http.validate("https://hooks.example.org/pers")
    with pytest.raises(OutboundRefused, match="refused"):
        http.post_json("https://hooks.example.org/pers", {"x": 1})
    assert rec.lookups == ["hooks.example.org", "hooks.example.org"] and rec.connects == []


@pytest.mark.parametrize("url", ["https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data/",
                                 "https://[::ffff:127.0.0.1]/", "https://[fe80::1]/", "https://0x7f000001/",
                                 "https://2130706433/", "https://127.1/"])
def test_literal_addresses_are_checked_without_a_lookup(url):
    rec = Recorder([PUBLIC])
    with pytest.raises(OutboundRefused):
        guard(rec).post_json(url, {})
    assert rec.connects == []


def test_one_private_address_among_public_ones_refuses_the_host():
    rec = Recorder([PUBLIC, "10.0.0.1"])
    with pytest.raises(OutboundRefused, match="10.0.0.1"):
        guard(rec).validate("https://mixed.example.org/")
    assert rec.connects == []


def test_dns_rebinding_is_caught_at_the_call():
    """Public when the admin saves the URL, private when the server calls it."""
    rec = Recorder([PUBLIC], ["10.0.0.1"])
    http = guard(rec)
    assert http.validate("https://rebind.example.org/h") == "https://rebind.example.org/h"
    with pytest.raises(OutboundRefused, match="10.0.0.1"):
        http.post_json("https://rebind.example.org/h", {"case_id": 1})
    assert rec.connects == []


@pytest.mark.parametrize(("url", "policy", "why"), [
    ("http://hooks.example.org/", {}, "only https"),
    ("ftp://hooks.example.org/", {"allow_http": True}, "only https"),
    ("javascript:alert(1)", {}, "only https"),
    ("https://user:pw@hooks.example.org/", {}, "credentials"),
    ("https://other.example.net/", {"allow_hosts": ("hooks.example.org", "*.sms.example.com")}, "allow-list"),
    ("https:///nohost", {}, "no host"),
])
def test_scheme_credentials_and_allow_list_are_refused_before_any_lookup(url, policy, why):
    rec = Recorder([PUBLIC])
    with pytest.raises(OutboundRefused, match=why):
        guard(rec, **policy).validate(url)
    assert rec.lookups == [] and rec.connects == []


def test_the_allow_list_accepts_its_hosts_and_allowed_networks_admit_a_private_gateway():
    rec = Recorder(["10.20.0.7"])
    http = guard(rec, allow_hosts=("*.sms.example.com",), allow_networks=("10.20.0.0/24",))
    assert http.validate("https://gw.sms.example.com/send")
    rec.answers = [["10.20.1.7"]]
    with pytest.raises(OutboundRefused):
        http.validate("https://gw.sms.example.com/send")


class Listener:
    """Real loopback HTTP servers: what each path answers, and what reached them."""

    def __init__(self, routes):
        self.hits: list[tuple[str, str]] = []
        hits, answers = self.hits, routes

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hits.append((self.path, self.headers.get("Host", "")))
                answers.get(self.path, lambda h: h.send_response(204) or h.end_headers())(self)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def listener():
    made = []

    def make(routes=None):
        made.append(Listener(routes or {}))
        return made[-1]

    yield make
    for x in made:
        x.close()


def test_the_call_goes_to_the_checked_address_and_names_the_host(listener):
    srv = listener()
    rec = Recorder(["127.0.0.1"])
    detail = guard(rec, allow_http=True, allow_loopback=True).post_json(
        f"http://hooks.test:{srv.port}/pers?k=1", {"case_id": 7})
    assert detail == "HTTP 204"
    assert rec.lookups == ["hooks.test"] and rec.connects == [("127.0.0.1", srv.port)]
    assert srv.hits == [("/pers?k=1", f"hooks.test:{srv.port}")]


def test_loopback_and_http_stay_refused_unless_allowed(listener):
    srv = listener()
    rec = Recorder(["127.0.0.1"])
    with pytest.raises(OutboundRefused, match="only https"):
        guard(rec, allow_loopback=True).post_json(f"http://127.0.0.1:{srv.port}/", {})
    with pytest.raises(OutboundRefused, match="not a public address"):
        guard(rec, allow_http=True).post_json(f"http://127.0.0.1:{srv.port}/", {})
    assert rec.connects == [] and srv.hits == []


def test_redirects_are_not_followed(listener):
    elsewhere = listener()

    def redirect(h):
        h.send_response(302)
        h.send_header("Location", f"http://127.0.0.1:{elsewhere.port}/stolen")
        h.end_headers()

    srv = listener({"/hook": redirect})
    rec = Recorder(["127.0.0.1"])
    with pytest.raises(RuntimeError, match="HTTP 302: redirect not followed"):
        guard(rec, allow_http=True, allow_loopback=True).post_json(f"http://127.0.0.1:{srv.port}/hook", {})
    assert srv.hits == [("/hook", f"127.0.0.1:{srv.port}")] and elsewhere.hits == []
    assert rec.connects == [("127.0.0.1", srv.port)]


def _big(declare: bool):
    def answer(h):
        body = b"x" * 200_000
        h.send_response(200)
        if declare:
            h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            pass  # the guard stopped reading, as it should
    return answer


def test_the_answer_is_capped_with_or_without_a_declared_length(listener):
    srv = listener({"/declared": _big(True), "/undeclared": _big(False)})
    http = guard(Recorder(["127.0.0.1"]), allow_http=True, allow_loopback=True, max_response_bytes=4096)
    for path in ("/declared", "/undeclared"):
        with pytest.raises(RuntimeError, match="4096-byte cap"):
            http.post_json(f"http://127.0.0.1:{srv.port}{path}", {})
    assert [p for p, _ in srv.hits] == ["/declared", "/undeclared"]


def test_a_silent_server_times_out():
    quiet = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        http = guard(Recorder(["127.0.0.1"]), allow_http=True, allow_loopback=True, timeout_s=0.5)
        with pytest.raises(TimeoutError):
            http.post_json(f"http://127.0.0.1:{quiet.getsockname()[1]}/", {})
    finally:
        quiet.close()


def test_a_tenant_webhook_pointing_inside_is_refused_when_saved_and_when_called(make_world):
    """Through the services as wired: the admin's save is refused, and a URL already in the
    database (saved before, or rebound since) fails the call, recorded, with no connection."""
    from cloud.wiring import build_services
    world = make_world()
    rec = Recorder(["169.254.169.254"])
    svc = build_services(world.svc.settings, clock=world.clock, with_mqtt=False, sm=world.svc.sm,
                         http_out=guard(rec))
    with world.svc.sm() as s:
        from cloud.store.models import Operator
        admin = s.scalars(select(Operator).where(Operator.tenant_id == world.seed.tenant_id)).first()
    with pytest.raises(OutboundRefused, match="169.254.169.254"):
        svc.admin.update_tenant(admin, {"webhook_url": "https://metadata.example.org/latest"})
    with world.svc.sm() as s:
        assert s.get_one(Tenant, world.seed.tenant_id).webhook_url is None
        s.execute(update(Tenant).where(Tenant.id == world.seed.tenant_id)
                  .values(webhook_url="https://metadata.example.org/latest"))
        s.commit()
        contact = s.scalars(select(Contact).where(Contact.wearer_id == world.seed.wearer_id)).first()
    notifier = Notifier(svc.sm, world.clock, [WebhookChannel(None, guard(rec)),
                                              SmsGatewayChannel("https://sms.example.org/send", http=guard(rec))])
    case_id = alert(world, "1.1").case_id
    results = notifier.notify_contact(None, case_id, contact.id, "test")
    assert results["webhook"]["ok"] is False and "169.254.169.254" in results["webhook"]["detail"]
    assert results["sms"]["ok"] is False
    assert rec.connects == []
    with world.svc.sm() as s:
        assert {n.channel: n.ok for n in s.scalars(select(Notification))} == {"webhook": False, "sms": False}
    assert json.dumps(results)  # the results are plain data (they reach the case timeline)
