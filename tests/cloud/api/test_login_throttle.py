"""Login throttling and the security audit log, against the real HTTP server from
several loopback addresses: a stranger's guesses slow down only the stranger, the
backoff grows, a supervisor sees and clears throttles of their own tenant, and a
manager searches the tenant's audit log."""
from datetime import timedelta

from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR, DEMO_SUPERVISOR

STRANGER, OFFICE, OTHER = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def attempt(client, username, password):
    return client.post("/api/auth/login", json={"username": username, "password": password})


def test_a_strangers_guesses_do_not_keep_the_operator_out(served):
    stranger = served.client(STRANGER)
    codes = [attempt(stranger, DEMO_OPERATOR[0], f"guess-{i}").status_code for i in range(20)]
    assert codes[:4] == [401] * 4 and codes[-1] == 429  # the stranger is slowed down...
    assert attempt(stranger, *DEMO_OPERATOR).status_code == 429  # ...even with the right password
    # The operator at the office, right password: in at once.
    assert attempt(served.client(OFFICE), *DEMO_OPERATOR).status_code == 200


def test_backoff_grows_and_says_when_to_try_again(served):
    stranger = served.client(STRANGER)
    free = served.svc.settings.login_account_free_failures
    for i in range(free):
        assert attempt(stranger, DEMO_OPERATOR[0], f"free-{i}").status_code == 401
    waits = []
    for i in range(5):
        assert attempt(stranger, DEMO_OPERATOR[0], f"guess-{i}").status_code == 401  # counted, then it waits
        refused = attempt(stranger, DEMO_OPERATOR[0], f"early-{i}")
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        served.clock.advance(waits[-1] - 0.5)
        assert attempt(stranger, DEMO_OPERATOR[0], f"still-early-{i}").status_code == 429
        served.clock.advance(0.5)
    assert waits == [1, 2, 4, 8, 16]
    assert attempt(stranger, *DEMO_OPERATOR).status_code == 200  # after the wait, the right password works


def test_one_address_guessing_across_accounts_is_throttled_as_an_address(served):
    stranger = served.client(STRANGER)
    free = served.svc.settings.login_address_free_failures
    codes = [attempt(stranger, f"user-{i}", "guess").status_code for i in range(free + 1)]
    assert set(codes) == {401}  # each name tried once: only the address counter grows
    r = attempt(stranger, "yet-another-user", "guess")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert attempt(served.client(OFFICE), *DEMO_OPERATOR).status_code == 200


def test_a_supervisor_lists_and_clears_a_throttle_of_their_tenant_only(served):
    stranger = served.client(STRANGER)
    for i in range(6):
        attempt(stranger, DEMO_OPERATOR[0], f"guess-{i}")
    assert attempt(stranger, *DEMO_OPERATOR).status_code == 429
    served.svc.accounts.create_operator(served.seed.other_tenant_id, "super-b", "super-b-pw", role="supervisor")
    other = served.login(("super-b", "super-b-pw"), OTHER)
    assert other.get("/api/supervisor/login-throttles").json() == []
    sup = served.login(DEMO_SUPERVISOR, OFFICE)
    listed = sup.get("/api/supervisor/login-throttles").json()
    mine = [t for t in listed if t["kind"] == "account"]
    assert [(t["username"], t["client"], t["failures"]) for t in mine] == [(DEMO_OPERATOR[0], STRANGER, 4)]
    assert mine[0]["retry_after_s"] > 0 and mine[0]["refused"] == 3  # 4 failures, then waits
    assert {t["kind"] for t in listed} == {"account", "address"}  # the address it was tried from, too
    assert other.delete(f"/api/supervisor/login-throttles/{mine[0]['id']}").status_code == 404
    assert served.login(DEMO_OPERATOR).get("/api/me").status_code == 200  # an operator may not clear
    assert sup.delete(f"/api/supervisor/login-throttles/{mine[0]['id']}").status_code == 204
    assert attempt(stranger, *DEMO_OPERATOR).status_code == 200
    audit = sup.get("/api/supervisor/audit", params={"action": "login.throttle_cleared"}).json()
    assert audit["total"] == 1 and audit["items"][0]["detail"]["client"] == STRANGER


def test_an_operator_cannot_see_or_clear_throttles(served):
    op = served.login(DEMO_OPERATOR)
    assert op.get("/api/supervisor/login-throttles").status_code == 403
    assert op.delete("/api/supervisor/login-throttles/1").status_code == 403
    assert op.get("/api/supervisor/audit").status_code == 403


def test_the_audit_log_is_searchable_by_user_action_and_time_and_tenant_scoped(served):
    start = served.clock.now()
    stranger = served.client(STRANGER)
    for i in range(5):
        attempt(stranger, DEMO_OPERATOR[0], f"guess-{i}")
    served.clock.advance(3600)
    op = served.login(DEMO_OPERATOR)
    assert op.post("/api/auth/logout").status_code == 204
    served.clock.advance(3600)
    admin = served.login(DEMO_ADMIN)
    oid = next(o["id"] for o in admin.get("/api/admin/operators").json()["items"] if o["username"] == "operator")
    admin.patch(f"/api/admin/operators/{oid}", json={"role": "supervisor"})
    admin.patch(f"/api/admin/operators/{oid}", json={"active": False})

    sup = served.login(DEMO_SUPERVISOR)
    page = sup.get("/api/supervisor/audit", params={"user": "operator", "limit": 500}).json()
    got = [e["action"] for e in reversed(page["items"])]
    assert got[:5] == ["login.failed"] * 4 + ["login.throttled"]  # the 4th failure engaged the throttle
    assert [a for a in got if a != "login.failed" and a != "login.throttled"] == [
        "login", "logout", "operator.updated", "operator.role_changed", "session.revoked", "operator.updated",
        "operator.deactivated", "session.revoked"]
    assert page["total"] == len(got)
    logins = sup.get("/api/supervisor/audit", params={"user": "operator", "action": "login"}).json()["items"]
    assert {e["action"] for e in logins} == {"login", "login.failed", "login.throttled"}
    first_hour = sup.get("/api/supervisor/audit", params={
        "user": "operator", "from": start.isoformat() + "Z",
        "to": (start + timedelta(minutes=59)).isoformat() + "Z"}).json()
    assert {e["action"] for e in first_hour["items"]} == {"login.failed", "login.throttled"}
    paged = sup.get("/api/supervisor/audit", params={"user": "operator", "limit": 2, "offset": 2}).json()
    assert [e["id"] for e in paged["items"]] == [e["id"] for e in page["items"][2:4]]
    assert admin.get("/api/admin/audit", params={"user": "operator"}).json()["total"] == page["total"]

    # Another tenant's manager sees none of it, not even by asking for the name.
    served.svc.accounts.create_operator(served.seed.other_tenant_id, "admin-b", "admin-b-pw", role="admin")
    other = served.login(("admin-b", "admin-b-pw"), OTHER)
    assert other.get("/api/admin/audit", params={"user": "operator"}).json()["total"] == 0
    theirs = other.get("/api/supervisor/audit", params={"limit": 500}).json()["items"]
    assert theirs and all("operator:operator" != e["actor"] and e["target"] != f"operator:{oid}" for e in theirs)
