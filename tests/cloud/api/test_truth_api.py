"""What the API says about a case is what happened: the operator's Notify really
delivers (to a real HTTP receiver on loopback) and reports who was reached; the
battery, heart rate and distance carry their time and accuracy. Through FastAPI's
TestClient on a real database (SQLite and PostgreSQL)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from cloud.api.app import create_app
from cloud.domain.geo import about_m, from_home_words
from cloud.domain.outbound import OutboundHttp, OutboundPolicy
from cloud.seed import DEMO_OPERATOR, DEMO_SUPERVISOR
from cloud.store.models import Contact, Tenant
from tests.cloud_helpers import seeded
from tests.conftest import check_live_relay, free_port


@pytest.fixture
def receiver():
    """A webhook receiver on loopback: records each POST; answers 500 on /fail."""
    got: list[tuple[str, dict]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.append((self.path, json.loads(body)))
            arrived.set()
            self.send_response(500 if self.path == "/fail" else 204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", got
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def env(tmp_path, database_url):
    # The receiver is plain http on loopback, which production refuses (test_outbound_guard.py).
    local = OutboundHttp(OutboundPolicy(allow_http=True, allow_loopback=True))
    svc, sender, seed = seeded(tmp_path, database_url=database_url, http_out=local)
    with TestClient(create_app(svc.settings, services=svc)) as client:
        check_live_relay(svc)
        yield svc, seed, client
    svc.sm.kw["bind"].dispose()


def login(client, who=DEMO_OPERATOR):
    r = client.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def send(svc, seed, kind, body):
    body = {"v": 1, "ts": None, **body}
    return svc.ingestor.handle(f"pers/v1/{seed.device_id}/{kind}", json.dumps(body).encode())


def claimed_sos(svc, seed, client, **extra):
    h = login(client)
    case_id = send(svc, seed, "alert", {"mid": "1.1", "kind": "sos", "trigger": "button",
                                        "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"},
                                        **extra}).case_id
    assert client.post(f"/api/cases/{case_id}/claim", headers=h).status_code == 200
    return case_id, h


def set_webhook(svc, seed, url):
    with svc.sm() as s:
        s.execute(update(Tenant).where(Tenant.id == seed.tenant_id).values(webhook_url=url))
        s.commit()


def test_operator_notify_delivers_to_the_webhook_and_says_who_was_reached(env, receiver):
    svc, seed, client = env
    base, got = receiver
    set_webhook(svc, seed, base + "/hook")
    case_id, h = claimed_sos(svc, seed, client)
    r = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert r.status_code == 200, r.text
    assert [(p, b["contact"]["name"], b["case_id"]) for p, b in got] == [("/hook", "Sophie Martin", case_id)]
    event = [e for e in r.json()["timeline"] if e["action"] == "contact_notified"][-1]
    assert event["actor"] == "operator:operator"
    assert event["detail"]["reached"] == [{"channel": "webhook", "target": base + "/hook"}]
    assert event["detail"]["contact"] == "Sophie Martin" and event["detail"]["failed"] == []
    assert client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h).status_code == 200
    assert [b["contact"]["name"] for _, b in got] == ["Sophie Martin", "Marc Bernard"]
    third = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert third.status_code == 409 and "already been tried" in third.json()["detail"]
    assert len(got) == 2


def test_a_failed_delivery_is_recorded_as_not_reached_with_its_reason(env, receiver):
    svc, seed, client = env
    base, got = receiver
    set_webhook(svc, seed, base + "/fail")
    case_id, h = claimed_sos(svc, seed, client)
    r = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert r.status_code == 200 and len(got) == 1  # it was tried, and the receiver said no
    actions = [e["action"] for e in r.json()["timeline"]]
    assert "contact_notified" not in actions
    missed = [e["detail"] for e in r.json()["timeline"] if e["action"] == "contact_not_reached"]
    assert missed[0]["reached"] == [] and "HTTP 500" in missed[0]["failed"][0]["reason"]


def test_no_channel_means_nothing_sent_and_no_contacts_is_not_all_notified(env):
    svc, seed, client = env
    case_id, h = claimed_sos(svc, seed, client)
    r = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert r.status_code == 409
    assert r.json()["detail"] == ("nothing was sent to Sophie Martin: no notification channel (webhook, e-mail or "
                                  "SMS) is set up for this contact; call them on 06 11 11 11 11")
    with svc.sm() as s:
        s.execute(delete(Contact).where(Contact.wearer_id == seed.wearer_id))
        s.commit()
    r = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert r.status_code == 409 and r.json()["detail"] == "this wearer has no contacts: nobody to notify"
    assert "notified" not in r.json()["detail"]


def test_battery_is_one_figure_with_its_time_and_a_low_one_needs_attention(env):
    svc, seed, client = env
    case_id, h = claimed_sos(svc, seed, client, batt={"pct": 15})
    case = client.get(f"/api/cases/{case_id}").json()
    assert case["battery"]["pct"] == 15 and case["battery"]["at"]
    # The alarm's reading reaches the device too: the supervisor sees a low battery.
    sup = login(client, DEMO_SUPERVISOR)
    attention = client.get("/api/supervisor/devices", headers=sup).json()
    assert [d["id"] for d in attention["items"]] == [seed.device_id]
    assert attention["items"][0]["problems"] == ["low_battery"] and attention["items"][0]["batt_at"]
    # A later status: both views give the newer figure.
    send(svc, seed, "status", {"mid": "2.1", "batt": {"pct": 25}})
    case = client.get(f"/api/cases/{case_id}").json()
    device = client.get("/api/supervisor/devices?low_battery_pct=30", headers=sup).json()["items"][0]
    assert case["battery"]["pct"] == device["batt_pct"] == 25
    assert case["battery"]["at"] == device["batt_at"]
    assert case["batt_pct"] == 15  # the alarm's own snapshot stays as it was


def test_heart_rate_updates_during_the_case_from_position_and_status_reports(env):
    svc, seed, client = env
    case_id, h = claimed_sos(svc, seed, client)  # the alarm left before a reading was taken
    assert client.get(f"/api/cases/{case_id}").json()["heart_rate"] is None
    send(svc, seed, "loc", {"mid": "3.1", "reason": "alarm", "ref": "1.1", "vitals": {"hr": 96},
                            "loc": {"lat": 45.764, "lon": 4.8357, "acc": 6.0, "src": "gnss"}})
    case = client.get(f"/api/cases/{case_id}").json()
    assert case["heart_rate"] == 96 and case["heart_rate_at"]
    send(svc, seed, "status", {"mid": "3.2", "vitals": {"hr": 104}})
    assert client.get(f"/api/cases/{case_id}").json()["heart_rate"] == 104


def test_a_cell_fix_is_never_given_finer_than_its_accuracy(env):
    svc, seed, client = env
    h = login(client)
    # 747 m north of home, as a cell tower places it: accurate to 800 m.
    case_id = send(svc, seed, "alert", {"mid": "4.1", "kind": "sos", "trigger": "button",
                                        "loc": {"lat": 45.764 + 747 / 111_195, "lon": 4.8357, "acc": 800.0,
                                                "src": "cell"}}).case_id
    label = client.get(f"/api/cases/{case_id}", headers=h).json()["location_label"]
    assert label["accuracy"] == "about 800 m"
    assert label["from_home"] == "at home or nearby (within about 800 m)"
    assert "747" not in json.dumps(label["text"])


@pytest.mark.parametrize("database", ["sqlite"])  # plain arithmetic: one database is enough
@pytest.mark.parametrize(("d", "acc", "words"), [
    (747, 800, "at home or nearby (within about 800 m)"),
    (20, 5, "at home"),
    (2347, 800, "about 2300 m from home (give or take 800 m)"),
    (2347, 8, "about 2347 m from home"),
    (664, 12, "about 660 m from home"),
    (15_400, 1500, "about 15.0 km from home (give or take 1500 m)"),
])
def test_distance_words_are_rounded_to_the_accuracy(database, d, acc, words):
    assert from_home_words(d, acc) == words


@pytest.mark.parametrize("database", ["sqlite"])
def test_about_keeps_two_significant_figures(database):
    assert [about_m(m) for m in (747, 800, 12.4, 3.2, 1549)] == [750, 800, 12, 3, 1500]
