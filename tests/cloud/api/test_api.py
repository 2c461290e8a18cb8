"""The REST API and live feed through FastAPI's TestClient, on a real database (SQLite and
PostgreSQL; on PostgreSQL the live feed also goes through the LISTEN/NOTIFY relay)."""
import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.domain.errors import Conflict
from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR, DEMO_OTHER_OPERATOR
from cloud.store.models import AuditEntry, CaseEvent
from tests.cloud_helpers import seeded
from tests.conftest import check_live_relay


@pytest.fixture
def env(tmp_path, database_url):
    svc, sender, seed = seeded(tmp_path, database_url=database_url)
    app = create_app(svc.settings, services=svc)
    with TestClient(app) as client:
        check_live_relay(svc)  # the app's lifespan started it on PostgreSQL
        yield svc, sender, seed, client, app
    svc.sm.kw["bind"].dispose()


def login(client, who=DEMO_OPERATOR):
    r = client.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def sos(svc, seed, mid="1.1"):
    body = {"v": 1, "mid": mid, "ts": None, "kind": "sos", "trigger": "button",
            "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"}}
    return svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert", json.dumps(body).encode())


def test_health_and_openapi(env):
    svc, sender, seed, client, app = env
    assert client.get("/healthz").json()["db"] is True
    login(client, DEMO_ADMIN)  # the schema is for admins (tests/cloud/api/test_exposure.py)
    assert "/api/cases" in client.get("/openapi.json").json()["paths"]


def test_login_sets_a_safe_cookie_and_wrong_password_is_refused(env):
    svc, sender, seed, client, app = env
    r = client.post("/api/auth/login", json={"username": "operator", "password": "nope"})
    assert r.status_code == 401
    r = client.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/me").json()["username"] == "operator"


def test_failed_logins_are_rate_limited(env):
    """Three failures are free, the fourth makes that name wait at that address (backoff,
    tests/cloud/api/test_login_throttle.py)."""
    svc, sender, seed, client, app = env
    answers = [client.post("/api/auth/login", json={"username": "operator", "password": "x"}) for _ in range(5)]
    assert [r.status_code for r in answers] == [401] * 4 + [429]
    assert answers[4].headers["Retry-After"] == "1"


def test_api_requires_a_session(env):
    svc, sender, seed, client, app = env
    assert client.get("/api/cases").status_code == 401
    assert client.post("/api/cases/1/claim").status_code == 401


def test_claim_requires_csrf_token(env):
    svc, sender, seed, client, app = env
    login(client)
    case_id = sos(svc, seed).case_id
    assert client.post(f"/api/cases/{case_id}/claim").status_code == 403


def test_claim_sends_operator_stage_and_resolve_closes(env):
    svc, sender, seed, client, app = env
    csrf = login(client)
    case_id = sos(svc, seed).case_id
    assert [c["id"] for c in client.get("/api/cases").json()] == [case_id]
    r = client.post(f"/api/cases/{case_id}/claim", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "claimed"
    r = client.post(f"/api/cases/{case_id}/resolve", headers={"X-CSRF-Token": csrf},
                    json={"outcome": "wearer_ok", "note": "She pressed it by mistake"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert [c["stage"] for _, c in sender.sent] == ["received", "operator", "closed"]
    assert client.get("/api/cases").json() == []
    timeline = [e["action"] for e in client.get(f"/api/cases/{case_id}").json()["timeline"]]
    assert timeline == ["opened", "routed", "claimed", "resolved"]
    with svc.sm() as s:
        assert {a.action for a in s.scalars(select(AuditEntry))} >= {"login", "case.claimed", "case.resolved"}


def test_resolve_needs_a_known_outcome(env):
    svc, sender, seed, client, app = env
    csrf = login(client)
    case_id = sos(svc, seed).case_id
    r = client.post(f"/api/cases/{case_id}/resolve", headers={"X-CSRF-Token": csrf}, json={"outcome": "bored"})
    assert r.status_code == 422


def test_two_operators_race_and_exactly_one_wins(env):
    svc, sender, seed, client, app = env
    case_id = sos(svc, seed).case_id
    with svc.sm() as s:
        from cloud.store.models import Operator
        op = s.scalar(select(Operator).where(Operator.username == "operator"))
    svc.accounts.create_operator(op.tenant_id, "second", "second-pw")
    with svc.sm() as s:
        second = s.scalar(select(Operator).where(Operator.username == "second"))
    results, barrier = [], threading.Barrier(2)

    def try_claim(who):
        barrier.wait()
        try:
            svc.cases.claim(who, case_id)
            results.append("won")
        except Conflict:
            results.append("conflict")
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=try_claim, args=(o,)) for o in (op, second)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(map(str, results)) == ["conflict", "won"]
    with svc.sm() as s:
        claims = s.scalars(select(CaseEvent).where(CaseEvent.action == "claimed")).all()
        assert len(claims) == 1


def test_other_tenant_cannot_see_or_touch_the_case(env):
    svc, sender, seed, client, app = env
    case_id = sos(svc, seed).case_id
    csrf = login(client, DEMO_OTHER_OPERATOR)
    assert client.get("/api/cases").json() == []
    assert client.get(f"/api/cases/{case_id}").status_code == 404
    assert client.post(f"/api/cases/{case_id}/claim", headers={"X-CSRF-Token": csrf}).status_code == 404


def test_live_feed_sends_snapshot_then_new_cases_of_own_tenant_only(env):
    svc, sender, seed, client, app = env
    login(client)
    with client.websocket_connect("/api/ws") as ws:
        assert ws.receive_json() == {"type": "snapshot", "cases": []}
        sos(svc, seed)
        ev = ws.receive_json()
        assert ev["type"] == "case" and ev["case"]["wearer"]["name"] == "Jeanne Martin"
        assert ev["case"]["location"]["lat"] == 45.764


# PostgreSQL only: the relay is LISTEN/NOTIFY. On SQLite (one file, one process) there is
# no relay, which check_live_relay asserts in every test of this file.
@pytest.mark.parametrize("database", ["postgresql"])
def test_live_feed_carries_what_another_replica_notifies(env):
    """live_relay="auto": on PostgreSQL a console hears the cases another API replica
    ingested (a NOTIFY from another origin on the relay's channel), of its tenant only."""
    svc, sender, seed, client, app = env
    import psycopg

    from cloud.live_relay import CHANNEL, libpq_dsn
    login(client)
    with client.websocket_connect("/api/ws") as ws:
        assert ws.receive_json() == {"type": "snapshot", "cases": []}
        other_tenant = {"o": "another-replica", "t": seed.other_tenant_id, "e": {"type": "case", "case": {"id": -2}}}
        own_tenant = {"o": "another-replica", "t": seed.tenant_id, "e": {"type": "case", "case": {"id": -1}}}
        with psycopg.connect(libpq_dsn(svc.settings.db_url), autocommit=True) as conn:
            for note in (other_tenant, own_tenant):
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(note)))
        assert ws.receive_json() == {"type": "case", "case": {"id": -1}}  # the other tenant's never came


