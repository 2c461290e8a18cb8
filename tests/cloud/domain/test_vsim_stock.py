"""A tenant's stock of local vSIM profiles: allocation to one watch at a time
(also under concurrency, on SQLite and PostgreSQL), release when the watch goes
home, has been away long enough or is decommissioned, expiry, the audit, and
the low-stock warning raised once."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from cloud.cli_device import provision_devices
from cloud.domain.uow import transaction
from cloud.domain.vsim_stock import RELEASE_AWAY_S, add_profile, allocate, release_device, set_threshold
from cloud.store.models import AuditEntry, Device, VsimLowWarning, VsimProfilePool
from tests.cloud.helpers import alert


def status(world, mid, op, profile=None):
    net = {"op": op, **({"profile": profile} if profile else {})}
    body = {"v": 1, "mid": mid, "ts": world.clock.unix(), "batt": {"pct": 80}, "fw": "0.1.0", "cfg": 1, "net": net}
    return world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/status", json.dumps(body).encode())


def stock_ch(world, n, **kw):
    for i in range(n):
        add_profile(world.svc.sm, world.clock, tenant_id=world.seed.tenant_id, country="CH", name=f"ch-{i}",
                    iccid=f"89410112345678{i:05d}", mccmnc=["22801"], apn="iot.ch", **kw)


def vsim_cmds(world):
    return [c for _, c in world.sender.sent if c["type"] == "vsim"]


def holder(world, name):
    with world.svc.sm() as s:
        return s.scalar(select(VsimProfilePool.device_id).where(VsimProfilePool.name == name))


def audit(world, action):
    with world.svc.sm() as s:
        return [(a.target, a.detail.get("profile"), a.detail.get("reason"))
                for a in s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]


def test_two_watches_never_get_the_same_profile(world):
    # Eight watches cross the border at once; five profiles, one of them expired.
    stock_ch(world, 4)
    add_profile(world.svc.sm, world.clock, tenant_id=world.seed.tenant_id, country="CH", name="ch-old",
                iccid="8941011234567899999", mccmnc=["22801"], expires_at=world.clock.now() - timedelta(seconds=1))
    ids = [d for d, _ in provision_devices(world.svc.sm, world.clock, world.seed.tenant_id,
                                           [f"rush-{i}" for i in range(8)], actor="test")]
    start, got, errors = threading.Barrier(len(ids)), {}, []

    def cross(device_id):
        try:
            start.wait(10)
            with transaction(world.svc.sm) as tx:
                d = tx.session.get_one(Device, device_id)
                p = allocate(tx, d, "CH", world.clock.now())
                got[device_id] = p.name if p else None
        except Exception as e:  # noqa: BLE001 (reported by the assertion below)
            errors.append(repr(e))

    threads = [threading.Thread(target=cross, args=(d,)) for d in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    handed = [n for n in got.values() if n]
    assert sorted(handed) == ["ch-0", "ch-1", "ch-2", "ch-3"]  # each once, never the expired one
    with world.svc.sm() as s:
        rows = dict(s.execute(select(VsimProfilePool.name, VsimProfilePool.device_id)).all())
    assert {n: rows[n] for n in handed} == {n: d for d, n in got.items() if n}
    assert rows["ch-old"] is None
    # A watch that holds one gets no second.
    with transaction(world.svc.sm) as tx:
        lucky = next(d for d, n in got.items() if n)
        assert allocate(tx, tx.session.get_one(Device, lucky), "CH", world.clock.now()) is None


# The rules, not the database: the allocation's database part is above, and the whole
# path runs on both in tests/hwsim/test_traveller_border.py.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_kept_on_a_border_cell_released_at_home_away_or_decommissioned_and_low_stock_warned_once(world):
    stock_ch(world, 2)
    dev = world.seed.device_id
    status(world, "1.1", "20801")  # at home in France: its own SIM, nothing to allocate
    assert vsim_cmds(world) == []
    status(world, "1.2", "22801")  # in Switzerland, roaming on its own SIM
    cmds = vsim_cmds(world)
    assert [[(p["name"], p["iccid"], p["apn"]) for p in c["profiles"]] for c in cmds] == [
        [("ch-0", "8941011234567800000", "iot.ch")]]
    assert holder(world, "ch-0") == dev
    status(world, "1.3", "22801", profile="ch-0")  # switched, and says so
    with world.svc.sm() as s:
        d = s.get_one(Device, dev)
        assert (d.home_country, d.country, d.vsim_profile) == ("FR", "CH", "ch-0")
    # An alarm heard on a German cell: nothing allocated, released or sent while it runs.
    alert(world, "1.4", loc=None, cell={"mcc": 262, "mnc": 1, "lac": 1, "cid": 2})
    assert len(vsim_cmds(world)) == 1 and holder(world, "ch-0") == dev
    # A German cell for a while, then back in Switzerland: still its profile.
    world.clock.advance(RELEASE_AWAY_S - 60)
    status(world, "1.5", "26201", profile="ch-0")
    assert holder(world, "ch-0") == dev
    status(world, "1.6", "22801", profile="ch-0")
    world.clock.advance(120)
    world.svc.ticker.tick()
    assert holder(world, "ch-0") == dev
    # Home again: released at once, and the watch told to go back to its own SIM.
    status(world, "1.7", "20801", profile="ch-0")
    assert holder(world, "ch-0") is None
    assert vsim_cmds(world)[-1]["profiles"] == []
    # Abroad again, then on to Germany and silent: the ticker gives it back after RELEASE_AWAY_S.
    status(world, "1.8", "22801")
    assert holder(world, "ch-0") == dev
    status(world, "1.9", "26201", profile="ch-0")
    world.clock.advance(RELEASE_AWAY_S + 1)
    world.svc.ticker.tick()
    assert holder(world, "ch-0") is None
    # Decommissioned while holding one (pers vsim release).
    status(world, "1.10", "22801")
    with transaction(world.svc.sm) as tx:
        assert release_device(tx, dev, world.clock.now(), actor="cli:ops") == "ch-0"
    assert holder(world, "ch-0") is None
    assert audit(world, "vsim.allocated") == [(f"device:{dev}", "ch-0", None)] * 3
    assert audit(world, "vsim.released") == [(f"device:{dev}", "ch-0", r) for r in ("home", "left", "decommissioned")]

    # Running low: warned once, until the stock recovers. Five free now, the tenant warns at 3.
    for i in range(3):
        add_profile(world.svc.sm, world.clock, tenant_id=world.seed.tenant_id, country="CH", name=f"ch-more-{i}",
                    iccid=f"89410112345678{90 + i:05d}", mccmnc=["22801"], apn="iot.ch", priority=9)
    set_threshold(world.svc.sm, world.clock, world.seed.tenant_id, None, 3)  # the tenant's default
    events = world.events.events
    ticker = world.svc.ticker

    def tick():
        world.clock.advance(10)
        ticker.tick()

    def warned():
        return [e for _, e in events[since:] if e.get("type") == "vsim_low"]

    # (The ticker warned of CH above, at 1 free of 2 against the default of 1.)
    since = len(events)
    tick()
    with world.svc.sm() as s:
        assert s.scalars(select(VsimLowWarning)).all() == []  # 5 free: recovered
    assert warned() == []
    status(world, "2.1", "22801")  # one held: 4 free
    tick()
    assert warned() == []
    provision_devices(world.svc.sm, world.clock, world.seed.tenant_id, ["other-1"], actor="test")
    with transaction(world.svc.sm) as tx:
        assert allocate(tx, tx.session.get_one(Device, "other-1"), "CH", world.clock.now()) is not None  # 3 free
    tick()
    tick()
    tick()
    assert [(e["country"], e["free"], e["low_at"]) for e in warned()] == [("CH", 3, 3)]
    assert len(audit(world, "vsim.stock_low")) == 2  # the one above, and this one
    # A country's own threshold beats the tenant's: at 2, three free are not low; the warning clears.
    set_threshold(world.svc.sm, world.clock, world.seed.tenant_id, "CH", 2)
    tick()
    with world.svc.sm() as s:
        assert s.scalars(select(VsimLowWarning)).all() == []
    set_threshold(world.svc.sm, world.clock, world.seed.tenant_id, "CH", 3)
    tick()
    tick()
    assert len(warned()) == 2  # low again: warned again, once
