"""What the running server shows to whom, with a real HTTP client (httpx) on loopback:
/metrics, the API documentation, Cache-Control on personal data, the client address
behind proxies, link fields, and webhook URLs pointing inside (refused when saved,
without any connection: the addresses are literals, checked before any lookup)."""
from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR
from cloud.store.models import AuditEntry, Tenant, Wearer

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # about HTTP, not the database

DOCS = ("/docs", "/redoc", "/openapi.json")


def login(api: httpx.Client, who) -> dict:
    api.cookies.clear()
    r = api.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def failed_login_addresses(stack) -> list[str]:
    """What the audit log says about where failed logins came from (its actor and detail)."""
    with stack.services.sm() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed").order_by(AuditEntry.id))
        return [f"{r.actor} {json.dumps(r.detail)}" for r in rows]


def refused_count(api: httpx.Client) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith('pers_outbound_refused_total{stage="validation"}'):
            return float(line.split()[-1])
    return 0.0


def test_default_exposure(stack_factory):
    stack = stack_factory()
    with httpx.Client(base_url=stack.url, timeout=10) as api:
        # /metrics: a local scraper yes; a request relayed by a proxy (any forwarding header) no.
        assert "pers_alerts_total" in api.get("/metrics").text
        assert api.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 404
        assert api.get("/metrics", headers={"Forwarded": "for=198.51.100.7"}).status_code == 404

        # The API's documentation: nobody but a logged-in admin.
        assert [api.get(p).status_code for p in DOCS] == [404, 404, 404]
        login(api, DEMO_OPERATOR)
        assert [api.get(p).status_code for p in DOCS] == [404, 404, 404]
        h = login(api, DEMO_ADMIN)
        assert [api.get(p).status_code for p in DOCS] == [200, 200, 200]
        assert "/api/cases" in api.get("/openapi.json").json()["paths"]

        # Personal data is not cached: every /api answer, refusals included.
        for r in (api.get("/api/cases"), api.get(f"/api/admin/wearers/{stack.seed.wearer_id}"), api.get("/api/me"),
                  api.get("/api/cases/999999"), api.post("/api/admin/tenant", headers=h)):
            assert r.headers["cache-control"] == "no-store", (r.request.url, r.status_code)

        # Link fields: javascript: and friends refused with a plain message; the safe forms kept.
        url = f"/api/admin/wearers/{stack.seed.wearer_id}"
        for bad in ("javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,<script>x</script>",
                    "//evil.example.org/x.png", "http://evil.example.org/x.png"):
            r = api.patch(url, headers=h, json={"photo_url": bad})
            assert r.status_code == 422 and "must be an https: URL" in r.text, bad
        for good in ("https://photos.example.org/jeanne.jpg", "/static/jeanne.jpg", "http://localhost:8000/j.png"):
            assert api.patch(url, headers=h, json={"photo_url": good}).json()["photo_url"] == good
        with stack.services.sm() as s:
            assert s.get_one(Wearer, stack.seed.wearer_id).photo_url == "http://localhost:8000/j.png"

        # A webhook pointing inside is refused when saved, before any connection; logged and counted.
        refused_before = refused_count(api)
        for inside in ("https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook",
                       f"http://127.0.0.1:{stack.settings.http_port}/api/me", "https://[::ffff:127.0.0.1]/",
                       "https://2130706433/"):
            r = api.patch("/api/admin/tenant", headers=h, json={"webhook_url": inside})
            assert r.status_code == 422, (inside, r.text)
        assert "only https" in api.patch("/api/admin/tenant", headers=h,
                                         json={"webhook_url": "http://127.0.0.1/"}).json()["detail"]
        with stack.services.sm() as s:
            assert s.get_one(Tenant, stack.seed.tenant_id).webhook_url is None
        assert refused_count(api) == refused_before + 6

        # With no trusted proxy, X-Forwarded-For is the client's own word: ignored.
        api.cookies.clear()
        r = api.post("/api/auth/login", json={"username": "nobody", "password": "x"},
                     headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 401
    [seen] = failed_login_addresses(stack)
    assert "127.0.0.1" in seen and "203.0.113.9" not in seen


def test_configured_exposure(stack_factory):
    stack = stack_factory(metrics_token="scrape-t0ken", trusted_proxies="127.0.0.1", api_docs="off")
    with httpx.Client(base_url=stack.url, timeout=10) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert "pers_alerts_total" in api.get("/metrics", headers={"Authorization": "Bearer scrape-t0ken"}).text

        login(api, DEMO_ADMIN)
        assert [api.get(p).status_code for p in DOCS] == [404, 404, 404]

        # Behind the trusted proxy: the right-most address it did not add itself is the
        # client's; what the client wrote to the left of it changes nothing.
        api.cookies.clear()
        r = api.post("/api/auth/login", json={"username": "nobody", "password": "x"},
                     headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
        assert r.status_code == 401
    [seen] = failed_login_addresses(stack)
    assert "198.51.100.7" in seen and "6.6.6.6" not in seen
