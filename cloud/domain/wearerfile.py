"""The wearer's file: what an operator reads out under stress (the watch's own
phone and SIM numbers, languages, GP, allergies, medication, mobility, who has
keys), and the key-safe code, which is not part of any view: it is revealed only
to the operator who holds an open case of that wearer, on an explicit action,
and every reveal is written to the audit log (action ``keysafe_viewed``) and the
case's timeline."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.domain.admin.base import AdminBase, actor
from cloud.domain.errors import Conflict, NotFound
from cloud.domain.lifecycle import OPEN_STATUSES
from cloud.domain.uow import transaction
from cloud.store.models import AlertCase, CaseEvent, Device, Operator, Wearer

FILE_FIELDS = ("languages", "gp", "allergies", "medication", "mobility", "key_holders")
DEVICE_FIELDS = ("phone_number", "sim_number")


def file_view(w: Wearer | None, d: Device | None) -> dict[str, Any]:
    """The file as the console shows it: never the key-safe code, only whether there is one."""
    out: dict[str, Any] = {k: getattr(w, k) if w else None for k in FILE_FIELDS}
    out.update({"wearer_id": w.id if w else None, "key_safe": bool(w and w.key_safe_code)})
    out.update({k: getattr(d, k) if d else None for k in DEVICE_FIELDS})
    return out


class WearerFiles(AdminBase):
    """Reading the file in a case, revealing the key-safe code, and its administration."""

    def _case(self, s: Session, op: Operator, case_id: int) -> AlertCase:
        case = s.get(AlertCase, case_id)
        if case is None or case.tenant_id != op.tenant_id:
            raise NotFound("no such case")
        return case

    def for_case(self, op: Operator, case_id: int) -> dict[str, Any]:
        with self.sm() as s:
            case = self._case(s, op, case_id)
            wearer = s.get(Wearer, case.wearer_id) if case.wearer_id else None
            return {"case_id": case.id, **file_view(wearer, s.get(Device, case.device_id))}

    def reveal_key_safe(self, op: Operator, case_id: int) -> dict[str, Any]:
        """The code, to the operator holding this open case; audited before it is returned."""
        with transaction(self.sm) as tx:
            s = tx.session
            case = self._case(s, op, case_id)
            if case.status not in OPEN_STATUSES:
                raise Conflict("the case is closed: the key-safe code is shown only in an open case")
            if case.claimed_by != op.id:
                # A state, like a claim race: acknowledge the case first (or it is someone else's).
                raise Conflict("only the operator who acknowledged this case may see the key-safe code")
            wearer = s.get(Wearer, case.wearer_id) if case.wearer_id else None
            if wearer is None or not wearer.key_safe_code:
                raise NotFound("no key-safe code on file for this wearer")
            now = self.clock.now()
            detail = {"case_id": case.id, "wearer_id": wearer.id}
            self._audit(s, op, "keysafe_viewed", f"wearer:{wearer.id}", detail)
            s.add(CaseEvent(case_id=case.id, at=now, actor=actor(op), action="keysafe_viewed", detail=detail))
            return {"case_id": case.id, "code": wearer.key_safe_code, "viewed_at": now.isoformat() + "Z"}

    def get_file(self, op: Operator, wearer_id: int) -> dict[str, Any]:
        with self.sm() as s:
            w = self._own(s, Wearer, wearer_id, op, "wearer")
            return file_view(w, s.scalar(select(Device).where(Device.wearer_id == w.id).order_by(Device.id)))

    def update_file(self, op: Operator, wearer_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """An admin's change to the file; the audit names the fields, never their values."""
        with transaction(self.sm) as tx:
            s = tx.session
            w = self._own(s, Wearer, wearer_id, op, "wearer")
            for k in (*FILE_FIELDS, "key_safe_code"):
                if k in data:
                    setattr(w, k, data[k] or None)
            self._audit(s, op, "wearer.file_updated", f"wearer:{w.id}", {"fields": sorted(data)})
            device = s.scalar(select(Device).where(Device.wearer_id == w.id).order_by(Device.id))
            return file_view(w, device)

    def update_device_numbers(self, op: Operator, device_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            d = self._own(s, Device, device_id, op, "device")
            for k in DEVICE_FIELDS:
                if k in data:
                    setattr(d, k, data[k] or None)
            self._audit(s, op, "device.numbers_updated", f"device:{d.id}", {"fields": sorted(data)})
            return {"id": d.id, **{k: getattr(d, k) for k in DEVICE_FIELDS}}
