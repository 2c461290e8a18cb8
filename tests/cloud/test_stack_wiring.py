"""The real service (`pers serve` path): the API's provisioning reaches the embedded
Mosquitto through the runtime's broker port, and the background ticker runs the
escalation timers on its own (short periods here; the timers themselves are
tested with a FakeClock elsewhere)."""
import json
import queue
import time

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from cloud.runtime import BrokerFiles
from cloud.store.models import CaseEvent


@pytest.fixture
def fast_stack(stack_factory):
    """The real service (tests/conftest.py, on SQLite and on PostgreSQL) with short timers."""
    s = stack_factory(escalate_unclaimed_s=1, tick_s=0.1)
    s.services.accounts.create_operator(s.seed.tenant_id, "boss", "boss-pw-123", role="admin")
    return s


def test_api_provisioning_reaches_the_broker_and_the_ticker_escalates(fast_stack):
    stack = fast_stack
    # The ports were given when the services were built (cloud/wiring.py), none set afterwards:
    # the runtime's broker port, and one way out to the watches that the bridge carries.
    svc = stack.services
    assert isinstance(svc.broker_auth, BrokerFiles) and svc.broker_auth.broker is stack.broker
    assert svc.bridge.ingestor is svc.ingestor and svc.sender.transport is svc.bridge
    assert svc.ingestor.sender is svc.sender and svc.admin.broker is svc.broker_auth
    with httpx.Client(base_url=stack.url) as api:
        csrf = api.post("/api/auth/login", json={"username": "boss", "password": "boss-pw-123"}).json()["csrf_token"]
        dev = api.post("/api/admin/devices", json={}, headers={"X-CSRF-Token": csrf}).json()
    rc = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev["id"])
    c.username_pw_set(dev["id"], dev["secret"])
    c.on_connect = lambda cl, u, f, code, p: rc.put(code.is_failure)
    c.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    c.loop_start()
    assert rc.get(timeout=5) is False  # the new device is accepted by the running broker
    c.disconnect()
    c.loop_stop()

    body = {"v": 1, "mid": "1.1", "ts": None, "kind": "sos", "trigger": "button"}
    case_id = stack.services.ingestor.handle(f"pers/v1/{stack.seed.device_id}/alert",
                                             json.dumps(body).encode()).case_id
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline and "supervisors_alerted" not in seen:
        time.sleep(0.1)
        with stack.services.sm() as s:
            seen = [e.action for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
    assert "supervisors_alerted" in seen, seen