def test_live_feed_refuses_without_session(env):
    svc, sender, seed, client, app = env
    from starlette.websockets import WebSocketDisconnect
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/api/ws") as ws:
            ws.receive_json()


def test_bad_api_requests_get_clear_errors(env):
    svc, sender, seed, client, app = env
    assert client.post("/api/auth/login", json={"username": ""}).status_code == 422
    assert client.post("/api/auth/login", content=b"\xff\x00").status_code == 422
    login(client)
    assert client.get("/api/cases/not-a-number").status_code == 422
    assert client.get("/api/cases/999999").status_code == 404


def test_operator_actions_send_commands_and_fill_the_timeline(env):
    svc, sender, seed, client, app = env
    csrf = login(client)
    h = {"X-CSRF-Token": csrf}
    case_id = sos(svc, seed).case_id
    # Acting on the wearer needs the case in hand.
    assert client.post(f"/api/cases/{case_id}/locate", headers=h).status_code == 409
    client.post(f"/api/cases/{case_id}/claim", headers=h)
    r = client.post(f"/api/cases/{case_id}/call", headers=h, json={})
    assert r.status_code == 200 and r.json()["status"] == "in_call"
    assert client.post(f"/api/cases/{case_id}/locate", headers=h).status_code == 200
    assert client.post(f"/api/cases/{case_id}/message", headers=h,
                       json={"text": "Stay where you are"}).status_code == 200
    # No notification channel is configured here: nothing is sent, and the answer says so.
    first = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    second = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert first.status_code == second.status_code == 409
    assert first.json()["detail"].startswith("nothing was sent to Sophie Martin")
    assert second.json()["detail"].startswith("nothing was sent to Marc Bernard")
    third = client.post(f"/api/cases/{case_id}/notify-next-contact", headers=h)
    assert third.status_code == 409 and "already been tried" in third.json()["detail"]
    assert client.post(f"/api/cases/{case_id}/dispatch", headers=h,
                       json={"service": "ambulance", "reference": "SAMU-69-1234"}).status_code == 200
    assert client.post(f"/api/cases/{case_id}/notes", headers=h,
                       json={"text": "Neighbour on the way"}).status_code == 200
    assert client.post(f"/api/cases/{case_id}/dispatch", headers=h, json={"service": "taxi"}).status_code == 422

    cmds = [(c["type"], c.get("number")) for _, c in sender.sent]
    assert cmds == [("alert_ack", None), ("alert_ack", None), ("call", "+33400000000"), ("locate", None),
                    ("message", None)]
    full = client.get(f"/api/cases/{case_id}").json()
    assert not [e for e in full["timeline"] if e["action"] == "contact_notified"]
    missed = [e["detail"] for e in full["timeline"] if e["action"] == "contact_not_reached"]
    assert [d["contact"] for d in missed] == ["Sophie Martin", "Marc Bernard"]
    assert all(d["reached"] == [] and "no notification channel" in d["error"] for d in missed)
    assert [e["action"] for e in full["timeline"]][-3:] == ["contact_not_reached", "dispatched", "note"]
    assert [c["name"] for c in full["wearer"]["contacts"]] == ["Sophie Martin", "Marc Bernard"]
    assert {c["type"] for c in full["commands"]} == {"alert_ack", "call", "locate", "message"}
    with svc.sm() as s:
        audited = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    for action in ("case.claimed", "case.call_back", "case.locate", "case.message", "case.contact_not_reached",
                   "case.dispatched", "case.note"):
        assert action in audited


def test_an_open_live_feed_records_operator_presence(env):
    """Presence comes from the WebSocket too, not only from REST calls."""
    from cloud.store.models import Operator
    svc, sender, seed, client, app = env
    login(client)
    with svc.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0]))
        op.last_seen_at = None
        s.commit()
    svc.accounts._touched.clear()  # forget this process's throttle, as after a restart
    with client.websocket_connect("/api/ws") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        with svc.sm() as s:
            seen = s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0])).last_seen_at
    assert seen is not None


def test_case_view_carries_routing_and_location_label(env):
    svc, sender, seed, client, app = env
    login(client)
    case_id = sos(svc, seed).case_id
    c = client.get(f"/api/cases/{case_id}").json()
    assert c["centre"]["name"] == "Lyon Alarm Centre" and c["routed_at"] and c["escalation_level"] == 0
    assert c["location_label"]["text"] == "at home" and c["location_label"]["from_home_m"] == 0
    assert "photo_url" in c["wearer"]
