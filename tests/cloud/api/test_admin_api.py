"""The admin and supervisor API over HTTP (TestClient): roles, CSRF, tenant
isolation (404 for others' objects), pagination, provisioning and rotation,
audit, OpenAPI."""
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.domain.outbound import OutboundHttp, OutboundPolicy
from cloud.domain.security import mosquitto_verify
from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AuditEntry, Device, Operator
from tests.cloud.helpers import alert, operator


def never_connect(ip, port, timeout):
    raise AssertionError(f"a test tried to connect to {ip}:{port}")


@pytest.fixture
def api(make_world):
    from cloud.wiring import CallBrokerAuth
    syncs = []
    # Webhook URLs are resolved when saved: a fixed public answer, no DNS (and no call) from a test.
    public = OutboundHttp(OutboundPolicy(), resolver=lambda host, port: ["93.184.216.34"], connect=never_connect)
    world = make_world(broker_auth=CallBrokerAuth(lambda: syncs.append(True)), http_out=public)
    operator(world, "boss", role="admin")
    operator(world, "sue", role="supervisor")
    operator(world, "evil", role="admin", tenant_id=world.seed.other_tenant_id)
    app = create_app(world.svc.settings, services=world.svc)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:  # a local client may read /metrics
        world.extra["syncs"] = syncs
        yield world, client


def login(client, username, password=None):
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"username": username, "password": password or username + "-pw-123"})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def test_roles_and_csrf(api):
    world, client = api
    login(client, *DEMO_OPERATOR)
    assert client.get("/api/admin/devices").status_code == 403
    assert client.get("/api/supervisor/sla").status_code == 403
    h = login(client, "sue")
    assert client.get("/api/supervisor/sla").status_code == 200
    assert client.get("/api/admin/devices").status_code == 403
    assert client.get("/api/admin/audit").status_code == 403
    h = login(client, "boss")
    assert client.post("/api/admin/wearers", json={"name": "X"}).status_code == 403  # no CSRF header
    assert client.post("/api/admin/wearers", json={"name": "X"}, headers=h).status_code == 201
    client.cookies.clear()
    assert client.get("/api/admin/devices").status_code == 401


def test_provision_shows_the_secret_once_and_syncs_the_broker(api):
    world, client = api
    h = login(client, "boss")
    r = client.post("/api/admin/devices", json={"wearer_id": world.seed.wearer_id}, headers=h)
    assert r.status_code == 201
    dev_id, secret = r.json()["id"], r.json()["secret"]
    assert world.extra["syncs"] == [True]
    with world.svc.sm() as s:
        d = s.get(Device, dev_id)
        assert mosquitto_verify(secret, d.broker_hash) and secret not in d.broker_hash
    view = client.get(f"/api/admin/devices/{dev_id}").json()
    assert "secret" not in view and view["presence"] == "unknown"
    assert client.post("/api/admin/devices", json={"id": "bad id!"}, headers=h).status_code == 422
    assert client.post("/api/admin/devices", json={"wearer_id": 99999}, headers=h).status_code == 422
    generated = client.post("/api/admin/devices", json={}, headers=h).json()
    assert generated["id"] and generated["secret"] and generated["id"] != dev_id

    r = client.post(f"/api/admin/devices/{dev_id}/rotate", headers=h)
    new = r.json()["secret"]
    assert new != secret and len(world.extra["syncs"]) == 3
    with world.svc.sm() as s:
        d = s.get(Device, dev_id)
        assert mosquitto_verify(new, d.broker_hash) and not mosquitto_verify(secret, d.broker_hash)
        actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.target == f"device:{dev_id}"))]
    assert actions == ["device.provisioned", "device.secret_rotated"]


