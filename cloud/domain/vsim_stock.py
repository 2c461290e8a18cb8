"""A tenant's stock of local virtual-SIM profiles: one row one profile (an ICCID,
its profile id, APN and networks), held by one watch at a time.

A watch that reports a country where its tenant has stock gets one free,
unexpired profile (``allocate``), sent as a ``vsim`` command; it switches to it
and reports it (``net.profile``). The profile goes back to the stock when the
watch reports its home country, has reported another country for
``RELEASE_AWAY_S``, or is decommissioned (``release_device``). Every
allocation and release is audited. Running low (``VsimThreshold``, per country or
for the tenant) is warned once to the supervisors (``StockWatch``), until the
stock is above the threshold again.

Two watches never get the same profile: a profile is taken by one conditional
UPDATE (``device_id IS NULL``) that the database serialises (PostgreSQL's row
lock re-checks the condition after a concurrent commit; SQLite has one writer),
and a unique index on ``device_id`` keeps a watch to one profile."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import CursorResult, and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from cloud import protocol
from cloud.domain import commands
from cloud.domain.ingest_ids import new_cid
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.store.models import AuditEntry, Device, VsimLowWarning, VsimProfilePool, VsimThreshold

log = logging.getLogger("pers.vsim")
RELEASE_AWAY_S = 1800  # reports from another country this long: the watch has left (not a border cell)
DEFAULT_LOW_AT = 1     # free profiles at or below this are "running low" when no threshold is set
CANDIDATES = 16        # free profiles tried in turn when concurrent allocations take the first ones
ALL_COUNTRIES = "*"


def _free(tenant_id: int, country: str, now: datetime) -> tuple[Any, ...]:
    P = VsimProfilePool
    return (P.tenant_id == tenant_id, P.country == country, P.active.is_(True), P.device_id.is_(None),
            or_(P.expires_at.is_(None), P.expires_at > now))


def stocked(s: Session, tenant_id: int, country: str) -> bool:
    """The tenant keeps a stock for this country (free or not): it is allocated from, not listed."""
    return s.scalar(select(VsimProfilePool.id).where(VsimProfilePool.tenant_id == tenant_id,
                                                     VsimProfilePool.country == country).limit(1)) is not None


def held(s: Session, device_id: str) -> VsimProfilePool | None:
    return s.scalar(select(VsimProfilePool).where(VsimProfilePool.device_id == device_id))


def free_count(s: Session, tenant_id: int, country: str, now: datetime) -> int:
    return s.scalar(select(func.count()).select_from(VsimProfilePool).where(*_free(tenant_id, country, now))) or 0


def _audit(s: Session, now: datetime, actor: str, action: str, p: VsimProfilePool, device_id: str,
           **detail: Any) -> None:
    s.add(AuditEntry(at=now, actor=actor, action=action, tenant_id=p.tenant_id, target=f"device:{device_id}",
                     detail={"profile": p.name, "iccid": p.iccid, "country": p.country, **detail}))


def allocate(tx: Tx, device: Device, country: str, now: datetime) -> VsimProfilePool | None:
    """One free, unexpired profile of the device's tenant for ``country``, now the
    device's; None when the stock is empty (or the device already holds one)."""
    s = tx.session
    P = VsimProfilePool
    mine = aliased(VsimProfilePool)
    ids = s.scalars(select(P.id).where(*_free(device.tenant_id, country, now))
                    .order_by(P.priority, P.cost, P.expires_at.is_(None), P.expires_at, P.id)
                    .limit(CANDIDATES)).all()
    for pid in ids:
        taken = cast("CursorResult[Any]", s.execute(
            update(P).where(P.id == pid, P.device_id.is_(None), ~exists().where(mine.device_id == device.id))
            .values(device_id=device.id, allocated_at=now, away_since=None)
            .execution_options(synchronize_session=False))).rowcount
        if taken == 1:
            p = s.get_one(P, pid)
            s.refresh(p)
            _audit(s, now, "system", "vsim.allocated", p, device.id)
            log.info("vSIM profile allocated", extra={"device_id": device.id, "country": country, "profile": p.name})
            return p
    return None


def release(tx: Tx, p: VsimProfilePool, now: datetime, reason: str, actor: str = "system") -> None:
    device_id = p.device_id
    if device_id is None:
        return
    held_s = int((now - p.allocated_at).total_seconds()) if p.allocated_at else None
    p.device_id, p.allocated_at, p.away_since = None, None, None
    _audit(tx.session, now, actor, "vsim.released", p, device_id, reason=reason, held_s=held_s)
    log.info("vSIM profile released", extra={"device_id": device_id, "profile": p.name, "reason": reason})


def release_device(tx: Tx, device_id: str, now: datetime, reason: str = "decommissioned",
                   actor: str = "system") -> str | None:
    """The device's profile back to the stock (decommissioned, replaced); its name, if it held one."""
    p = held(tx.session, device_id)
    if p is None:
        return None
    release(tx, p, now, reason, actor)
    return p.name


