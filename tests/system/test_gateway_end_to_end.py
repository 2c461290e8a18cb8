"""Off-the-shelf watches through the real `pers` stack: a SeTracker watch and an IW
watch, registered by IMEI, each send an SOS over TCP on loopback; each case opens,
the protocol's reply comes only once the case is committed, and the operator's
"call back" and "locate" reach the watch as its own protocol's frames."""
from __future__ import annotations

import socket

import httpx
import pytest
from sqlalchemy import select

from cloud.domain.accounts import provision_device
from cloud.domain.clock import SystemClock
from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase
from tests.conftest import free_port

SETRACKER_IMEI, IW_IMEI = "3528390000201", "353456789012346"
pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the stack's ingest runs on both elsewhere


def register(sm, seed):
    provision_device(sm, SystemClock(), seed.tenant_id, device_id=SETRACKER_IMEI, wearer_id=seed.wearer_id,
                     device_protocol="setracker")
    provision_device(sm, SystemClock(), seed.tenant_id, device_id=IW_IMEI, device_protocol="iw")


def read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def case_of(stack, device_id):
    with stack.services.sm() as s:
        return s.scalar(select(AlertCase).where(AlertCase.device_id == device_id))


def test_setracker_and_iw_watches_raise_cases_and_take_commands(stack_factory):
    stack = stack_factory(before_start=register, gateway_port=free_port())
    addr = (stack.settings.gateway_host, stack.settings.gateway_port)
    with socket.create_connection(addr, timeout=15) as st, socket.create_connection(addr, timeout=15) as iw, \
            httpx.Client(base_url=stack.url) as api:
        # SeTracker: an AL_LTE SOS without a GNSS fix, with the serving cell (cells-sample.csv).
        content = ("AL_LTE,051226,101500,V,0.0,N,0.0,E,0.00,0.0,0.0,0,80,15,0,0,00010000,"
                   "1,1,208,1,12345,67890,140")
        st.sendall(f"[SG*{SETRACKER_IMEI}*{len(content):04X}*{content}]".encode())
        assert read_until(st, b"]") == f"[SG*{SETRACKER_IMEI}*0002*AL]".encode()
        sos = case_of(stack, SETRACKER_IMEI)  # committed before the reply left
        assert sos is not None and sos.kind == "sos" and sos.loc_src == "cell"

        iw.sendall(f"IWAP00{IW_IMEI}#".encode())
        assert read_until(iw, b"#").startswith(b"IWBP00,")
        iw.sendall(b"IWAP10080524A2232.9806N11404.9355E000.1061830323.8706000908000502,460,0,9520,3671,01,zhcn,00,"
                   b"HOME|74-DE-2B-44-88-8C|97#")
        assert read_until(iw, b"#") == b"IWBP10#"
        sos_iw = case_of(stack, IW_IMEI)
        assert sos_iw is not None and sos_iw.kind == "sos"

        csrf = api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0],
                                                 "password": DEMO_OPERATOR[1]}).json()["csrf_token"]
        cases = {c["id"]: c for c in api.get("/api/cases").json()}
        assert {sos.id, sos_iw.id} <= set(cases)
        assert cases[sos.id]["location"] is not None  # shown, approximate (from the cell)
        h = {"X-CSRF-Token": csrf}
        for case_id in (sos.id, sos_iw.id):
            assert api.post(f"/api/cases/{case_id}/claim", headers=h).status_code == 200

        r = api.post(f"/api/cases/{sos.id}/call", headers=h, json={"number": "+33472000000"})
        assert r.status_code == 200, r.text
        assert read_until(st, b"]") == f"[SG*{SETRACKER_IMEI}*0011*CALL,+33472000000]".encode()

        assert api.post(f"/api/cases/{sos_iw.id}/locate", headers=h).status_code == 200
        assert read_until(iw, b"#").decode().startswith(f"IWBP16,{IW_IMEI},")
