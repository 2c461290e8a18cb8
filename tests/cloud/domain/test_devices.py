"""Devices: presence with hysteresis and offline cases, versioned retained config,
command expiry, the vSIM pool on a country change."""
import json

from sqlalchemy import func, select

from cloud.domain import commands
from cloud.domain.admin import add_vsim_profile
from cloud.domain.uow import transaction
from cloud.store.models import AlertCase, Command, Device, DeviceConfig
from tests.cloud.helpers import actions, admin, alert


def status(world, mid, **extra):
    body = {"v": 1, "mid": mid, "ts": world.clock.unix(), "batt": {"pct": 80}, "fw": "0.1.0", "cfg": 1, **extra}
    return world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/status", json.dumps(body).encode())


def device(world):
    with world.svc.sm() as s:
        return s.get(Device, world.seed.device_id)


def test_presence_goes_suspect_then_offline_with_hysteresis_and_opens_one_case(world):
    st = world.svc.settings
    status(world, "1.1")
    assert device(world).presence == "online"
    silent_limit = st.heartbeat_s * st.heartbeat_tolerance
    world.clock.advance(silent_limit - 1)
    assert world.svc.ticker.tick().devices.suspect == []
    world.clock.advance(2)
    assert world.svc.ticker.tick().devices.suspect == [world.seed.device_id]
    # A message during the grace period: back online, nothing raised (no flapping).
    world.clock.advance(st.offline_grace_s - 1)
    status(world, "1.2")
    assert world.svc.ticker.tick().devices.offline == []
    assert device(world).presence == "online"
    # Silence again, past the grace: offline, and one low-priority case.
    world.clock.advance(silent_limit + 1)
    world.svc.ticker.tick()
    world.clock.advance(st.offline_grace_s)
    r = world.svc.ticker.tick().devices
    assert r.offline == [world.seed.device_id] and len(r.cases) == 1
    c = world.svc.cases.get_case(admin(world), r.cases[0])
    assert (c["kind"], c["priority"], c["status"]) == ("offline", 3, "routed")
    assert device(world).online is False
    # Later ticks do not open more cases; a message writes "back_online" to the open case.
    world.clock.advance(3600)
    assert world.svc.ticker.tick().devices.cases == []
    status(world, "1.3")
    assert "back_online" in actions(world, r.cases[0])
    assert world.events.of_type("device")[-1]["device"]["presence"] == "offline"


def test_last_will_is_only_a_suspicion(world):
    status(world, "1.1")
    world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/presence", b'{"online":false,"ts":null}')
    d = device(world)
    assert (d.presence, d.online) == ("suspect", False)
    world.clock.advance(world.svc.settings.offline_grace_s - 5)
    world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/presence", b'{"online":true,"ts":null}')
    world.clock.advance(10)
    assert world.svc.ticker.tick().devices.offline == []
    assert device(world).presence == "online"


def test_an_offline_device_joins_an_open_alarm_instead_of_a_second_case(world):
    c = alert(world, "1.1").case_id
    world.clock.advance(world.svc.settings.heartbeat_s * 3)
    world.svc.ticker.tick()
    world.clock.advance(world.svc.settings.offline_grace_s)
    world.svc.ticker.tick()
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(AlertCase)) == 1
    assert "offline_joined" in actions(world, c)


def test_config_is_versioned_published_retained_and_sets_the_heartbeat(world):
    adm = admin(world)
    first = world.svc.admin.push_config(adm, world.seed.device_id, {"heartbeat_s": 600})
    second = world.svc.admin.push_config(adm, world.seed.device_id, {"fall_detection": False})
    assert (first["version"], second["version"]) == (1, 2)
    assert second["heartbeat_s"] == 600 and second["fall_detection"] is False
    assert second["whitelist"] == ["+33611111111", "+33622222222"]  # the wearer's contacts, in cascade order
    assert second["callcenter_number"] == "+33400000000"
    assert [c["version"] for _, c in world.sender.configs] == [1, 2]
    assert device(world).heartbeat_s == 600
    status(world, "1.1", cfg=1)
    assert world.svc.admin.get_device(adm, world.seed.device_id)["config_pending"] is True
    status(world, "1.2", cfg=2)
    assert world.svc.admin.get_device(adm, world.seed.device_id)["config_pending"] is False
    # The shorter heartbeat now decides when it is suspect.
    world.clock.advance(600 * world.svc.settings.heartbeat_tolerance + 1)
    assert world.svc.ticker.tick().devices.suspect == [world.seed.device_id]