def _send(tx: Tx, sender: CommandSender, clock: Clock, device: Device, profiles: list[VsimProfilePool]) -> None:
    cmd = protocol.VsimCmd(cid=new_cid(), ts=clock.unix(), profiles=[
        protocol.VsimProfile(name=p.name, mccmnc=list(p.mccmnc), apn=p.apn, priority=p.priority, cost=p.cost,
                             iccid=p.iccid) for p in profiles])
    commands.send(tx, sender, clock, device.id, cmd)


def on_country(tx: Tx, device: Device, country: str | None, now: datetime, sender: CommandSender, clock: Clock,
               *, alarm: bool = False) -> bool:
    """The stock's part of a report from ``country``. True when the tenant keeps a
    stock there (the platform's shared list is then not sent). In an alarm
    nothing is allocated or sent: the watch is not asked to switch networks
    while it raises one (the next report does it)."""
    if country is None or (device.protocol or "openpers") != "openpers":
        return False  # a gateway watch (docs/gateway.md) has no vsim command
    s = tx.session
    if device.home_country is None:
        device.home_country = country  # the first country seen is where its own SIM is at home
    home = country == device.home_country
    local = not home and stocked(s, device.tenant_id, country)
    mine = held(s, device.id)
    if mine is not None:
        if mine.country == country:
            mine.away_since = None  # back (or never gone): a border cell does not release it
            return True
        if mine.away_since is None:
            mine.away_since = now
        if alarm:
            return local
        left = now - mine.away_since >= timedelta(seconds=RELEASE_AWAY_S)
        if not (home or left or local):
            return local
        release(tx, mine, now, "home" if home else "left")
        s.flush()
        if not local:
            _send(tx, sender, clock, device, [])  # back to its home profile
            return False
    if not local or alarm:
        return local
    p = allocate(tx, device, country, now)
    if p is None:
        log.warning("no free vSIM profile", extra={"device_id": device.id, "country": country})
        if mine is not None:
            _send(tx, sender, clock, device, [])
        return True
    _send(tx, sender, clock, device, [p])
    return True


# --- the supervisors' view ------------------------------------------------------------------------------------
def threshold(s: Session, tenant_id: int, country: str) -> int:
    rows = dict(s.execute(select(VsimThreshold.country, VsimThreshold.low_at).where(
        VsimThreshold.tenant_id == tenant_id, VsimThreshold.country.in_((country, ALL_COUNTRIES)))).all())
    return int(rows.get(country, rows.get(ALL_COUNTRIES, DEFAULT_LOW_AT)))


def stock(s: Session, tenant_id: int, now: datetime) -> list[dict[str, Any]]:
    """Per country: profiles, free, held, expired, the threshold and whether it is low."""
    P = VsimProfilePool
    live = or_(P.expires_at.is_(None), P.expires_at > now)
    rows = s.execute(select(P.country, func.count(),
                            func.sum(_case(and_(P.device_id.is_(None), P.active.is_(True), live))),
                            func.sum(_case(P.device_id.is_not(None))),
                            func.sum(_case(~live)))
                     .where(P.tenant_id == tenant_id).group_by(P.country).order_by(P.country)).all()
    out = []
    for country, total, free, held_n, expired in rows:
        low_at = threshold(s, tenant_id, country)
        out.append({"country": country, "total": total, "free": int(free or 0), "held": int(held_n or 0),
                    "expired": int(expired or 0), "low_at": low_at, "low": int(free or 0) <= low_at})
    return out


def _case(cond: Any) -> Any:
    return case((cond, 1), else_=0)


def warnings(s: Session, tenant_id: int) -> list[dict[str, Any]]:
    return [{"country": w.country, "free": w.free, "low_at": w.low_at, "raised_at": w.raised_at.isoformat() + "Z"}
            for w in s.scalars(select(VsimLowWarning).where(VsimLowWarning.tenant_id == tenant_id)
                               .order_by(VsimLowWarning.country))]


