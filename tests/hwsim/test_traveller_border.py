"""A traveller crosses from France into Switzerland, end to end, with nothing
stood in: the real firmware under `micropython` in hwsim (its own French SIM
roams on Swisscom), the embedded Mosquitto, the real cloud (SQLite and
PostgreSQL).

The tenant's stock (loaded as `pers vsim add` does) has one Swiss profile that
expired and one that has not: the cloud allocates the live one when the watch
reports Switzerland, the watch switches to it, registers and reports it, and
the SOS the wearer raises afterwards goes over it (the case stores the profile).
The stock, now empty, raises one supervisor warning, and the admin API shows
who holds what."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from cloud.cli import main
from cloud.seed import DEMO_SUPERVISOR
from cloud.store.models import AlertCase, AuditEntry, Command, Device, VsimProfilePool
from hwsim.events import Recorder
from hwsim.runner import run_scenario
from hwsim.scenario import load
from tests.console.test_supervisor import ADMIN
from tests.hwsim.test_child_leaves_school import wait_until

LIVE, EXPIRED = "ch-swisscom-0002", "ch-swisscom-0001"


def test_a_traveller_gets_a_local_profile_and_an_sos_goes_over_it(stack_factory, monkeypatch, tmp_path):
    # The SIM provider's list, as the platform operator loads it (`pers vsim add --csv`). The
    # expired profile is the better of the two (priority): handing it out would be the mistake.
    today = datetime.now(UTC).date()
    (tmp_path / "stock.csv").write_text(
        "country,name,iccid,mccmnc,apn,expires,priority\n"
        f"CH,{EXPIRED},8941011234567800012,22801,iot.ch,{today - timedelta(days=1)},0\n"
        f"CH,{LIVE},8941011234567800020,22801,iot.ch,{today + timedelta(days=30)},1\n")

    def stock(sm, seed):
        # The CLI on the stack's own database (SQLite file or PostgreSQL), before the cloud starts.
        monkeypatch.setenv("PERS_DATABASE_URL", sm.kw["bind"].url.render_as_string(hide_password=False))
        assert main(["vsim", "add", "--data-dir", str(tmp_path / "cli"), "--tenant", str(seed.tenant_id),
                     "--csv", str(tmp_path / "stock.csv")]) == 0

    stack = stack_factory(before_start=stock)
    stack.services.accounts.create_operator(stack.seed.tenant_id, ADMIN[0], ADMIN[1], role="admin")
    dev = stack.seed.device_id
    stay, rec = threading.Event(), Recorder()
    result: list = []
    player = threading.Thread(target=lambda: result.append(run_scenario(
        load("traveller_border"), dev, stack.seed.device_secret,
        (stack.settings.mqtt_host, stack.settings.mqtt_port), recorder=rec, stay=stay)), daemon=True)
    player.start()
    try:
        def sos_case():
            with stack.services.sm() as s:
                return s.scalar(select(AlertCase).where(AlertCase.kind == "sos"))

        case = wait_until(sos_case, 60)
        tail = [f"{e['t']:.0f} {e.get('line')}" for e in rec.events if e["type"] == "log"][-40:]
        assert case is not None, f"no SOS case; watch: {tail}"
        # The alarm went over the local profile the cloud handed out, and says so.
        with stack.services.sm() as s:
            d = s.get_one(Device, dev)
            seen = (d.home_country, d.country, d.last_status, s.scalars(select(Command.payload)).all())
        assert case.net_profile == LIVE, "\n".join(tail) + f"\ncloud: {seen}"
        with stack.services.sm() as s:
            d = s.get_one(Device, dev)
            assert (d.home_country, d.country, d.vsim_profile) == ("FR", "CH", LIVE)
            held = {p.name: p.device_id for p in s.scalars(select(VsimProfilePool))}
            assert held == {LIVE: dev, EXPIRED: None}
            audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "vsim.allocated")).all()
            assert [(a.target, a.detail["profile"], a.detail["iccid"]) for a in audit] == [
                (f"device:{dev}", LIVE, "8941011234567800020")]
            cmds = s.scalars(select(Command).where(Command.device_id == dev, Command.type == "vsim")).all()
            assert [c.status for c in cmds] == ["acked"]  # one command, and the watch took it
        # The watch itself: home SIM first, then the local profile (no scan: by its own network).
        lines = [e["line"] for e in rec.events if e["type"] == "log"]
        home = next(i for i, x in enumerate(lines) if "registered with the home profile" in x)
        local = next(i for i, x in enumerate(lines) if f"registered with profile {LIVE}" in x)
        assert home < local
        assert not [x for x in lines if "networks in range" in x]  # by its own network: no scan of minutes

        with httpx.Client(base_url=stack.url) as admin:
            admin.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
            view = admin.get("/api/admin/vsim-stock").json()
            assert view["stock"] == [{"country": "CH", "total": 2, "free": 0, "held": 1, "expired": 1,
                                      "low_at": 1, "low": True}]
            assert [(h["device_id"], h["name"]) for h in view["held"]] == [(dev, LIVE)]
            assert next(x for x in admin.get("/api/admin/devices").json()["items"]
                        if x["id"] == dev)["vsim_profile"] == LIVE
        # Empty stock: the supervisors are warned, once (the ticker checks again and again).
        with httpx.Client(base_url=stack.url) as sup:
            sup.post("/api/auth/login", json={"username": DEMO_SUPERVISOR[0], "password": DEMO_SUPERVISOR[1]})
            warned = wait_until(lambda: sup.get("/api/supervisor/vsim-stock").json()["warnings"], 15)
            assert [(w["country"], w["free"]) for w in warned] == [("CH", 0)]
        with stack.services.sm() as s:
            assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "vsim.stock_low")).all()) == 1
    finally:
        stay.set()
        player.join(30)
    assert result and result[0][0], result
