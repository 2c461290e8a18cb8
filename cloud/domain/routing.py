"""Which call centre answers a case.

The rules, in order (docs/operations.md, "Routing"):
1. Candidates are the tenant's contracted centres, in contract order.
2. Keep those whose coverage holds the position: the alert's fix, else the
   wearer's home. Coverage is a country (from the cell's MCC) or an area
   (geodesic distance to a circle's centre, point in polygon). A centre with no
   coverage defined covers everywhere (a national backup).
3. Keep those speaking the wearer's language, then those open now.
4. Prefer centres with an operator present (seen within ``operator_present_s``).
Each filter that would leave nobody is relaxed rather than leaving the alarm
unrouted: an alarm answered in the wrong language beats no answer. The decision
and its reasons are written to the case timeline.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain.geo import area_contains, country_of_mcc, within_windows
from cloud.domain.ports import Clock
from cloud.store.models import AlertCase, CallCentre, Contract, Device, Operator, Wearer

log = logging.getLogger("pers.routing")

# Presence is written at most this often per operator: every API call would be a write otherwise.
SEEN_WRITE_EVERY_S = 15


@dataclass
class RoutingDecision:
    centre_id: int | None
    order: list[int] = field(default_factory=list)  # every candidate, best first (the escalation path)
    reasons: list[str] = field(default_factory=list)
    basis: str = "none"  # alert | home | none


def contracted_centres(s: Session, tenant_id: int) -> list[CallCentre]:
    rows = s.execute(select(CallCentre).join(Contract, Contract.centre_id == CallCentre.id)
                     .where(Contract.tenant_id == tenant_id).order_by(Contract.rank, CallCentre.id)).scalars()
    return list(rows)


def covers(centre: CallCentre, lat: float | None, lon: float | None, country: str | None) -> bool | None:
    """True/False, or None when the centre declares no coverage (covers everywhere)."""
    if not centre.countries and not centre.areas:
        return None
    if country and centre.countries and country.upper() in {c.upper() for c in centre.countries}:
        return True
    if lat is not None and lon is not None:
        return any(area_contains(a, lat, lon) for a in centre.areas or [])
    return False


def present_counts(s: Session, tenant_id: int, now: datetime, window_s: int) -> dict[int, int]:
    since = now - timedelta(seconds=window_s)
    rows = s.execute(select(Operator.centre_id, func.count())
                     .where(Operator.tenant_id == tenant_id, Operator.centre_id.is_not(None),
                            Operator.active.is_(True), Operator.last_seen_at >= since,
                            Operator.role.in_(("operator", "supervisor")))
                     .group_by(Operator.centre_id)).all()
    return {cid: n for cid, n in rows if cid is not None}  # the query keeps centre ids only


def decide(s: Session, *, tenant_id: int, lat: float | None, lon: float | None, country: str | None,
           language: str | None, now: datetime, present_window_s: int = 120,
           basis: str = "alert", exclude: tuple[int, ...] = ()) -> RoutingDecision:
    centres = [c for c in contracted_centres(s, tenant_id) if c.id not in exclude]
    if not centres:
        return RoutingDecision(None, [], ["no contracted centre" + (" left" if exclude else "")], basis)
    reasons: list[str] = []

    def narrow(pool: list[CallCentre], keep: Callable[[CallCentre], bool], what: str) -> list[CallCentre]:
        kept = [c for c in pool if keep(c)]
        if kept:
            if len(kept) < len(pool):
                reasons.append(what)
            return kept
        reasons.append(f"no centre {what}: relaxed")
        return pool

    if lat is None and country is None:
        reasons.append("no position: contract order")
        pool = centres
    else:
        by_area = [c for c in centres if lat is not None and lon is not None
                   and any(area_contains(a, lat, lon) for a in c.areas or [])]
        by_country = [c for c in centres if country and country.upper() in {x.upper() for x in c.countries or []}]
        # A fix from the alert is more precise than a country; but the home is only a guess
        # while the cell's country is what the network says now.
        first, second = (by_area, by_country) if basis == "alert" else (by_country, by_area)
        explicit = first + [c for c in second if c not in first]
        everywhere = [c for c in centres if covers(c, lat, lon, country) is None]
        pool = explicit + [c for c in everywhere if c not in explicit]
        if explicit:
            reasons.append(f"covers the {'home' if basis == 'home' else 'position'}"
                           if explicit[0] in by_area and (basis == "alert" or not by_country)
                           else f"covers the country {country}")
        elif everywhere:
            reasons.append("no covering centre: national backup")
        else:
            reasons.append("no covering centre: contract order")
            pool = list(centres)
        # Inside each group the contract order holds (sorted() is stable).
        rank = {c.id: i for i, c in enumerate(centres)}
        group = {c.id: i for i, c in enumerate(explicit)}
        pool = sorted(pool, key=lambda c: (group.get(c.id, len(explicit)), rank[c.id]))

    if language:
        lang = language.lower()
        pool = narrow(pool, lambda c: not c.languages or lang in {x.lower() for x in c.languages},
                      f"speaks {lang}")
    pool = narrow(pool, lambda c: within_windows(c.hours, c.timezone, now), "open now")

    present = present_counts(s, tenant_id, now, present_window_s)
    with_ops = [c for c in pool if present.get(c.id)]
    if with_ops and len(with_ops) < len(pool):
        reasons.append("operators present")
    elif not with_ops:
        reasons.append("no operator present anywhere")
    best = with_ops + [c for c in pool if c not in with_ops]
    # The escalation path: the chosen order, then every other contracted centre in contract order.
    order = [c.id for c in best] + [c.id for c in centres if c not in best]
    return RoutingDecision(order[0], order, reasons, basis)


def decide_for_case(s: Session, case: AlertCase, now: datetime, present_window_s: int = 120,
                    country: str | None = None, exclude: tuple[int, ...] = ()) -> RoutingDecision:
    wearer = s.get(Wearer, case.wearer_id) if case.wearer_id else None
    if country is None:
        # Re-routing (the ticker, an escalation) must judge by the same country the
        # first routing saw: the one the watch's network last reported.
        country = _country_of_device(s, case.device_id)
    lat, lon, basis = case.lat, case.lon, "alert"
    if lat is None and wearer is not None and wearer.home_lat is not None:
        lat, lon, basis = wearer.home_lat, wearer.home_lon, "home"
    if lat is None and country is None:
        basis = "none"
    return decide(s, tenant_id=case.tenant_id, lat=lat, lon=lon, country=country,
                  language=wearer.language if wearer else None, now=now,
                  present_window_s=present_window_s, basis=basis, exclude=exclude)


def _country_of_device(s: Session, device_id: str | None) -> str | None:
    device = s.get(Device, device_id) if device_id else None
    cell = device.last_cell if device is not None else None
    mcc = cell.get("mcc") if isinstance(cell, dict) else None
    return country_of_mcc(mcc) if isinstance(mcc, int) else None


def record_operator_seen(sm: sessionmaker[Session], clock: Clock, operator_id: int) -> bool:
    """Call on every authenticated API request and WebSocket message. Writes
    (and returns True) only when the last record is older than
    SEEN_WRITE_EVERY_S, so a busy console costs one write every 15 s."""
    now = clock.now()
    with sm() as s:
        res = s.execute(update(Operator)
                        .where(Operator.id == operator_id,
                               (Operator.last_seen_at.is_(None))
                               | (Operator.last_seen_at < now - timedelta(seconds=SEEN_WRITE_EVERY_S)))
                        .values(last_seen_at=now))
        # Session.execute is typed to return Result, but an UPDATE runs to a CursorResult (rowcount).
        done: int = res.rowcount  # type: ignore[attr-defined]
        s.commit()
    return bool(done)
