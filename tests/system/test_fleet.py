"""Fleet twins against the real stack (embedded Mosquitto + cloud + demo seed):
the same wire contract as the firmware, at a small scale."""
import asyncio
import json
import time

import pytest
from sqlalchemy import func, select

from cloud import protocol
from cloud.store.models import AlertCase, Command, Device, LocationPoint
from hwsim.fleet import Fleet, main, percentiles
from hwsim.provision import provision_fleet, read_credentials

N = 20


def _provision(stack, tmp_path, n=N, prefix="fleet"):
    creds_file = tmp_path / f"{prefix}.csv"
    creds = provision_fleet(stack.settings, n, prefix=prefix, credentials=creds_file)
    time.sleep(0.5)  # Mosquitto re-reads its password file on SIGHUP
    return creds, creds_file


def test_every_twin_sos_becomes_one_case_and_is_acked(stack, tmp_path):
    creds, creds_file = _provision(stack, tmp_path)
    assert read_credentials(creds_file) == creds
    with stack.services.sm() as s:
        tenants = set(s.scalars(select(Device.tenant_id).where(Device.id.like("fleet-%"))))
        demo_tenant = s.get(Device, stack.seed.device_id).tenant_id
    assert tenants == {demo_tenant}  # the demo operator's tenant sees the fleet's cases

    async def scenario():
        # over TLS, as the watches: the broker's TLS listener, verified against its CA
        fleet = Fleet(creds, stack.settings.mqtt_host, stack.settings.mqtt_tls_port, alert_resend_s=5.0,
                      ca=stack.broker.tls.cafile)
        fleet.record = []
        await fleet.connect_all()
        assert len(fleet.connected) == N, fleet.stats.errors
        load = asyncio.create_task(fleet.run_load(2.0, loc_rate=20, heartbeat_s=1.0))
        await fleet.sos(N, interval_s=0.02)
        await load
        acked = await fleet.wait_alerts_acked(20)
        await fleet.drain(10)
        rep = fleet.report()
        await fleet.close()
        return fleet, rep, acked

    fleet, rep, acked = asyncio.run(scenario())
    assert acked, rep
    assert rep["alerts"] == {"sent": N, "acked": N, "unacked": 0, "resent": rep["alerts"]["resent"]}
    assert rep["alert_ack_ms"]["n"] == N and rep["alert_ack_ms"]["p50"] > 0
    assert rep["errors_total"] == 0, rep["errors"]
    assert rep["commands"].get("alert_ack", 0) >= N and rep["acks_sent"] >= N

    # every message a twin sent is valid under the one wire contract
    kinds = set()
    for topic, payload in fleet.record:
        device_id, kind, _ = protocol.parse_up(topic, payload)
        assert device_id.startswith("fleet-")
        kinds.add(kind)
    assert kinds == {"alert", "loc", "status", "ack", "presence"}

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with stack.services.sm() as s:
            cases = s.execute(select(AlertCase.device_id, func.count()).where(AlertCase.device_id.like("fleet-%"))
                              .group_by(AlertCase.device_id)).all()
            acked_cmds = s.scalar(select(func.count()).select_from(Command).where(
                Command.device_id.like("fleet-%"), Command.status == "acked"))
            locs = s.scalar(select(func.count()).select_from(LocationPoint))
        # The twins' PUBACKs come from the broker, not after the cloud's commit: wait for the
        # location reports too (on PostgreSQL the bulk lane's last batch may still be in flight).
        if len(cases) == N and acked_cmds >= N and locs >= rep["sent"]["loc"]:
            break
        time.sleep(0.2)
    assert sorted(d for d, _ in cases) == sorted(d for d, _ in creds)
    assert all(c == 1 for _, c in cases), cases  # exactly one case per twin
    assert acked_cmds >= N                        # the twins acked their alert_ack commands
    assert locs == rep["sent"]["loc"]
    # The per-second send counts are keyed by each report's own ts, which the cloud stores
    # as device_ts: a benchmark can match sent and stored second by second.
    with stack.services.sm() as s:
        stored_at = dict(s.execute(select(LocationPoint.device_ts, func.count()).where(
            LocationPoint.device_id.like("fleet-%")).group_by(LocationPoint.device_ts)).all())
    assert {str(ts): n for ts, n in stored_at.items()} == rep["loc_sent_at"]


def test_fleet_cli_reports_json(stack, tmp_path):
    _, creds_file = _provision(stack, tmp_path, n=10, prefix="cli")
    out = tmp_path / "fleet.json"
    rc = main(["--devices", "10", "--rate", "20", "--heartbeat", "2", "--duration", "1.5", "--sos", "3",
               "--broker", f"{stack.settings.mqtt_host}:{stack.settings.mqtt_tls_port}",
               "--ca", str(stack.broker.tls.cafile),
               "--credentials", str(creds_file), "--out", str(out)])
    rep = json.loads(out.read_text())
    assert rc == 0, rep
    assert rep["connected"] == 10 and rep["alerts"]["acked"] == 3
    for key in ("sent", "pubacked", "errors", "alert_ack_ms", "connect_per_s"):
        assert key in rep
    assert set(rep["alert_ack_ms"]) >= {"p50", "p99", "max"}
    locs = rep["sent"]["loc"]
    assert locs > 0
    assert sum(rep["loc_sent_at"].values()) == locs
    # every publish was PUBACKed before the report (run_fleet drains first), and by kind
    assert rep["pubacked_by_kind"]["loc"] == sum(rep["loc_pubacked_at"].values()) == locs
    assert sum(rep["pubacked_by_kind"].values()) == rep["pubacked"]
    load = rep["offered"]
    assert int(load["started_at"]) <= min(map(int, rep["loc_sent_at"])) <= max(map(int, rep["loc_sent_at"])) \
        <= load["ended_at"]
    assert rep["loop_lag_ms"]["n"] > 0 and rep["close_s"] >= 0


def test_percentiles():
    assert percentiles([]) == {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    p = percentiles([float(i) for i in range(1, 101)])
    assert p["n"] == 100 and p["max"] == 100.0 and 49 <= p["p50"] <= 51 and p["p99"] >= 98


def test_provisioning_refuses_an_unknown_tenant_and_a_taken_id(stack, tmp_path):
    with pytest.raises(ValueError, match="no tenant"):
        provision_fleet(stack.settings, 2, tenant_name="No Such Tenant")
    provision_fleet(stack.settings, 2, prefix="twice", sync_broker=False)
    with pytest.raises(ValueError, match="twice-0000001 already exists"):
        provision_fleet(stack.settings, 2, prefix="twice", start=1, sync_broker=False)
    assert provision_fleet(stack.settings, 0, credentials=tmp_path / "none.csv") == []
    assert read_credentials(tmp_path / "none.csv") == []
