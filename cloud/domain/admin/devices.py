"""Devices: provisioning, secret rotation, assignment to a wearer, configs; and
the platform's vSIM profile pool."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain import configs
from cloud.domain.accounts import provision_device, rotate_device_secret
from cloud.domain.admin.base import AdminBase, actor, page
from cloud.domain.errors import Invalid, Unavailable
from cloud.domain.ports import Clock
from cloud.domain.uow import transaction
from cloud.domain.views import device_view, vsim_view
from cloud.store.models import AuditEntry, Device, Operator, VsimProfilePool, Wearer

DEVICE_ID_ISSUED = ("device ids are issued by the server: leave the id out and flash the id and secret "
                    "you get back (the platform operator's `pers device add <id>` registers a chosen id)")


class DevicesAdmin(AdminBase):
    # --- devices ------------------------------------------------------------------------------
    def list_devices(self, op: Operator, *, presence: str | None = None, wearer_id: int | None = None,
                     limit: int = 50, offset: int = 0) -> dict[str, Any]:
        with self.sm() as s:
            stmt = select(Device).where(Device.tenant_id == op.tenant_id)
            if presence:
                stmt = stmt.where(Device.presence == presence)
            if wearer_id is not None:
                stmt = stmt.where(Device.wearer_id == wearer_id)
            return page(s, stmt.order_by(Device.id), limit, offset, device_view)

    def get_device(self, op: Operator, device_id: str) -> dict[str, Any]:
        with self.sm() as s:
            d = self._own(s, Device, device_id, op, "device")
            latest = configs.latest_config(s, d.id)
            return {**device_view(d), "config": latest.body if latest else None,
                    "config_pending": bool(latest and (d.cfg_version or 0) < latest.version)}

    def provision(self, op: Operator, device_id: str | None, wearer_id: int | None) -> dict[str, Any]:
        # A tenant does not choose a device id: whether an id is taken would tell it that
        # another tenant has that device, and a chosen id (an IMEI) could claim another
        # tenant's watch before it is registered. The server issues a random one, which the
        # installer flashes with the secret; the platform (pers device add) may still choose.
        if device_id is not None:
            raise Invalid(DEVICE_ID_ISSUED)
        # Refused as Invalid (another tenant's wearer).
        dev = provision_device(self.sm, self.clock, op.tenant_id, device_id=device_id, wearer_id=wearer_id,
                               actor=actor(op), broker=self.broker)
        return {"id": dev.device_id, "secret": dev.secret}

    def rotate(self, op: Operator, device_id: str) -> dict[str, Any]:
        dev = rotate_device_secret(self.sm, self.clock, device_id, actor=actor(op), tenant_id=op.tenant_id,
                                   broker=self.broker)  # NotFound for an unknown or another tenant's device
        return {"id": dev.device_id, "secret": dev.secret}

    def assign_device(self, op: Operator, device_id: str, wearer_id: int | None) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            s = tx.session
            d = self._own(s, Device, device_id, op, "device")
            if wearer_id is not None:
                self._own(s, Wearer, wearer_id, op, "wearer")
            d.wearer_id = wearer_id
            self._audit(s, op, "device.assigned", f"device:{d.id}", {"wearer_id": wearer_id})
            return device_view(d)

    def push_config(self, op: Operator, device_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if self.publisher is None:
            raise Unavailable("no broker connection to publish configs")
        # NotFound for an unknown or another tenant's device, ConfigError (Invalid) for a bad change.
        return configs.push_config(self.sm, self.clock, self.publisher, device_id, changes, actor=actor(op),
                                   tenant_id=op.tenant_id, default_heartbeat_s=self.default_heartbeat_s,
                                   default_number=self.default_number)

    # --- the vSIM pool (platform-wide; read by admins, managed by the platform) -------------------------
    def list_vsim(self, country: str | None = None) -> list[dict[str, Any]]:
        with self.sm() as s:
            stmt = select(VsimProfilePool).order_by(VsimProfilePool.country, VsimProfilePool.priority)
            if country:
                stmt = stmt.where(VsimProfilePool.country == country.upper())
            return [vsim_view(p) for p in s.scalars(stmt)]

    def vsim_stock(self, op: Operator) -> dict[str, Any]:
        """The tenant's own stock per country, who holds which profile, low-stock warnings."""
        from cloud.domain.vsim_stock import tenant_view
        with self.sm() as s:
            return tenant_view(s, op.tenant_id, self.clock.now())

def add_vsim_profile(sm: sessionmaker[Session], clock: Clock, *, country: str, name: str, mccmnc: list[str],
                     apn: str | None = None, priority: int = 0, cost: float = 0,
                     actor: str = "platform") -> dict[str, Any]:
    """The pool is the platform's, not a tenant's: managed by the platform operator (seed, scripts)."""
    if len(country) != 2 or not country.isalpha():
        raise ValueError("country is an ISO 3166 alpha-2 code")
    if not mccmnc or not all(x.isdigit() and len(x) in (5, 6) for x in mccmnc):
        raise ValueError("mccmnc is a list of 5-6 digit PLMN codes")
    with transaction(sm) as tx:
        p = VsimProfilePool(country=country.upper(), name=name, mccmnc=mccmnc, apn=apn, priority=priority,
                            cost=cost, active=True)
        tx.session.add(p)
        tx.session.flush()
        tx.session.add(AuditEntry(at=clock.now(), actor=actor, action="vsim.profile_added", target=f"vsim:{p.id}",
                                  detail={"country": p.country, "name": name}))
        return vsim_view(p)

