"""Notifications to contacts through real local servers: SMTP (aiosmtpd), and HTTP
servers for the webhook and the SMS gateway. No mocks."""
import json
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from cloud.domain.errors import NotFound
from cloud.domain.notify import EmailChannel, Notifier, SmsGatewayChannel, WebhookChannel
from cloud.domain.outbound import OutboundHttp, OutboundPolicy
from cloud.store.models import Contact, Notification, Tenant
from tests.cloud.helpers import actions, alert
from tests.conftest import free_port


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=default)
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, msg["Subject"] + "\n" + msg.get_content()))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, inbox
    ctl.stop()


@pytest.fixture
def http_sink():
    """A local HTTP server recording POSTs; answers 500 on /fail."""
    got = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(500 if self.path == "/fail" else 202)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", got
    srv.shutdown()
    srv.server_close()


# The sinks are plain http on loopback, which production refuses (tests/cloud/test_outbound_guard.py).
LOCAL = OutboundHttp(OutboundPolicy(allow_http=True, allow_loopback=True))


def contacts(world):
    with world.svc.sm() as s:
        return list(s.scalars(select(Contact).where(Contact.wearer_id == world.seed.wearer_id).order_by(Contact.rank)))


def test_notify_contact_delivers_on_every_channel_and_records_it(world, smtp, http_sink):
    ctl, inbox = smtp
    base, got = http_sink
    with world.svc.sm() as s:
        s.execute(update(Tenant).where(Tenant.id == world.seed.tenant_id).values(webhook_url=base + "/hook"))
        s.commit()
    notifier = Notifier(world.svc.sm, world.clock, [WebhookChannel(None, LOCAL), EmailChannel("127.0.0.1", ctl.port),
                                                    SmsGatewayChannel(base + "/sms", token="t0k", http=LOCAL)])
    case_id = alert(world, "1.1").case_id
    daughter = contacts(world)[0]
    results = notifier.notify_contact(None, case_id, daughter.id, "Jeanne pressed SOS. Please call her.")
    assert {k: v["ok"] for k, v in results.items()} == {"webhook": True, "email": True, "sms": True}
    assert inbox.messages[0][1] == ["sophie.martin@example.org"]
    assert "Jeanne pressed SOS" in inbox.messages[0][2] and "case " in inbox.messages[0][2]
    paths = {p: (h, b) for p, h, b in got}
    assert paths["/sms"][1] == {"to": "+33611111111", "text": "Jeanne pressed SOS. Please call her."}
    assert paths["/sms"][0]["Authorization"] == "Bearer t0k"
    assert paths["/hook"][1]["case_id"] == case_id and paths["/hook"][1]["contact"]["id"] == daughter.id
    with world.svc.sm() as s:
        assert sorted(n.channel for n in s.scalars(select(Notification))) == ["email", "sms", "webhook"]
    assert "contact_notified" in actions(world, case_id)


def test_a_failing_channel_does_not_stop_the_others(world, smtp, http_sink):
    ctl, inbox = smtp
    base, got = http_sink
    dead_smtp = free_port()  # nothing listens there
    notifier = Notifier(world.svc.sm, world.clock, [WebhookChannel(base + "/fail", LOCAL),
                                                    EmailChannel("127.0.0.1", dead_smtp, timeout=2),
                                                    SmsGatewayChannel(base + "/sms", http=LOCAL)])
    case_id = alert(world, "1.1").case_id
    results = notifier.notify_contact(None, case_id, contacts(world)[0].id, "test")
    assert results["webhook"]["ok"] is False and "HTTP 500" in results["webhook"]["detail"]
    assert results["email"]["ok"] is False and results["sms"]["ok"] is True
    with world.svc.sm() as s:
        assert {(n.channel, n.ok) for n in s.scalars(select(Notification))} == {
            ("webhook", False), ("email", False), ("sms", True)}


def test_channels_follow_what_the_contact_has_and_accepts(world, smtp, http_sink):
    ctl, inbox = smtp
    base, got = http_sink
    notifier = Notifier(world.svc.sm, world.clock, [EmailChannel("127.0.0.1", ctl.port),
                                                    SmsGatewayChannel(base + "/sms", http=LOCAL)])
    case_id = alert(world, "1.1").case_id
    neighbour = contacts(world)[1]  # no e-mail address
    assert set(notifier.notify_contact(None, case_id, neighbour.id, "x")) == {"sms"}
    with world.svc.sm() as s:
        s.execute(update(Contact).where(Contact.id == contacts(world)[0].id).values(channels=["email"]))
        s.commit()
    assert set(notifier.notify_contact(None, case_id, contacts(world)[0].id, "x")) == {"email"}


def test_notify_contact_inside_the_callers_transaction(world, smtp):
    from cloud.domain.uow import transaction
    ctl, inbox = smtp
    notifier = Notifier(world.svc.sm, world.clock, [EmailChannel("127.0.0.1", ctl.port)])
    case_id = alert(world, "1.1").case_id
    with transaction(world.svc.sm) as tx:
        notifier.notify_contact(tx.session, case_id, contacts(world)[0].id, "from an operator action",
                                actor="operator:operator")
    with world.svc.sm() as s:
        assert s.scalar(select(Notification.channel)) == "email"


def test_wrong_contact_or_other_tenant_is_404(world):
    notifier = Notifier(world.svc.sm, world.clock, [])
    case_id = alert(world, "1.1").case_id
    with pytest.raises(NotFound):
        notifier.notify_contact(None, case_id, 999, "x")
    with pytest.raises(NotFound):
        notifier.notify_contact(None, case_id, contacts(world)[0].id, "x", tenant_id=world.seed.other_tenant_id)


def test_the_escalation_cascade_really_sends(world, smtp):
    from cloud.domain.ticker import Ticker
    ctl, inbox = smtp
    notifier = Notifier(world.svc.sm, world.clock, [EmailChannel("127.0.0.1", ctl.port)])
    ticker = Ticker(world.svc.sm, world.clock, world.events, world.svc.settings, notifier)
    alert(world, "1.1")
    world.clock.advance(world.svc.settings.cascade_after_s)
    ticker.tick()
    assert inbox.messages and "still open" in inbox.messages[0][2]
