"""The tenant-isolation matrix, generated from the route table: every /api
endpoint × (no session, own tenant, other tenant, wrong role). A new endpoint
cannot skip it: an unknown path parameter or role makes this test fail until
it is described here."""
import json
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cloud.domain.errors import NotAuthenticated
from cloud.seed import DEMO_OPERATOR, DEMO_OTHER_OPERATOR, DEMO_SUPERVISOR
from cloud.wiring import build_app as create_app  # the API and the console's route
from tests.cloud_helpers import seeded
from tests.conftest import DATABASES, new_database_url

PUBLIC = {("POST", "/api/auth/login"), ("GET", "/api/console/config")}
# Which role a path needs; anything else needs an operator (any role).
ROLE_BY_PREFIX = (("/api/admin/", "admin"), ("/api/supervisor/", "supervisor"))
RANK = {"operator": 0, "supervisor": 1, "admin": 2}
# Minimal valid bodies, so "own tenant" reaches the handler rather than stopping at validation.
BODIES = {
    "/api/cases/{case_id}/resolve": {"outcome": "wearer_ok"},
    "/api/cases/{case_id}/message": {"text": "hello"},
    "/api/cases/{case_id}/dispatch": {"service": "ambulance"},
    "/api/cases/{case_id}/notes": {"text": "note"},
    "/api/cases/{case_id}/call": {},
}
SKIP_OWN = {("POST", "/api/auth/logout")}  # would end the session the matrix uses


def required_role(path: str) -> str:
    for prefix, role in ROLE_BY_PREFIX:
        if path.startswith(prefix):
            return role
    return "operator"


@pytest.fixture(scope="module", params=DATABASES)
def world(request, tmp_path_factory):
    """One world per database for the whole matrix (ids [sqlite], [postgresql])."""
    tmp = tmp_path_factory.mktemp("iso")
    svc, sender, seed = seeded(tmp, database_url=new_database_url(request, request.param))
    svc.accounts.create_operator(seed.tenant_id, "admin-a", "admin-a-pw", role="admin")
    svc.accounts.create_operator(seed.other_tenant_id, "admin-b", "admin-b-pw", role="admin")
    svc.accounts.create_operator(seed.other_tenant_id, "super-b", "super-b-pw", role="supervisor")
    out = svc.ingestor.handle(f"pers/v1/{seed.device_id}/alert",
                              b'{"v":1,"mid":"1.1","kind":"sos","loc":{"lat":45.76,"lon":4.83,"src":"gnss"}}')
    # The admin routes: a tenant-A centre, geofence and operator.
    from sqlalchemy import select as _select

    from cloud.store.models import CallCentre, Operator
    with svc.sm() as s:
        centre_id = s.scalar(_select(CallCentre.id).where(CallCentre.name == "Lyon Alarm Centre"))
        admin_a = s.scalar(_select(Operator).where(Operator.username == "admin-a"))
        operator_id = s.scalar(_select(Operator.id).where(Operator.username == DEMO_OPERATOR[0]))
    geofence_id = svc.admin.create_geofence(admin_a, seed.wearer_id, {
        "name": "Home", "shape": "circle", "lat": 45.76, "lon": 4.83, "radius_m": 100})["id"]
    # A login throttle on a tenant-A account (one that never logs in, so it stays).
    svc.accounts.create_operator(seed.tenant_id, "throttled-a", "throttled-a-pw")
    for _ in range(svc.settings.login_account_free_failures + 1):
        with pytest.raises(NotAuthenticated):
            svc.accounts.login("throttled-a", "wrong", "testclient")
    throttle_id = next(t["id"] for t in svc.accounts.throttles(admin_a) if t["kind"] == "account")
    # A tenant-A alarm receiver, stored as is: this world's outbound guard refuses loopback.
    from cloud.store.models import AlarmReceiver
    with svc.sm() as s:
        receiver = AlarmReceiver(tenant_id=seed.tenant_id, name="ARC", host="127.0.0.1", port=9, protocol="tcp",
                                 fmt="ADM-CID", account="1234", line_no="0", key_encoding="hex", poll_s=0,
                                 enabled=True, next_seq=1, clock_offset_s=0.0, created_at=svc.clock.now())
        s.add(receiver)
        s.commit()
        receiver_id = receiver.id
    app = create_app(svc.settings, services=svc)
    params = {"case_id": out.case_id, "device_id": seed.device_id, "wearer_id": seed.wearer_id,
              "tenant_id": seed.tenant_id, "centre_id": centre_id, "geofence_id": geofence_id,
              "operator_id": operator_id, "throttle_id": throttle_id, "receiver_id": receiver_id}
    with TestClient(app) as client:
        yield app, client, params, seed


