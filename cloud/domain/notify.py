"""Notifications to a wearer's contacts through pluggable channels.

Channels: ``webhook`` (HTTP POST of JSON to the tenant's URL), ``email``
(SMTP), ``sms`` (an HTTP SMS gateway: POST {"to","text"}). Each channel that
applies to a contact is tried independently: an SMTP outage must not stop the
SMS. Every attempt is stored (Notification), and the case timeline says what
the results say (``record_outcome``): a contact is "notified" only when a
channel delivered. Only the standard library speaks the protocols, so nothing new is needed at
run time. HTTP goes through the outbound guard (cloud/domain/outbound.py): https
only, public addresses only, checked at the call, no redirects, a capped answer."""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain.errors import Invalid, NotFound
from cloud.domain.outbound import OutboundHttp
from cloud.domain.ports import Clock, EventSink
from cloud.domain.uow import transaction
from cloud.store.models import AlertCase, AuditEntry, CaseEvent, Contact, Notification, Tenant, Wearer

if TYPE_CHECKING:
    from cloud.settings import Settings

log = logging.getLogger("pers.notify")


class Channel(Protocol):
    name: str

    def target(self, contact: Contact, tenant: Tenant) -> str | None:
        """Where this channel would deliver for that contact, or None if it does not apply."""

    def send(self, target: str, *, subject: str, message: str, data: dict[str, Any]) -> str:
        """Deliver or raise; returns a short delivery detail (e.g. the HTTP status)."""


class WebhookChannel:
    name = "webhook"

    def __init__(self, default_url: str | None = None, http: OutboundHttp | None = None) -> None:
        self.default_url, self.http = default_url, http or OutboundHttp()

    def target(self, contact: Contact, tenant: Tenant) -> str | None:
        return tenant.webhook_url or self.default_url

    def send(self, target: str, *, subject: str, message: str, data: dict[str, Any]) -> str:
        return self.http.post_json(target, {"event": "contact_notification", "subject": subject,
                                            "message": message, **data})


class SmsGatewayChannel:
    name = "sms"

    def __init__(self, url: str, token: str | None = None, http: OutboundHttp | None = None) -> None:
        self.url, self.token, self.http = url, token, http or OutboundHttp()

    def target(self, contact: Contact, tenant: Tenant) -> str | None:
        return contact.phone or None

    def send(self, target: str, *, subject: str, message: str, data: dict[str, Any]) -> str:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # SMS is 160 characters a part; gateways split, but keep it short anyway.
        return self.http.post_json(self.url, {"to": target, "text": message[:459]}, headers)


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int = 25, sender: str = "openpers@localhost", *, user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 5.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def target(self, contact: Contact, tenant: Tenant) -> str | None:
        return contact.email or None

    def send(self, target: str, *, subject: str, message: str, data: dict[str, Any]) -> str:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, target, subject
        msg.set_content(message)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(msg)
        if refused:
            raise RuntimeError(f"refused: {refused}")
        return "accepted by SMTP server"


def channels_from_settings(settings: Settings, http: OutboundHttp) -> list[Channel]:
    # The webhook is always offered: it applies whenever the tenant (or the settings) names a URL.
    # The platform's own URLs are checked at start too (their form: a DNS hiccup at boot must
    # not stop the service), so a wrong one fails loudly, not at the first alarm.
    for url in (settings.webhook_url, settings.sms_gateway_url):
        if url:
            http.check_form(url)
    out: list[Channel] = [WebhookChannel(settings.webhook_url, http)]
    if settings.smtp_host:
        out.append(EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                user=settings.smtp_user, password=settings.smtp_password,
                                starttls=settings.smtp_starttls, timeout=settings.notify_timeout_s))
    if settings.sms_gateway_url:
        out.append(SmsGatewayChannel(settings.sms_gateway_url, settings.sms_gateway_token, http))
    return out


