"""Device configuration: versioned, stored, published retained on ``pers/v1/<id>/config``.

The watch applies a config whose version is newer than its own and reports the
applied version in ``status.cfg``; retained publication means a watch that was
off gets the latest config at its next connection, with nothing to re-send."""
from __future__ import annotations

from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud import protocol
from cloud.domain.errors import Invalid, NotFound
from cloud.domain.ports import Clock
from cloud.domain.reminder_plan import plan_from_config
from cloud.domain.uow import transaction
from cloud.store.models import AuditEntry, CallCentre, Contact, Contract, Device, DeviceConfig

EDITABLE = ("heartbeat_s", "sos_hold_ms", "cancel_window_s", "fall_detection", "callcenter_number", "kids_mode",
            "reminders", "checkin_at", "checkin_window_s")


class ConfigPublisher(Protocol):
    def publish_config(self, device_id: str, config: dict[str, Any]) -> None:
        """Publish the config document retained (QoS 1) on the device's config topic."""


class ConfigError(Invalid):
    """A change the watch's config does not allow (still a ValueError, as it always was)."""


def latest_config(s: Session, device_id: str) -> DeviceConfig | None:
    return s.scalar(select(DeviceConfig).where(DeviceConfig.device_id == device_id)
                    .order_by(DeviceConfig.version.desc()).limit(1))


def build_config(s: Session, device: Device, changes: dict[str, Any], *, default_heartbeat_s: int = 3600,
                 default_number: str | None = None) -> dict[str, Any]:
    """The next config: the previous one, the changes, and what the cloud owns (the
    whitelist is the wearer's contacts, the number is the first contracted centre's)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ConfigError(f"not editable: {', '.join(sorted(unknown))} (editable: {', '.join(EDITABLE)})")
    prev = latest_config(s, device.id)
    base = dict(prev.body) if prev else {"heartbeat_s": default_heartbeat_s}
    base.update(changes)
    version = max(prev.version if prev else 0, device.cfg_version or 0) + 1
    whitelist = []
    if device.wearer_id is not None:
        whitelist = list(s.scalars(select(Contact.phone).where(Contact.wearer_id == device.wearer_id)
                                   .order_by(Contact.rank, Contact.id)))
    number = changes.get("callcenter_number") or base.get("callcenter_number")
    if not number:
        number = s.scalar(select(CallCentre.phone).join(Contract, Contract.centre_id == CallCentre.id)
                          .where(Contract.tenant_id == device.tenant_id).order_by(Contract.rank)) or default_number
    body = {**base, "v": 1, "version": version, "whitelist": whitelist, "callcenter_number": number}
    try:
        return protocol.DeviceConfig.model_validate(body).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def push_config(sm: sessionmaker[Session], clock: Clock, publisher: ConfigPublisher, device_id: str,
                changes: dict[str, Any], *,
                actor: str, tenant_id: int | None = None, default_heartbeat_s: int = 3600,
                default_number: str | None = None) -> dict[str, Any]:
    """Store a new config version and publish it retained after commit. ``tenant_id``
    scopes the call (another tenant's device is reported absent: NotFound, a LookupError)."""
    with transaction(sm) as tx:
        s = tx.session
        device = s.get(Device, device_id)
        if device is None or (tenant_id is not None and device.tenant_id != tenant_id):
            raise NotFound("no such device")
        body = build_config(s, device, changes, default_heartbeat_s=default_heartbeat_s,
                            default_number=default_number)
        s.add(DeviceConfig(device_id=device.id, version=body["version"], body=body, created_at=clock.now(),
                           actor=actor))
        device.heartbeat_s = body["heartbeat_s"]  # presence judges silence by the period the watch was given
        plan_from_config(s, device, body, clock.now())  # the doses the cloud will judge (reminders.py)
        s.add(AuditEntry(at=clock.now(), actor=actor, action="device.config", tenant_id=device.tenant_id,
                         target=f"device:{device.id}", detail={"version": body["version"], "changes": changes}))
        tx.after_commit(lambda: publisher.publish_config(device_id, body))
    return body


def config_versions(s: Session, device_id: str) -> int:
    return s.scalar(select(func.count()).select_from(DeviceConfig).where(DeviceConfig.device_id == device_id)) or 0
