"""The tenant's alarm receivers (SIA DC-09 forwarding, docs/forwarding.md): add,
change, disable, send a test report; and the zone each watch is known by. A
receiver's host passes the outbound guard exactly as a webhook URL does, when it is
configured and again at every exchange; its AES key is written, never read back."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from cloud import metrics
from cloud.domain.admin.base import AdminBase
from cloud.domain.errors import Invalid
from cloud.domain.forwarding import dc09
from cloud.domain.forwarding.codes import NEW
from cloud.domain.forwarding.outbox import enqueue
from cloud.domain.forwarding.transport import checked_ip
from cloud.domain.outbound import OutboundRefused
from cloud.domain.uow import transaction
from cloud.store.models import AlarmReceiver, Device, ForwardOutbox, Operator

_HEXNUM = re.compile(r"^[0-9A-Fa-f]{1,6}$")
_ACCOUNT = re.compile(r"^[0-9A-Fa-f]{3,16}$")
FIELDS = ("name", "host", "port", "backup_host", "backup_port", "protocol", "fmt", "account", "receiver_no",
          "line_no", "aes_key", "key_encoding", "poll_s", "enabled")


def receiver_view(r: AlarmReceiver) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "host": r.host, "port": r.port, "backup_host": r.backup_host,
            "backup_port": r.backup_port, "protocol": r.protocol, "fmt": r.fmt, "account": r.account,
            "receiver_no": r.receiver_no, "line_no": r.line_no, "encrypted": bool(r.aes_key),
            "key_encoding": r.key_encoding, "poll_s": r.poll_s, "enabled": r.enabled,
            "clock_offset_s": r.clock_offset_s}


class ReceiversAdmin(AdminBase):
    def list_receivers(self, op: Operator) -> list[dict[str, Any]]:
        with self.sm() as s:
            return [receiver_view(r) for r in s.scalars(select(AlarmReceiver).where(
                AlarmReceiver.tenant_id == op.tenant_id).order_by(AlarmReceiver.id))]

    def create_receiver(self, op: Operator, data: dict[str, Any]) -> dict[str, Any]:
        r = AlarmReceiver(tenant_id=op.tenant_id, protocol="tcp", fmt="ADM-CID", line_no="0", key_encoding="hex",
                          poll_s=0, enabled=True, next_seq=1, clock_offset_s=0.0, created_at=self.clock.now())
        self._apply_receiver(op, r, data)
        with transaction(self.sm) as tx:
            tx.session.add(r)
            tx.session.flush()
            self._audit(tx.session, op, "receiver.created", f"receiver:{r.id}", _loggable(data))
            return receiver_view(r)

    def update_receiver(self, op: Operator, receiver_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            r = self._own(tx.session, AlarmReceiver, receiver_id, op, "receiver")
            self._apply_receiver(op, r, data)
            self._audit(tx.session, op, "receiver.updated", f"receiver:{r.id}", _loggable(data))
            return receiver_view(r)

    def test_receiver(self, op: Operator, receiver_id: int) -> dict[str, Any]:
        """Queue a test report (Contact ID 602, SIA RP) to this receiver; it goes out
        like any alarm, through the outbox."""
        with transaction(self.sm) as tx:
            r = self._own(tx.session, AlarmReceiver, receiver_id, op, "receiver")
            rows = enqueue(tx.session, op.tenant_id, "test", NEW, self.clock.now(), receiver_id=r.id)
            if not rows:
                raise Invalid("this receiver is disabled")
            tx.session.flush()
            self._audit(tx.session, op, "receiver.tested", f"receiver:{r.id}", {"outbox_id": rows[0].id})
            return {"queued": rows[0].id}

    def forwarding_status(self, op: Operator, limit: int = 50) -> list[dict[str, Any]]:
        """What has not been acknowledged yet, or was given up: the supervisor's view."""
        with self.sm() as s:
            names = dict(s.execute(select(AlarmReceiver.id, AlarmReceiver.name)
                                   .where(AlarmReceiver.tenant_id == op.tenant_id)).all())
            rows = s.scalars(select(ForwardOutbox).where(ForwardOutbox.tenant_id == op.tenant_id,
                                                         ForwardOutbox.status != "acked")
                             .order_by(ForwardOutbox.id.desc()).limit(limit))
            return [{"id": x.id, "receiver": names.get(x.receiver_id), "case_id": x.case_id, "event": x.event,
                     "qualifier": x.qualifier, "status": x.status, "attempts": x.attempts,
                     "last_error": x.last_error, "created_at": x.created_at.isoformat() + "Z",
                     "alerted": x.alerted_at is not None} for x in rows]

    def set_receiver_zone(self, op: Operator, device_id: str, zone: int | None) -> dict[str, Any]:
        if zone is not None and not 1 <= zone <= 999:
            raise Invalid("a receiver zone is 1-999")
        with transaction(self.sm) as tx:
            d = self._own(tx.session, Device, device_id, op, "device")
            d.receiver_zone = zone
            self._audit(tx.session, op, "device.receiver_zone", f"device:{d.id}", {"zone": zone})
            return {"id": d.id, "receiver_zone": zone}

    def _apply_receiver(self, op: Operator, r: AlarmReceiver, data: dict[str, Any]) -> None:
        for k in FIELDS:
            if k in data:
                setattr(r, k, data[k])
        if r.protocol not in ("tcp", "udp"):
            raise Invalid("protocol is tcp or udp")
        if r.fmt not in dc09.FORMATS:
            raise Invalid(f"format is one of {', '.join(dc09.FORMATS)}")
        if not r.account or not _ACCOUNT.match(r.account):
            raise Invalid("the account is 3-16 hex digits")
        if not _HEXNUM.match(r.line_no or ""):
            raise Invalid("the line number is 1-6 hex digits")
        if r.receiver_no and not _HEXNUM.match(r.receiver_no):
            raise Invalid("the receiver number is 1-6 hex digits")
        if r.aes_key:
            dc09.aes_key(r.aes_key, r.key_encoding)  # raises Invalid with the rule
        r.account = r.account.upper()
        for host, port in ((r.host, r.port), (r.backup_host, r.backup_port or r.port)):
            if host:
                self._check_host(op, host, port)

    def _check_host(self, op: Operator, host: str, port: int) -> None:
        try:
            checked_ip(self.outbound, host, port)
        except OutboundRefused as exc:
            metrics.OUTBOUND_REFUSED.labels("validation").inc()
            raise Invalid(f"receiver host refused: {exc}") from None


def _loggable(data: dict[str, Any]) -> dict[str, Any]:
    """The audit trail records that a key was set, never the key."""
    return {k: ("(set)" if k == "aes_key" and v else v) for k, v in data.items()}
