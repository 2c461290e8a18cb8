"""Sessions that can be taken away, against the real HTTP server (httpx) and a real
WebSocket client (the ``websockets`` library): a deactivation, a role change, a
password change or reset end the user's sessions and close their open live feeds;
a logout closes that session's feed only; sessions die idle and at their absolute
end (the FakeClock is moved, nothing sleeps)."""
import json

from sqlalchemy import select

from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR
from cloud.store.models import AuditEntry
from tests.cloud.api.served import closed_code

SESSION_REVOKED_CLOSE = 4401  # the console goes to the login page on it


def operator_id(admin, username):
    return next(o["id"] for o in admin.get("/api/admin/operators?limit=500").json()["items"]
                if o["username"] == username)


def sos(served, mid):
    body = {"v": 1, "mid": mid, "ts": None, "kind": "sos", "trigger": "button",
            "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"}}
    return served.svc.ingestor.handle(f"pers/v1/{served.seed.device_id}/alert", json.dumps(body).encode())


def next_case_event(ws):
    while True:
        ev = json.loads(ws.recv(timeout=10))
        if ev["type"] == "case":
            return ev


def actions(served, target):
    with served.svc.sm() as s:
        return [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.target == target)
                                            .order_by(AuditEntry.id))]


def test_deactivation_closes_the_open_live_feed_and_refuses_the_cookie(served):
    op = served.login(DEMO_OPERATOR)
    admin = served.login(DEMO_ADMIN)
    ws = served.live_feed(op)
    oid = operator_id(admin, DEMO_OPERATOR[0])
    assert admin.patch(f"/api/admin/operators/{oid}", json={"active": False}).status_code == 200
    assert closed_code(ws) == SESSION_REVOKED_CLOSE
    assert op.get("/api/me").status_code == 401
    assert op.get("/api/cases").status_code == 401
    # Nor can they log in again, right password or not.
    again = served.client().post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
    assert again.status_code == 401
    assert {"operator.deactivated", "session.revoked"} <= set(actions(served, f"operator:{oid}"))
    # Reactivated, they log in afresh (the old cookie stays dead).
    assert admin.patch(f"/api/admin/operators/{oid}", json={"active": True}).status_code == 200
    assert op.get("/api/me").status_code == 401
    served.login(DEMO_OPERATOR)


def test_a_role_change_ends_the_sessions_and_closes_the_feed(served):
    op = served.login(DEMO_OPERATOR)
    admin = served.login(DEMO_ADMIN)
    ws = served.live_feed(op)
    oid = operator_id(admin, DEMO_OPERATOR[0])
    assert admin.patch(f"/api/admin/operators/{oid}", json={"role": "supervisor"}).status_code == 200
    assert closed_code(ws) == SESSION_REVOKED_CLOSE
    assert op.get("/api/me").status_code == 401
    assert served.login(DEMO_OPERATOR).get("/api/me").json()["role"] == "supervisor"
    assert "operator.role_changed" in actions(served, f"operator:{oid}")
    # A change that is not about power (the display name) ends nothing.
    fresh = served.login(DEMO_OPERATOR)
    assert admin.patch(f"/api/admin/operators/{oid}", json={"display_name": "Claire"}).status_code == 200
    assert fresh.get("/api/me").status_code == 200


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(served):
    thief = served.login(DEMO_OPERATOR, "127.0.0.2")
    thief_ws = served.live_feed(thief)
    me = served.login(DEMO_OPERATOR)
    wrong = me.post("/api/auth/password", json={"current_password": "guess", "new_password": "a-new-password"})
    assert wrong.status_code == 403
    assert thief.get("/api/me").status_code == 200  # a wrong current password changes nothing
    r = me.post("/api/auth/password", json={"current_password": DEMO_OPERATOR[1], "new_password": "a-new-password"})
    assert r.status_code == 200 and r.json() == {"other_sessions_ended": 1}
    assert closed_code(thief_ws) == SESSION_REVOKED_CLOSE
    assert thief.get("/api/me").status_code == 401
    assert me.get("/api/me").status_code == 200
    assert served.client().post("/api/auth/login", json={"username": DEMO_OPERATOR[0],
                                                         "password": DEMO_OPERATOR[1]}).status_code == 401
    served.login((DEMO_OPERATOR[0], "a-new-password"))


def test_an_admin_password_reset_ends_every_session(served):
    op = served.login(DEMO_OPERATOR)
    ws = served.live_feed(op)
    admin = served.login(DEMO_ADMIN)
    oid = operator_id(admin, DEMO_OPERATOR[0])
    assert admin.patch(f"/api/admin/operators/{oid}", json={"password": "reset-by-admin"}).status_code == 200
    assert closed_code(ws) == SESSION_REVOKED_CLOSE
    assert op.get("/api/me").status_code == 401
    assert {"password.reset", "session.revoked"} <= set(actions(served, f"operator:{oid}"))


def test_logout_closes_that_sessions_feed_and_no_other(served):
    desk = served.login(DEMO_OPERATOR)
    tablet = served.login(DEMO_OPERATOR, "127.0.0.2")
    desk_ws, tablet_ws = served.live_feed(desk), served.live_feed(tablet)
    assert desk.post("/api/auth/logout").status_code == 204
    assert closed_code(desk_ws) == SESSION_REVOKED_CLOSE
    # The tablet's feed still carries the next alarm, and its session still answers.
    case_id = sos(served, "1.1").case_id
    assert next_case_event(tablet_ws)["case"]["id"] == case_id
    assert tablet.get("/api/me").status_code == 200
    tablet_ws.close()


def test_a_session_dies_after_its_idle_lifetime(served):
    idle_s = served.svc.settings.session_idle_minutes * 60
    op = served.login(DEMO_OPERATOR)
    served.clock.advance(idle_s - 60)
    assert op.get("/api/me").status_code == 200  # used: the idle clock starts again
    served.clock.advance(idle_s - 60)
    assert op.get("/api/me").status_code == 200
    served.clock.advance(idle_s + 1)
    assert op.get("/api/me").status_code == 401


def test_a_session_in_use_dies_at_its_absolute_end_and_its_feed_closes(served):
    absolute_s = served.svc.settings.session_hours * 3600
    op = served.login(DEMO_OPERATOR)
    ws = served.live_feed(op)
    used = 0
    while used + 3600 < absolute_s:
        served.clock.advance(3600)
        used += 3600
        assert op.get("/api/me").status_code == 200, used
    served.clock.advance(absolute_s - used)
    assert op.get("/api/me").status_code == 401
    assert closed_code(ws) == SESSION_REVOKED_CLOSE  # the feed's periodic re-check
    served.login(DEMO_OPERATOR)  # a new login is a new session