def test_tenant_isolation(api):
    world, client = api
    h = login(client, "boss")
    wearer = client.post("/api/admin/wearers", json={"name": "Paul", "contacts": [
        {"name": "Anne", "phone": "+33600000001", "email": "anne@example.org"}]}, headers=h).json()
    centre = client.post("/api/admin/centres", json={"name": "Mine", "countries": ["FR"]}, headers=h).json()
    fence = client.post(f"/api/admin/wearers/{wearer['id']}/geofences", headers=h, json={
        "name": "Home", "shape": "circle", "lat": 45.0, "lon": 4.0, "radius_m": 100}).json()
    h2 = login(client, "evil")
    assert client.get(f"/api/admin/wearers/{wearer['id']}").status_code == 404
    assert client.patch(f"/api/admin/wearers/{wearer['id']}", json={"name": "x"}, headers=h2).status_code == 404
    assert client.get(f"/api/admin/devices/{world.seed.device_id}").status_code == 404
    assert client.post(f"/api/admin/devices/{world.seed.device_id}/rotate", headers=h2).status_code == 404
    assert client.put(f"/api/admin/devices/{world.seed.device_id}/config", json={"heartbeat_s": 60},
                      headers=h2).status_code == 404
    assert client.patch(f"/api/admin/centres/{centre['id']}", json={"phone": "+33491000001"},
                        headers=h2).status_code == 404
    assert client.put("/api/admin/contract", json={"centre_ids": [centre["id"]]}, headers=h2).status_code == 404
    assert client.delete(f"/api/admin/geofences/{fence['id']}", headers=h2).status_code == 404
    assert client.get(f"/api/admin/wearers/{wearer['id']}/geofences").status_code == 404
    assert client.get("/api/admin/wearers").json()["total"] == 0
    assert client.get("/api/admin/devices").json()["items"] == []
    assert [c["name"] for c in client.get("/api/admin/centres").json()] == ["Northwind Response"]
    with world.svc.sm() as s:
        mine = s.scalar(select(Operator).where(Operator.username == "operator"))
    assert client.patch(f"/api/admin/operators/{mine.id}", json={"active": False}, headers=h2).status_code == 404
    assert all(a["actor"] != "operator:boss" for a in client.get("/api/admin/audit").json()["items"])


def test_wearers_pagination_filters_and_contacts(api):
    world, client = api
    h = login(client, "boss")
    for name in ["Alice", "Bob", "Carla", "Bernard"]:
        assert client.post("/api/admin/wearers", json={"name": name, "language": "fr"}, headers=h).status_code == 201
    page = client.get("/api/admin/wearers?limit=2&offset=1").json()
    assert page["total"] == 5 and page["limit"] == 2 and [w["name"] for w in page["items"]] == ["Bernard", "Bob"]
    assert [w["name"] for w in client.get("/api/admin/wearers?q=b").json()["items"]] == ["Bernard", "Bob"]
    wid = world.seed.wearer_id
    r = client.patch(f"/api/admin/wearers/{wid}", headers=h, json={"contacts": [
        {"name": "Marc", "phone": "+33622222222"}, {"name": "Sophie", "phone": "+33611111111",
                                                    "email": "s@example.org", "channels": ["email"]}]})
    assert [c["name"] for c in r.json()["contacts"]] == ["Marc", "Sophie"]
    assert r.json()["contacts"][1]["channels"] == ["email"]
    assert client.patch(f"/api/admin/wearers/{wid}", headers=h,
                        json={"contacts": [{"name": "x", "phone": "not a phone"}]}).status_code == 422
    assert client.patch(f"/api/admin/wearers/{wid}", headers=h, json={"home_lat": 45.0, "home_lon": None}
                        ).status_code == 422
    # The medical notes change is audited, but not its content.
    client.patch(f"/api/admin/wearers/{wid}", headers=h, json={"medical_notes": "secret diagnosis"})
    audit = client.get("/api/admin/audit?action=wearer.").json()["items"]
    assert audit[0]["detail"] == {"fields": ["medical_notes"]}