class Notifier:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, channels: list[Channel],
                 events: EventSink | None = None) -> None:
        self.sm, self.clock, self.channels, self.events = sm, clock, list(channels), events

    def notify_contact(self, session: Session | None, case_id: int, contact_id: int, message: str, *,
                       actor: str = "system", tenant_id: int | None = None) -> dict[str, Any]:
        """Send ``message`` to one contact of the case's wearer on every channel that
        applies. Returns ``{channel: {"ok", "target", "detail"}}``. With a session the
        records join the caller's transaction; without, they are committed here.
        ``tenant_id``, when given, must be the case's (else 404, as for any other
        tenant's object)."""
        if session is not None:
            return self._notify(session, case_id, contact_id, message, actor, tenant_id)
        with transaction(self.sm) as tx:
            return self._notify(tx.session, case_id, contact_id, message, actor, tenant_id)

    def _notify(self, s: Session, case_id: int, contact_id: int, message: str, actor: str,
                tenant_id: int | None) -> dict[str, Any]:
        case = s.get(AlertCase, case_id)
        if case is None or (tenant_id is not None and case.tenant_id != tenant_id):
            raise NotFound("no such case")
        contact = s.get(Contact, contact_id)
        if contact is None or contact.wearer_id != case.wearer_id:
            raise NotFound("no such contact for this case's wearer")
        if not message or len(message) > 2000:
            raise Invalid("message must be 1-2000 characters")
        tenant = s.get_one(Tenant, case.tenant_id)  # the foreign key keeps it
        wearer = s.get(Wearer, case.wearer_id) if case.wearer_id else None
        subject = f"OpenPERS alarm: {wearer.name if wearer else case.device_id} ({case.kind}) - case {case.id}"
        data = {"case_id": case.id, "kind": case.kind, "wearer": wearer.name if wearer else None,
                "contact": {"id": contact.id, "name": contact.name, "phone": contact.phone},
                "location": {"lat": case.lat, "lon": case.lon} if case.lat is not None else None}
        now = self.clock.now()
        results = self.deliver(s, tenant, contact, subject=subject, message=message, data=data, case_id=case.id,
                               now=now)
        record_outcome(s, case, contact, results, actor, now)
        return results

    def deliver(self, s: Session, tenant: Tenant, contact: Contact, *, subject: str, message: str,
                data: dict[str, Any], case_id: int | None, now: datetime) -> dict[str, Any]:
        """Every channel that applies to ``contact``, each attempt stored (``Notification``,
        its case when there is one: a missed medication dose has none)."""
        results: dict[str, Any] = {}
        for ch in self.channels:
            if contact.channels is not None and ch.name not in contact.channels:
                continue
            target = ch.target(contact, tenant)
            if not target:
                continue
            try:
                detail, ok = ch.send(target, subject=subject, message=message, data=data), True
            except Exception as exc:  # any channel failure is a result to record, not a crash
                detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
                log.warning("notification failed", extra={"channel": ch.name, "case_id": case_id,
                                                          "contact_id": contact.id, "error": detail})
            metrics.NOTIFICATIONS.labels(ch.name, "ok" if ok else "failed").inc()
            results[ch.name] = {"ok": ok, "target": target, "detail": detail}
            s.add(Notification(case_id=case_id, contact_id=contact.id, channel=ch.name, target=target[:400],
                               ok=ok, detail=detail, at=now))
        return results

    def routes_for(self, s: Session, case: AlertCase, contact: Contact) -> list[str]:
        """The channels that would carry a message to ``contact`` (empty: nothing can be sent)."""
        tenant = s.get_one(Tenant, case.tenant_id)
        return [ch.name for ch in self.channels
                if (contact.channels is None or ch.name in contact.channels) and ch.target(contact, tenant)]


NO_CHANNEL = "no notification channel (webhook, e-mail or SMS) is set up for this contact"


def record_outcome(s: Session, case: AlertCase, contact: Contact, results: dict[str, Any], actor: str,
                   now: datetime) -> dict[str, Any]:
    """The timeline says what the delivery result says: ``contact_notified`` only when at
    least one channel delivered, with who was reached and how; otherwise
    ``contact_not_reached`` with each channel's reason (or that none applies)."""
    reached = [{"channel": k, "target": v["target"]} for k, v in results.items() if v["ok"]]
    failed = [{"channel": k, "reason": v["detail"]} for k, v in results.items() if not v["ok"]]
    summary: dict[str, Any] = {"contact_id": contact.id, "contact": contact.name, "phone": contact.phone,
                               "results": {k: v["ok"] for k, v in results.items()},
                               "reached": reached, "failed": failed}
    if not results:
        summary["error"] = NO_CHANNEL
    action = "contact_notified" if reached else "contact_not_reached"
    s.add(CaseEvent(case_id=case.id, at=now, actor=actor, action=action, detail=summary))
    s.add(AuditEntry(at=now, actor=actor, action=f"case.{action}", tenant_id=case.tenant_id,
                     target=f"case:{case.id}", detail=summary))
    return summary