def session(client, who):
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


class Sessions:
    """One login per account for the whole matrix, not one per call: a login verifies an
    argon2 hash (tens of ms each, hundreds of them here). A call that gets 401 with a kept
    session is made again after a fresh login, so every call is judged as with a session
    of its own even if a route before it ended or rotated that session."""

    def __init__(self, client):
        self.client = client
        self.kept: dict[tuple[str, str], tuple[dict, dict]] = {}

    def _use(self, who) -> dict:
        if who not in self.kept:
            headers = session(self.client, who)
            self.kept[who] = (dict(self.client.cookies), headers)
        cookies, headers = self.kept[who]
        self.client.cookies.clear()
        for name, value in cookies.items():
            self.client.cookies.set(name, value)
        return headers

    def call(self, who, method, url, path):
        r = call(self.client, method, url, self._use(who), path)
        if r.status_code == 401:  # the kept session may be gone: judged as a fresh login is
            del self.kept[who]
            r = call(self.client, method, url, self._use(who), path)
        return r


ACCOUNTS = {  # (tenant A, tenant B) accounts per role
    "operator": (DEMO_OPERATOR, DEMO_OTHER_OPERATOR),
    "supervisor": (DEMO_SUPERVISOR, ("super-b", "super-b-pw")),
    "admin": (("admin-a", "admin-a-pw"), ("admin-b", "admin-b-pw")),
}


def all_routes(routes, prefix=""):
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.160 wraps included routers
        if inner is not None:
            ctx = getattr(route, "include_context", None)
            yield from all_routes(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def api_routes(app):
    seen = set()
    for path, route in all_routes(app.routes):
        if path.startswith("/api/"):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                if (method, path) not in seen:
                    seen.add((method, path))
                    yield method, path


def url_for(path, params):
    def fill(m):
        name = m.group(1)
        if name not in params:
            pytest.fail(f"{path}: add a tenant-A value for path parameter {name!r} in the isolation matrix")
        return str(params[name])
    return re.sub(r"\{(\w+)\}", fill, path)


def call(client, method, url, headers, path):
    body = BODIES.get(path, {}) if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, headers=headers, json=body)


def test_matrix_covers_every_api_route(world):
    app, client, params, seed = world
    routes = list(api_routes(app))
    assert len(routes) >= 10
    sessions = Sessions(client)
    failures = []
    for method, path in routes:
        url = url_for(path, params)
        role = required_role(path)
        public = (method, path) in PUBLIC

        client.cookies.clear()
        r = call(client, method, url, {}, path)
        if not public and r.status_code != 401:
            failures.append(f"{method} {path}: no session gave {r.status_code}, expected 401")
        if public or (method, path) in SKIP_OWN:
            continue

        own, other = ACCOUNTS[role]
        r = sessions.call(own, method, url, path)
        if r.status_code in (401, 403, 404) or r.status_code >= 500:
            failures.append(f"{method} {path}: own tenant ({role}) gave {r.status_code}: {r.text[:120]}")

        r = sessions.call(other, method, url, path)
        has_ids = "{" in path
        if r.status_code >= 500:
            failures.append(f"{method} {path}: other tenant gave {r.status_code}")
        elif has_ids and r.status_code < 400:
            failures.append(f"{method} {path}: other tenant got {r.status_code} on tenant A's object")
        elif r.status_code < 400:
            text = json.dumps(r.json())
            for secret in ("Jeanne Martin", seed.device_id, "Type 2 diabetes"):
                if secret in text:
                    failures.append(f"{method} {path}: other tenant's listing shows {secret!r}")

        if RANK[role] > 0:
            weaker = [r_ for r_, rank in RANK.items() if rank < RANK[role]]
            for w in weaker:
                r = sessions.call(ACCOUNTS[w][0], method, url, path)
                if r.status_code != 403:
                    failures.append(f"{method} {path}: role {w} gave {r.status_code}, expected 403")
    assert not failures, "\n".join(failures)