def test_centres_contract_and_operators(api):
    world, client = api
    h = login(client, "boss")
    r = client.post("/api/admin/centres", headers=h, json={
        "name": "Geneva", "phone": "+41220000000", "countries": ["CH"], "languages": ["FR", "de"],
        "areas": [{"type": "circle", "lat": 46.2, "lon": 6.14, "radius_m": 30000}],
        "hours": [{"days": [0, 1, 2, 3, 4], "from": "08:00", "to": "18:00"}], "timezone": "Europe/Zurich"})
    assert r.status_code == 201, r.text
    geneva = r.json()
    assert geneva["languages"] == ["fr", "de"] and geneva["rank"] == 1
    assert client.post("/api/admin/centres", headers=h, json={"name": "Geneva"}).status_code == 409
    assert client.post("/api/admin/centres", headers=h, json={"name": "Z", "timezone": "Mars/Base"}).status_code == 422
    lyon_id = [c for c in client.get("/api/admin/centres").json() if c["name"] == "Lyon Alarm Centre"][0]["id"]
    r = client.put("/api/admin/contract", headers=h, json={"centre_ids": [geneva["id"], lyon_id]})
    assert [c["id"] for c in r.json() if c["rank"] is not None] == [geneva["id"], lyon_id]
    # The seed's Lyon centre has no owner: ours to edit while only we contract it...
    assert client.patch(f"/api/admin/centres/{lyon_id}", headers=h, json={"phone": "+33491000002"}).status_code == 200
    # ...but not once another tenant shares it: 403, not a silent change to their routing.
    from cloud.store.models import Contract
    with world.svc.sm() as s:
        s.add(Contract(tenant_id=world.seed.other_tenant_id, centre_id=lyon_id, rank=5))
        s.commit()
    assert client.patch(f"/api/admin/centres/{lyon_id}", headers=h, json={"phone": "+33491000003"}).status_code == 403
    r = client.post("/api/admin/operators", headers=h, json={"username": "gina", "password": "longenough",
                                                             "role": "operator", "centre_id": geneva["id"]})
    assert r.status_code == 201
    gina = r.json()["id"]
    assert client.post("/api/admin/operators", headers=h, json={"username": "gina", "password": "longenough"}
                       ).status_code == 409
    assert client.patch(f"/api/admin/operators/{gina}", headers=h, json={"active": False}).json()["active"] is False
    me = client.get("/api/me").json()["id"]
    assert client.patch(f"/api/admin/operators/{me}", headers=h, json={"role": "operator"}).status_code == 409
    ops = client.get(f"/api/admin/operators?centre_id={geneva['id']}").json()
    assert [o["username"] for o in ops["items"]] == [f"gina@t{world.seed.tenant_id}"]  # the tenant's namespace
    # The admin's own requests record its presence.
    assert [o for o in client.get("/api/admin/operators").json()["items"] if o["username"] == "boss"][0]["last_seen_at"]


def test_config_endpoint_and_devices_filter(api):
    world, client = api
    h = login(client, "boss")
    r = client.put(f"/api/admin/devices/{world.seed.device_id}/config", headers=h, json={"heartbeat_s": 900})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert client.put(f"/api/admin/devices/{world.seed.device_id}/config", headers=h,
                      json={"heartbeat_s": 1}).status_code == 422
    assert world.sender.configs[-1][1]["heartbeat_s"] == 900
    assert client.get("/api/admin/devices?presence=online").json()["total"] == 0
    assert client.get("/api/admin/devices?presence=unknown").json()["total"] == 1
    assert client.get("/api/admin/devices?presence=bogus").status_code == 422


def test_supervisor_sla_and_report(api):
    world, client = api
    with world.svc.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == "operator"))
    c = alert(world, "1.1").case_id
    world.clock.advance(4)
    world.svc.cases.claim(op, c)
    world.svc.cases.resolve(op, c, "wearer_ok", None)
    login(client, "sue")
    sla = client.get("/api/supervisor/sla").json()
    assert sla["total"]["alarms"] == 1 and sla["total"]["within_10s"]["pct"] == 100.0 and sla["total"]["met"]
    assert sla["by_operator"][0]["username"] == "operator"
    rep = client.get("/api/supervisor/report?from=2026-11-01&to=2026-11-30").json()
    assert rep["by_kind"] == {"sos": 1} and rep["by_outcome"] == {"wearer_ok": 1}
    assert client.get("/api/supervisor/sla?from=2026-12-01&to=2026-11-01").status_code == 422


