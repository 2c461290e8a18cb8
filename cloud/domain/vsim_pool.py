"""The virtual-SIM pool: local profiles per country, handed to a watch that
reports a new country, as cloud-SIM services do (roaming on a local profile
costs a fraction of home-network roaming and often registers better).

The country comes from the MCC of the serving cell (``cell.mcc``) or of the
operator (``net.op``). Where the tenant keeps a stock of profiles for that
country, one of them is allocated to the watch (cloud/domain/vsim_stock.py).
Elsewhere, on a change, the watch gets a ``vsim`` command listing the
platform's best profiles for that country (priority, then cost), best first."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import metrics, protocol
from cloud.domain import commands, vsim_stock
from cloud.domain.geo import country_of_mcc
from cloud.domain.ingest_ids import new_cid
from cloud.domain.ports import Clock, CommandSender
from cloud.domain.uow import Tx
from cloud.store.models import AuditEntry, Device, VsimProfilePool

log = logging.getLogger("pers.vsim")
MAX_PROFILES = 3


def best_profiles(s: Session, country: str, limit: int = MAX_PROFILES) -> list[VsimProfilePool]:
    return list(s.scalars(select(VsimProfilePool).where(VsimProfilePool.country == country.upper(),
                                                        VsimProfilePool.tenant_id.is_(None),
                                                        VsimProfilePool.active.is_(True))
                          .order_by(VsimProfilePool.priority, VsimProfilePool.cost, VsimProfilePool.name)
                          .limit(limit)))


def on_country_seen(tx: Tx, device: Device, mcc: int | None, current_profile: str | None, now: datetime,
                    sender: CommandSender, clock: Clock, *, reported: bool = False,
                    alarm: bool = False) -> str | None:
    """Returns the profile name sent from the shared list, if any. ``reported``: the
    message said which profile the watch uses (``net``; no ``profile``: its home SIM)."""
    if reported:
        device.vsim_profile = current_profile
    country = country_of_mcc(mcc)
    if vsim_stock.on_country(tx, device, country, now, sender, clock, alarm=alarm):
        device.country = country
        return None
    if country is None or country == device.country:
        return None
    previous, device.country = device.country, country
    s = tx.session
    profiles = best_profiles(s, country)
    if not profiles:
        log.info("no vSIM profile for the new country", extra={"device_id": device.id, "country": country})
        return None
    if current_profile and current_profile in {p.name for p in profiles}:
        device.vsim_profile = current_profile  # already on a local profile: nothing to send
        return None
    cmd = protocol.VsimCmd(cid=new_cid(), ts=clock.unix(), profiles=[
        protocol.VsimProfile(name=p.name, mccmnc=list(p.mccmnc), apn=p.apn, priority=p.priority, cost=p.cost)
        for p in profiles])
    commands.send(tx, sender, clock, device.id, cmd)
    device.vsim_profile = profiles[0].name
    s.add(AuditEntry(at=now, actor="system", action="device.vsim", tenant_id=device.tenant_id,
                     target=f"device:{device.id}",
                     detail={"from_country": previous, "country": country, "profiles": [p.name for p in profiles],
                             "cid": cmd.cid}))
    metrics.VSIM_SWITCHES.labels(country).inc()
    log.info("vSIM profiles sent", extra={"device_id": device.id, "country": country, "profile": profiles[0].name})
    return profiles[0].name
