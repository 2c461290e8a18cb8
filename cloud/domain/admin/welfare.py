"""A wearer's welfare settings (cloud/domain/welfare.py): stored on the wearer, and
the check-in's time sent to the wearer's watches in their config (docs/protocol.md),
so the watch asks "Are you OK?" even when it has no network at that moment."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from cloud.domain import configs
from cloud.domain.admin.base import AdminBase, actor
from cloud.domain.errors import Invalid, Unavailable
from cloud.domain.uow import transaction
from cloud.domain.welfare import WelfareSettings
from cloud.store.models import Device, Operator, Wearer


class WelfareAdmin(AdminBase):
    def get_welfare(self, op: Operator, wearer_id: int) -> dict[str, Any]:
        with self.sm() as s:
            w = self._own(s, Wearer, wearer_id, op, "wearer")
            return {"wearer_id": w.id, "settings": dict(w.welfare) if w.welfare else None}

    def set_welfare(self, op: Operator, wearer_id: int, data: dict[str, Any] | None) -> dict[str, Any]:
        """``data`` None switches every welfare alarm off."""
        try:
            cfg = WelfareSettings.model_validate(data).model_dump() if data is not None else None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Invalid(f"{'.'.join(map(str, first['loc'])) or 'welfare'}: {first['msg']}") from None
        if self.publisher is None:
            raise Unavailable("no broker connection to send the check-in time to the watch")
        with transaction(self.sm) as tx:
            s = tx.session
            w = self._own(s, Wearer, wearer_id, op, "wearer")
            # set_at: a check-in whose time passed before it was set is not "missed".
            w.welfare = {**cfg, "set_at": self.clock.now().isoformat() + "Z"} if cfg is not None else None
            self._audit(s, op, "wearer.welfare", f"wearer:{w.id}", {"settings": cfg})
            devices = list(s.scalars(select(Device.id).where(Device.wearer_id == w.id,
                                                              Device.protocol == "openpers")))
        changes = {"checkin_at": cfg["checkin_at"] if cfg else None,
                   "checkin_window_s": cfg["checkin_window_min"] * 60 if cfg and cfg["checkin_at"] else None}
        for device_id in devices:
            configs.push_config(self.sm, self.clock, self.publisher, device_id, changes, actor=actor(op),
                                tenant_id=op.tenant_id, default_heartbeat_s=self.default_heartbeat_s,
                                default_number=self.default_number)
        return {"wearer_id": wearer_id, "settings": cfg, "devices": devices}
