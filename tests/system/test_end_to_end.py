"""The demo's path, end to end, with nothing stood in: the real firmware under
`micropython` -> hwsim (buttons, modem, data link) -> Mosquitto with the
generated password file and ACL -> the cloud (paho ingest; SQLite or PostgreSQL)
-> the API."""
import json
import subprocess
import sys
import time

import httpx
from sqlalchemy import create_engine, func, select

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import Alert, AlertCase, CaseEvent, Command
from hwsim.runner import Watch
from hwsim.scenario import load
from tests.conftest import free_port


# SQLite only, on purpose: this is `pers demo` exactly as a new user runs it, a subprocess
# with its default data directory and the SQLite file it creates there (var/demo/pers.db,
# read back below). The same path on PostgreSQL is the next test, on both databases.
def test_pers_demo_check_stores_the_alert_once_and_the_watch_shows_the_ack(tmp_path):
    # Run from a fresh directory with the default (relative) data directory, as a new user would.
    data = tmp_path / "var" / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "cloud.cli", "demo", "--check",
         "--http-port", str(free_port()), "--mqtt-port", str(free_port()),
         "--mqtt-tls-port", str(free_port()), "--timeout", "90"],
        cwd=tmp_path, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "display: Help is coming" in proc.stdout

    engine = create_engine(f"sqlite:///{data / 'pers.db'}")
    with engine.connect() as db:
        alerts = db.execute(select(Alert.kind, Alert.mid, Alert.case_id)).all()
        assert len(alerts) == 1 and alerts[0].kind == "sos"
        case = db.execute(select(AlertCase.kind, AlertCase.lat, AlertCase.lon, AlertCase.loc_src)).one()
        assert (case.kind, round(case.lat, 3), round(case.lon, 3), case.loc_src) == ("sos", 45.764, 4.836, "gnss")
        ack = db.execute(select(Command.payload, Command.status)).one()
        assert ack.payload["stage"] == "received" and ack.payload["ref"] == alerts[0].mid
    events = [json.loads(line) for line in (data / "watch-events.jsonl").read_text().splitlines()]
    assert any(e.get("text") == "Help is coming" for e in events)
    # The watch's link was TLS, verified against the CA pers made: in its flash, on its modem.
    device = json.loads((data / "watch-flash" / "device.json").read_text())
    assert device["tls"] is True
    assert (data / "watch-flash" / "ca.pem").read_bytes() == (data / "broker" / "tls" / "ca.crt").read_bytes()
    ups = [e for e in events if e.get("type") == "link" and e.get("state") == "up"]
    assert ups and all(e.get("tls") is True for e in ups), ups


def test_operator_claims_and_resolves_and_the_watch_follows(stack):
    with Watch(stack.seed.device_id, stack.seed.device_secret, scenario=load("sos_demo"),
               broker=(stack.settings.mqtt_host, stack.settings.mqtt_tls_port), ca=stack.broker.tls.cafile) as watch:
        # Outdoors in Lyon: press once GNSS has had its time to fix, as the demo does.
        assert watch.wait_for(lambda ev: ev.get("type") == "link" and ev.get("state") == "up", timeout=30)
        time.sleep(max(0.0, 3.0 - watch.rec.now()))
        watch.press("red", hold_s=1.5, wait=True)
        assert watch.wait_display("Help is coming", timeout=30), watch.displays

        with httpx.Client(base_url=stack.url) as api:
            csrf = api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0],
                                                     "password": DEMO_OPERATOR[1]}).json()["csrf_token"]
            cases = api.get("/api/cases").json()
            assert len(cases) == 1
            case = cases[0]
            assert case["wearer"]["name"] == "Jeanne Martin" and case["kind"] == "sos"
            assert case["location"] is not None

            assert api.post(f"/api/cases/{case['id']}/claim", headers={"X-CSRF-Token": csrf}).status_code == 200
            assert watch.wait_display("An operator is with you", timeout=20), watch.displays

            r = api.post(f"/api/cases/{case['id']}/resolve", headers={"X-CSRF-Token": csrf},
                         json={"outcome": "wearer_ok", "note": "pressed by mistake"})
            assert r.status_code == 200
            assert watch.wait_for(lambda ev: ev.get("type") == "display" and ev.get("text") == "Alarm closed",
                                  timeout=20), watch.displays

        # The watch acks every stage; the timeline holds the whole story, in order.
        def actions():
            with stack.services.sm() as s:
                return [e.action for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))]

        deadline = time.monotonic() + 20
        while actions().count("command_acked") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        story = actions()
        assert story[:4] == ["opened", "routed", "command_acked", "claimed"], story
        assert story.count("command_acked") == 3 and "resolved" in story, story
    with stack.services.sm() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1

