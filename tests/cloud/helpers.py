"""Builders for the issue-5 tests."""
from __future__ import annotations

import json

from sqlalchemy import select

from cloud.store.models import AlertCase, CaseEvent, Contract, Operator

LYON = (45.7640, 4.8357)
GENEVA = (46.2044, 6.1432)
PARIS = (48.8566, 2.3522)
PARIS_POLYGON = [[48.90, 2.25], [48.90, 2.42], [48.81, 2.42], [48.81, 2.25]]


def alert(world, mid, kind="sos", loc=LYON, device=None, **extra):
    body = {"v": 1, "mid": mid, "ts": world.clock.unix(), "kind": kind, "trigger": "button", **extra}
    if loc is not None:
        body["loc"] = {"lat": loc[0], "lon": loc[1], "acc": 8.0, "src": "gnss"}
    return world.svc.ingestor.handle(f"pers/v1/{device or world.seed.device_id}/alert", json.dumps(body).encode())


def loc_report(world, mid, lat, lon, acc=5.0, device=None, **extra):
    body = {"v": 1, "mid": mid, "ts": world.clock.unix(), "loc": {"lat": lat, "lon": lon, "acc": acc, "src": "gnss"},
            "reason": "periodic", **extra}
    return world.svc.ingestor.handle(f"pers/v1/{device or world.seed.device_id}/loc", json.dumps(body).encode())


def operator(world, username, role="operator", centre_id=None, tenant_id=None):
    world.svc.accounts.create_operator(tenant_id or world.seed.tenant_id, username, username + "-pw-123",
                                       role=role, centre_id=centre_id)
    with world.svc.sm() as s:
        return s.scalar(select(Operator).where(Operator.username == username))


def admin(world):
    with world.svc.sm() as s:
        found = s.scalar(select(Operator).where(Operator.username == "boss"))
    return found or operator(world, "boss", role="admin")


def centre(world, name, *, contract=True, **data):
    return world.svc.admin.create_centre(admin(world), {"name": name, "contract": contract, **data})


def only_contract(world, *centre_ids):
    """Replace the seed's contract (its Lyon centre covers everywhere) by these centres, in order."""
    world.svc.admin.set_contract(admin(world), list(centre_ids))


def case(world, case_id):
    with world.svc.sm() as s:
        return s.get(AlertCase, case_id)


def timeline(world, case_id):
    with world.svc.sm() as s:
        return [(e.action, e.detail) for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                                        .order_by(CaseEvent.id))]


def actions(world, case_id):
    return [a for a, _ in timeline(world, case_id)]


def contract_ids(world):
    with world.svc.sm() as s:
        return list(s.scalars(select(Contract.centre_id).where(Contract.tenant_id == world.seed.tenant_id)
                              .order_by(Contract.rank)))


def circle(lat_lon, km):
    return {"type": "circle", "lat": lat_lon[0], "lon": lat_lon[1], "radius_m": km * 1000}
