"""The watch gateway's TCP server on loopback, with the real ingest and database:
an alarm opens its case and is answered only once committed; commands go down in
the watch's own protocol; bad connections cost themselves and nothing else."""
from __future__ import annotations

import shutil
import socket
import time

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from cloud.domain.accounts import provision_device
from cloud.domain.clock import FakeClock
from cloud.gateway.server import WatchGateway
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.models import Alert, AlertCase, Command, Device, Operator
from cloud.wiring import GatewayRouter, build_services, open_store
from tests.cloud.conftest import ConfigRecorder

SETRACKER_IMEI, CHARGING_IMEI, IW_IMEI = "3528390000101", "3528390000102", "353456789012345"
STRANGER = "3528390000999"


def sos_frame(imei: str, status: str = "00010000", fix: str = "V", kind: str = "AL_LTE", maker: str = "3G") -> bytes:
    content = (f"{kind},051226,101500,{fix},48.856600,N,2.352200,E,0.00,0.0,0.0,6,80,15,0,0,{status},"
               "1,1,208,1,12345,67890,140")  # a cell of cloud/data/cells-sample.csv
    return f"[{maker}*{imei}*{len(content):04X}*{content}]".encode()


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("pers_gateway_rejected_total", {"reason": reason}) or 0.0


def read_until(sock: socket.socket, end: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


@pytest.fixture(scope="module")
def stack(sqlite_template, tmp_path_factory):
    """One gateway for the module, on SQLite (the gateway adds nothing database-specific;
    the ingest behind it is tested on both)."""
    tmp_path = tmp_path_factory.mktemp("gateway")
    shutil.copy(sqlite_template, tmp_path / "pers.db")
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'pers.db'}", log_json=False)
    clock = FakeClock()
    sm = open_store(settings)
    gateway = WatchGateway(sm, clock, host="127.0.0.1", port=0, frame_timeout_s=1.0, idle_timeout_s=30.0,
                           max_frame_bytes=2048)
    mqtt = ConfigRecorder()
    svc = build_services(settings, clock=clock, with_mqtt=False, sm=sm, sender=GatewayRouter(gateway, mqtt))
    gateway.attach(svc.ingestor)
    seed = seed_demo(sm, clock, tmp_path)
    provision_device(sm, clock, seed.tenant_id, device_id=SETRACKER_IMEI, wearer_id=seed.wearer_id,
                     device_protocol="setracker")
    provision_device(sm, clock, seed.tenant_id, device_id=CHARGING_IMEI, device_protocol="setracker")
    provision_device(sm, clock, seed.tenant_id, device_id=IW_IMEI, device_protocol="iw")
    gateway.start()
    yield svc, gateway, mqtt, seed
    gateway.stop()
    sm.kw["bind"].dispose()


def connect(gateway: WatchGateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=5)


def case_of(svc, device_id: str):
    with svc.sm() as s:
        return s.scalar(select(AlertCase).where(AlertCase.device_id == device_id))