def test_openapi_documents_the_new_endpoints(api):
    world, client = api
    login(client, "boss")  # the schema is for admins
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/admin/devices", "/api/admin/devices/{device_id}/rotate", "/api/admin/centres",
              "/api/admin/contract", "/api/admin/wearers", "/api/admin/operators", "/api/supervisor/sla",
              "/api/admin/wearers/{wearer_id}/geofences", "/api/admin/devices/{device_id}/config"):
        assert p in paths, p
    assert "requestBody" in paths["/api/admin/devices"]["post"]


def test_metrics_expose_the_new_series(api):
    world, client = api
    alert(world, "1.1")
    world.svc.ticker.tick()
    text = client.get("/metrics").text
    for name in ("pers_alerts_total", "pers_time_to_claim_seconds", "pers_ingest_rejected_total",
                 "pers_cases_routed_total", "pers_open_cases", "pers_tick_seconds"):
        assert name in text, name


def test_tenant_settings(api):
    world, client = api
    h = login(client, "boss")
    r = client.patch("/api/admin/tenant", headers=h, json={"webhook_url": "https://hooks.example.org/pers"})
    assert r.status_code == 200 and r.json()["webhook_url"] == "https://hooks.example.org/pers"
    assert client.patch("/api/admin/tenant", headers=h, json={"webhook_url": "ftp://x"}).status_code == 422
    # A rename is refused alike whether or not another tenant has the name (no oracle).
    taken = client.patch("/api/admin/tenant", headers=h, json={"name": "Northwind Insurance"})
    free = client.patch("/api/admin/tenant", headers=h, json={"name": "Nobody Has This Name"})
    assert taken.status_code == free.status_code == 403 and taken.json() == free.json()
    assert client.patch("/api/admin/tenant", headers=h, json={"name": "Les Tilleuls care home"}).status_code == 200
    assert client.get("/api/admin/tenant").json()["name"] == "Les Tilleuls care home"
    assert client.get("/api/admin/audit?action=tenant.").json()["total"] == 2  # the webhook, and the unchanged name


def test_supervisor_operators_presence_is_recorded_and_throttled(api):
    world, client = api
    login(client, *DEMO_OPERATOR)
    assert client.get("/api/supervisor/operators").status_code == 403
    assert client.get("/api/supervisor/devices").status_code == 403
    client.get("/api/cases")  # any authenticated request records presence
    with world.svc.sm() as s:
        first = s.scalar(select(Operator).where(Operator.username == "operator")).last_seen_at
    assert first == world.clock.now()
    world.clock.advance(5)
    client.get("/api/cases")  # within 15 s: no new write
    with world.svc.sm() as s:
        assert s.scalar(select(Operator).where(Operator.username == "operator")).last_seen_at == first
    world.clock.advance(20)
    client.get("/api/cases")
    with world.svc.sm() as s:
        assert s.scalar(select(Operator).where(Operator.username == "operator")).last_seen_at == world.clock.now()
    c = alert(world, "2.1").case_id
    with world.svc.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == "operator"))
    world.svc.cases.claim(op, c)
    login(client, "sue")
    ops = {o["username"]: o for o in client.get("/api/supervisor/operators").json()}
    assert ops["operator"]["present"] is True and ops["operator"]["open_cases"] == 1
    assert ops["operator"]["display_name"] == "Claire (night shift)" and ops["nina"]["present"] is False
    assert "evil" not in ops and "password_hash" not in ops["operator"]
    world.clock.advance(world.svc.settings.operator_present_s + 1)
    ops = {o["username"]: o for o in client.get("/api/supervisor/operators").json()}
    assert ops["operator"]["present"] is False and ops["sue"]["present"] is True