def test_bad_config_is_refused_and_nothing_is_published(world):
    import pytest

    from cloud.domain.errors import Invalid
    with pytest.raises(Invalid) as err:
        world.svc.admin.push_config(admin(world), world.seed.device_id, {"heartbeat_s": 5})
    assert "heartbeat_s" in err.value.message
    with pytest.raises(Invalid):
        world.svc.admin.push_config(admin(world), world.seed.device_id, {"whitelist": ["+1"]})
    assert world.sender.configs == []
    with world.svc.sm() as s:
        assert s.scalar(select(func.count()).select_from(DeviceConfig)) == 0


def test_commands_expire_and_a_late_ack_is_still_recorded(world):
    from cloud import protocol
    c = alert(world, "1.1").case_id
    with transaction(world.svc.sm) as tx:
        commands.send(tx, world.sender, world.clock, world.seed.device_id,
                      protocol.CallCmd(cid="c-call1", ts=world.clock.unix(), number="+33611111111"), case_id=c)
    assert world.sender.sent[-1][1]["type"] == "call"
    world.clock.advance(commands.TTL_BY_TYPE["call"] - 1)
    assert world.svc.ticker.tick().expired == []
    world.clock.advance(2)
    assert world.svc.ticker.tick().expired == ["c-call1"]
    assert "command_expired" in actions(world, c)
    world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/ack",
                              json.dumps({"v": 1, "mid": "9.9", "cid": "c-call1", "ok": True}).encode())
    with world.svc.sm() as s:
        cmd = s.get(Command, "c-call1")
        assert cmd.status == "acked" and cmd.expired_at is not None


def test_a_new_country_gets_the_best_vsim_profiles(world):
    add_vsim_profile(world.svc.sm, world.clock, country="CH", name="ch-swisscom", mccmnc=["22801"],
                     apn="gprs.swisscom.ch",
                     priority=0, cost=0.02)
    add_vsim_profile(world.svc.sm, world.clock, country="CH", name="ch-sunrise", mccmnc=["22802"], priority=0,
                     cost=0.01)
    add_vsim_profile(world.svc.sm, world.clock, country="CH", name="ch-salt", mccmnc=["22803"], priority=1)
    add_vsim_profile(world.svc.sm, world.clock, country="FR", name="fr-1", mccmnc=["20801"])
    # At home in France on its French profile: nothing to send.
    status(world, "1.1", net={"profile": "fr-1", "op": "20801"})
    assert [c for _, c in world.sender.sent if c["type"] == "vsim"] == []
    assert device(world).country == "FR"
    # Crosses into Switzerland (the alert's cell says MCC 228).
    alert(world, "1.2", loc=None, cell={"mcc": 228, "mnc": 1, "lac": 1001, "cid": 10001})
    vsim = [c for _, c in world.sender.sent if c["type"] == "vsim"]
    assert len(vsim) == 1
    assert [p["name"] for p in vsim[0]["profiles"]] == ["ch-sunrise", "ch-swisscom", "ch-salt"]
    d = device(world)
    assert (d.country, d.vsim_profile) == ("CH", "ch-sunrise")
    with world.svc.sm() as s:
        assert s.get(Command, vsim[0]["cid"]).status == "sent"  # tracked like every command
    # The same country again: nothing new.
    status(world, "1.3", net={"profile": "ch-sunrise", "op": "22802"})
    assert len([c for _, c in world.sender.sent if c["type"] == "vsim"]) == 1
    # A country with no profile in the pool: recorded, nothing sent.
    status(world, "1.4", net={"profile": "ch-sunrise", "op": "26201"})
    assert device(world).country == "DE"
    assert len([c for _, c in world.sender.sent if c["type"] == "vsim"]) == 1