class StockWatch:
    """Run by the ticker every ``every_s``: a stock at or below its threshold is
    warned once (an audit entry, a ``vsim_low`` live event, a row the supervisor
    page lists) until it is above again; holders away for ``RELEASE_AWAY_S``
    whose watch went silent give their profile back."""

    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, every_s: float = 5.0):
        self.sm, self.clock, self.events, self.every_s = sm, clock, events, every_s
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or (now - self._last).total_seconds() >= self.every_s

    def run(self, now: datetime) -> list[tuple[int, str]]:
        """The (tenant, country) newly warned."""
        self._last = now
        raised: list[tuple[int, str]] = []
        with transaction(self.sm) as tx:
            s = tx.session
            gone = now - timedelta(seconds=RELEASE_AWAY_S)
            for p in s.scalars(select(VsimProfilePool).where(VsimProfilePool.away_since <= gone)):
                release(tx, p, now, "left")
            s.flush()
            tenants = [t for t in s.scalars(select(VsimProfilePool.tenant_id).distinct()) if t is not None]
            for tenant_id in tenants:
                warned = {w.country: w for w in s.scalars(select(VsimLowWarning)
                                                          .where(VsimLowWarning.tenant_id == tenant_id))}
                for row in stock(s, tenant_id, now):
                    w = warned.get(row["country"])
                    if row["low"] and w is None:
                        s.add(VsimLowWarning(tenant_id=tenant_id, country=row["country"], free=row["free"],
                                             low_at=row["low_at"], raised_at=now))
                        s.add(AuditEntry(at=now, actor="system", action="vsim.stock_low", tenant_id=tenant_id,
                                         target=f"vsim:{row['country']}",
                                         detail={"free": row["free"], "low_at": row["low_at"]}))
                        ev = {"type": "vsim_low", "country": row["country"], "free": row["free"],
                              "low_at": row["low_at"]}
                        tx.after_commit(partial(self.events.publish, tenant_id, ev))
                        log.warning("vSIM stock running low", extra={"tenant_id": tenant_id, **ev})
                        raised.append((tenant_id, row["country"]))
                    elif not row["low"] and w is not None:
                        s.delete(w)
                    elif w is not None and w.free != row["free"]:
                        w.free = row["free"]  # still low: the page shows what is left, nobody is warned again
        return raised


# --- provisioning (the platform operator: `pers vsim`) ------------------------------------------------------
def add_profile(sm: sessionmaker[Session], clock: Clock, *, tenant_id: int, country: str, name: str, iccid: str,
                mccmnc: list[str], apn: str | None = None, expires_at: datetime | None = None, priority: int = 0,
                cost: float = 0, actor: str = "platform") -> dict[str, Any]:
    """One profile into the tenant's stock for ``country``."""
    if len(country) != 2 or not country.isalpha():
        raise ValueError("country is an ISO 3166 alpha-2 code")
    if not mccmnc or not all(x.isdigit() and len(x) in (5, 6) for x in mccmnc):
        raise ValueError("mccmnc is a list of 5-6 digit PLMN codes")
    try:
        protocol.VsimProfile(name=name, mccmnc=mccmnc, apn=apn, iccid=iccid)
    except ValueError as e:
        raise ValueError(f"profile {name!r}: {e}") from None
    with transaction(sm) as tx:
        s = tx.session
        if s.scalar(select(VsimProfilePool.id).where(or_(VsimProfilePool.name == name,
                                                         VsimProfilePool.iccid == iccid))) is not None:
            raise ValueError(f"a profile named {name!r} or with ICCID {iccid} is already in the pool")
        p = VsimProfilePool(tenant_id=tenant_id, country=country.upper(), name=name, iccid=iccid, mccmnc=mccmnc,
                            apn=apn, expires_at=expires_at, priority=priority, cost=cost, active=True)
        s.add(p)
        s.flush()
        s.add(AuditEntry(at=clock.now(), actor=actor, action="vsim.profile_added", tenant_id=tenant_id,
                         target=f"vsim:{p.id}", detail={"country": p.country, "name": name, "iccid": iccid}))
        return profile_view(p)


def set_threshold(sm: sessionmaker[Session], clock: Clock, tenant_id: int, country: str | None, low_at: int,
                  actor: str = "platform") -> None:
    key = (country or ALL_COUNTRIES).upper()
    with transaction(sm) as tx:
        s = tx.session
        row = s.scalar(select(VsimThreshold).where(VsimThreshold.tenant_id == tenant_id,
                                                   VsimThreshold.country == key))
        if row is None:
            s.add(VsimThreshold(tenant_id=tenant_id, country=key, low_at=low_at))
        else:
            row.low_at = low_at
        s.add(AuditEntry(at=clock.now(), actor=actor, action="vsim.threshold_set", tenant_id=tenant_id,
                         target=f"vsim:{key}", detail={"low_at": low_at}))


def profile_view(p: VsimProfilePool) -> dict[str, Any]:
    return {"id": p.id, "country": p.country, "name": p.name, "iccid": p.iccid, "mccmnc": p.mccmnc, "apn": p.apn,
            "expires_at": p.expires_at.isoformat() + "Z" if p.expires_at else None, "device_id": p.device_id,
            "allocated_at": p.allocated_at.isoformat() + "Z" if p.allocated_at else None,
            "away_since": p.away_since.isoformat() + "Z" if p.away_since else None}


def tenant_view(s: Session, tenant_id: int, now: datetime) -> dict[str, Any]:
    """The admin page's: the stock per country, and which watch holds which profile."""
    held_rows = s.scalars(select(VsimProfilePool).where(VsimProfilePool.tenant_id == tenant_id,
                                                        VsimProfilePool.device_id.is_not(None))
                          .order_by(VsimProfilePool.device_id))
    return {"stock": stock(s, tenant_id, now), "held": [profile_view(p) for p in held_rows],
            "warnings": warnings(s, tenant_id)}
