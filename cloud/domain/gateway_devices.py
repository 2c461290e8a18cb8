"""Which devices talk through the watch gateway, and in which protocol.

The protocols of off-the-shelf watches carry no password: the IMEI is the only
identity, so only an IMEI registered with that protocol is let in (docs/security.md)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.store.models import Device

PROTOCOLS = ("openpers", "setracker", "iw")
GATEWAY_PROTOCOLS = ("setracker", "iw")


def protocol_of(sm: sessionmaker[Session], device_id: str) -> str | None:
    """The device's protocol, None for no such device."""
    with sm() as s:
        return s.scalar(select(Device.protocol).where(Device.id == device_id))


def gateway_devices(sm: sessionmaker[Session]) -> dict[str, str]:
    """Every device that talks through the gateway: {id: protocol}."""
    with sm() as s:
        return dict(s.execute(select(Device.id, Device.protocol).where(Device.protocol.in_(GATEWAY_PROTOCOLS))).all())