def test_an_sos_among_bad_connections_is_stored_then_answered(stack):
    svc, gateway, _, _ = stack
    before = {r: rejected(r) for r in ("slow_frame", "bad_header", "unknown_imei", "oversize")}
    loris = connect(gateway)
    loris.sendall(b"[3G*35283900")  # and never the rest
    garbage = connect(gateway)
    garbage.sendall(b"[\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # a TLS hello after a '['
    huge = connect(gateway)
    huge.sendall(b"[3G*3528390000101*0FFF*UD," + b"9" * 4000)
    stranger = connect(gateway)
    stranger.sendall(sos_frame(STRANGER))

    watch = connect(gateway)
    watch.sendall(sos_frame(SETRACKER_IMEI))
    reply = read_until(watch, b"]")
    # The reply comes after the commit: a fresh session sees the alarm and its case.
    case = case_of(svc, SETRACKER_IMEI)
    assert reply == f"[3G*{SETRACKER_IMEI}*0002*AL]".encode()
    assert case is not None and case.kind == "sos" and case.status in ("routed", "new")
    # No GNSS fix: located by the serving cell (cells-sample.csv), so approximate with an accuracy.
    assert case.loc_src == "cell" and case.acc and case.acc > 0

    closed = ((garbage, "bad_header"), (huge, "oversize"), (stranger, "unknown_imei"), (loris, "slow_frame"))
    for sock, reason in closed:
        sock.settimeout(10)
        assert sock.recv(100) == b"", reason  # the server closed it
        assert rejected(reason) == before[reason] + 1
        sock.close()
    assert case_of(svc, STRANGER) is None
    # The watch's own connection is still up: a heartbeat is answered.
    watch.sendall(f"[3G*{SETRACKER_IMEI}*000A*LK,0,0,55]".encode())
    assert read_until(watch, b"]") == f"[3G*{SETRACKER_IMEI}*0002*LK]".encode()
    watch.close()


def test_charger_unplugged_is_answered_and_opens_no_case(stack):
    svc, gateway, _, _ = stack
    watch = connect(gateway)
    watch.sendall(sos_frame(CHARGING_IMEI, status="00004000", fix="A", kind="AL"))
    assert read_until(watch, b"]").endswith(b"*AL]")
    watch.sendall(f"[3G*{CHARGING_IMEI}*0002*LK]".encode())  # answered after the AL was handled
    read_until(watch, b"]")
    assert case_of(svc, CHARGING_IMEI) is None

    # The admin's config (SOS/centre number, fall detection; the whitelist comes from the
    # wearer's contacts, none here) in the watch's own commands.
    svc.accounts.create_operator(svc_seed(stack).tenant_id, "gw-admin", "gw-admin-pw-123", role="admin")
    with svc.sm() as s:
        admin = s.scalar(select(Operator).where(Operator.username == "gw-admin"))
    svc.admin.push_config(admin, CHARGING_IMEI, {"callcenter_number": "+33472000000", "fall_detection": False})
    frames = b""
    while frames.count(b"]") < 3:
        frames += read_until(watch, b"]")
    contents = [f.split(b"*", 3)[3].decode() for f in frames.split(b"]") if f]
    assert contents == ["SOS,+33472000000,,", "CENTER,+33472000000", "FALLDOWN,0"]
    watch.close()


def svc_seed(stack):
    return stack[3]


def test_iw_login_alarm_and_console_commands(stack):
    svc, gateway, mqtt, seed = stack
    watch = connect(gateway)
    watch.sendall(b"IWAP01080524A2232.9806N11404.9355E000.1061830323.8706000908000102,460,0,9520,3671#")
    watch.settimeout(10)
    assert watch.recv(100) == b""  # no login first: refused
    assert rejected("not_logged_in") >= 1

    watch = connect(gateway)
    watch.sendall(f"IWAP00{IW_IMEI}#".encode())
    assert read_until(watch, b"#").startswith(b"IWBP00,")
    # Traccar's AP10 frame (alarm code 01: SOS), answered once stored.
    watch.sendall(b"IWAP10080524A2232.9806N11404.9355E000.1061830323.8706000908000502,460,0,9520,3671,01,zhcn,00,"
                  b"HOME|74-DE-2B-44-88-8C|97#")
    assert read_until(watch, b"#") == b"IWBP10#"
    case = case_of(svc, IW_IMEI)
    assert case is not None and case.kind == "sos" and case.loc_src == "gnss"
    assert case.lat == pytest.approx(22.54968, abs=1e-5)

    # The operator's "locate" and "call back" leave in the IW protocol, not on MQTT.
    op = an_operator(svc, seed)
    svc.cases.claim(op, case.id)
    svc.cases.locate(op, case.id)
    frame = read_until(watch, b"#").decode()
    assert frame.startswith(f"IWBP16,{IW_IMEI},") and mqtt.sent == []
    serial = frame.rstrip("#").split(",")[2]
    watch.sendall(f"IWAP16,{serial}#".encode())  # the watch's answer acks the command
    assert read_until(watch, b"#") == b"IWBP16#"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with svc.sm() as s:
            status = s.scalar(select(Command.status).where(Command.device_id == IW_IMEI, Command.type == "locate"))
        if status == "acked":
            break
        time.sleep(0.05)
    assert status == "acked"
    with svc.sm() as s:
        assert s.get(Device, IW_IMEI).online
        assert s.scalar(select(Alert.kind).where(Alert.device_id == IW_IMEI)) == "sos"
    watch.close()


def an_operator(svc, seed):
    svc.accounts.create_operator(seed.tenant_id, "gw-op", "gw-op-pw-123", role="operator")
    with svc.sm() as s:
        return s.scalar(select(Operator).where(Operator.username == "gw-op"))


def test_hwsim_twins_of_both_protocols(stack):
    """The fleet's gateway twins (hwsim/gateway_twin.py, written from the protocols, not
    from this gateway) against the gateway: alarms answered and stored once each."""
    import asyncio

    from hwsim.gateway_twin import GatewayStats, GatewayTwin, wait_answered
    svc, gateway, _, seed = stack
    twins_ids = {"3528390000301": "setracker", "353456789012399": "iw"}
    for imei, proto in twins_ids.items():
        provision_device(svc.sm, svc.clock, seed.tenant_id, device_id=imei, device_protocol=proto)
    stats = GatewayStats()

    async def run():
        twins = [GatewayTwin(imei, proto, "127.0.0.1", gateway.port, stats, resend_s=2.0)
                 for imei, proto in twins_ids.items()]
        for t in twins:
            t.start()
            t.sos()
            t.sos("fall")
        ok = await wait_answered(twins, 20)
        for t in twins:
            await t.close()
        return ok

    assert asyncio.run(run()), stats
    with svc.sm() as s:
        for imei in twins_ids:
            kinds = sorted(s.scalars(select(Alert.kind).where(Alert.device_id == imei)))
            assert kinds == ["fall", "sos"], (imei, kinds)
    assert sum(stats.replied.values()) == 4