def test_supervisor_devices_needing_attention(api):
    world, client = api
    h = login(client, "boss")
    quiet = client.post("/api/admin/devices", json={}, headers=h).json()["id"]
    login(client, "sue")
    assert client.get("/api/supervisor/devices").json()["items"] == []
    world.svc.ingestor.handle(f"pers/v1/{world.seed.device_id}/status",
                              b'{"v":1,"mid":"9.1","batt":{"pct":12},"fw":"1.0.0"}')
    world.svc.ingestor.handle(f"pers/v1/{quiet}/presence", b'{"online":false}')  # its last will
    r = client.get("/api/supervisor/devices").json()
    items = {d["id"]: d for d in r["items"]}
    assert items[world.seed.device_id]["problems"] == ["low_battery"]
    assert items[world.seed.device_id]["wearer_name"] == "Jeanne Martin"
    assert items[quiet]["presence"] == "suspect" and items[quiet]["problems"] == ["suspect"]
    assert r["counts"] == {"offline": 0, "suspect": 1, "low_battery": 1}
    assert [d["id"] for d in client.get("/api/supervisor/devices?low_battery_pct=10").json()["items"]] == [quiet]
    login(client, "evil")
    assert client.get("/api/supervisor/devices").json()["items"] == []


def test_case_api_shows_centre_escalation_location_label_and_photo(api):
    world, client = api
    h = login(client, "boss")
    client.patch(f"/api/admin/wearers/{world.seed.wearer_id}", headers=h, json={"photo_url": "/static/jeanne.jpg"})
    c = alert(world, "3.1").case_id
    login(client, *DEMO_OPERATOR)
    view = client.get(f"/api/cases/{c}").json()
    assert view["wearer"]["photo_url"] == "/static/jeanne.jpg"
    assert view["centre"]["name"] == "Lyon Alarm Centre" and view["centre_id"] == view["centre"]["id"]
    assert view["routed_at"] and view["escalation_level"] == 0 and view["in_call_at"] is None
    assert view["location_label"]["text"].endswith("from home") or view["location_label"]["text"] == "at home"
    listed = client.get("/api/cases").json()[0]
    assert listed["centre"]["name"] == "Lyon Alarm Centre" and "location_label" in listed


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation of the body: one database is enough
def test_a_zone_that_cannot_be_is_refused_next_to_its_field(api):
    world, client = api
    h = login(client, "boss")
    url = f"/api/admin/wearers/{world.seed.wearer_id}/geofences"
    school = {"name": "School", "shape": "circle", "lat": 45.75, "lon": 4.85, "radius_m": 150,
              "schedule": [{"days": [0, 1, 3, 4], "from": "08:30", "to": "16:30"}], "alert_on_exit": True}
    bowtie = [[45.0, 4.0], [45.0, 4.001], [45.001, 4.0], [45.001, 4.001]]
    for bad, field, words in [
        ({"radius_m": 5}, "radius_m", "the radius is from 20 m to 50 km"),
        ({"radius_m": None}, "radius_m", "a circle needs a radius"),
        ({"shape": "polygon", "points": bowtie}, "points", "the polygon's edges cross"),
        ({"shape": "polygon", "points": [[45.0, 4.0], [45.0, 4.1]]}, "points", "at least 3 points"),
        ({"schedule": []}, "schedule", "a schedule needs at least one window"),
        ({"schedule": [{"days": [], "from": "08:30", "to": "16:30"}]}, "schedule", "at least one day"),
    ]:
        r = client.post(url, headers=h, json={**school, **bad})
        assert r.status_code == 422, (bad, r.text)
        [problem] = r.json()["detail"]
        assert problem["loc"][-1] == field and words in problem["msg"], (bad, problem)
    ok = client.post(url, headers=h, json=school)
    assert ok.status_code == 201 and ok.json()["schedule"][0]["from"] == "08:30"
