"""No existence oracles across tenants, against the running server: what a tenant's
admin gets when creating a device id, an operator or a call centre is the same
whether or not another tenant has one by that name."""
from __future__ import annotations

import httpx
import pytest

from cloud.domain.accounts import provision_device
from cloud.domain.clock import SystemClock
from cloud.seed import DEMO_ADMIN, DEMO_OTHER_OPERATOR

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # about answers, not the database

THEIRS = "864000000000077"  # the other tenant's watch


def other_tenant_has_a_private_centre_and_a_watch(sm, seed):
    from cloud.store.models import CallCentre
    with sm() as s:
        s.add(CallCentre(name="Northwind Night Desk", owner_tenant_id=seed.other_tenant_id))
        s.commit()
    provision_device(sm, SystemClock(), seed.other_tenant_id, device_id=THEIRS)


def same_answer(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.headers.get("content-type")) == (b.status_code, b.headers.get("content-type"))


def test_creating_what_another_tenant_has_answers_as_if_it_did_not_exist(stack_factory):
    stack = stack_factory(before_start=other_tenant_has_a_private_centre_and_a_watch)
    with httpx.Client(base_url=stack.url, timeout=10) as api:
        r = api.post("/api/auth/login", json={"username": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]})
        h = {"X-CSRF-Token": r.json()["csrf_token"]}

        # Device ids: the server issues them; a chosen id is refused alike, taken or not.
        theirs = api.post("/api/admin/devices", headers=h, json={"id": THEIRS})
        mine = api.post("/api/admin/devices", headers=h, json={"id": stack.seed.device_id})
        free = api.post("/api/admin/devices", headers=h, json={"id": "864000000000099"})
        assert theirs.status_code == 422 and theirs.json() == mine.json() == free.json()
        assert "issued by the server" in theirs.json()["detail"]
        issued = api.post("/api/admin/devices", headers=h, json={})
        assert issued.status_code == 201 and issued.json()["id"] not in (THEIRS, stack.seed.device_id)

        # Usernames: a tenant's admin creates names in its own namespace.
        theirs = api.post("/api/admin/operators", headers=h, json={"username": DEMO_OTHER_OPERATOR[0],
                                                                   "password": "longenough"})
        free = api.post("/api/admin/operators", headers=h, json={"username": "nobody-has-this",
                                                                 "password": "longenough"})
        same_answer(theirs, free)
        assert theirs.status_code == 201 and theirs.json()["username"] == f"other@t{stack.seed.tenant_id}"
        again = api.post("/api/admin/operators", headers=h, json={"username": DEMO_OTHER_OPERATOR[0],
                                                                  "password": "longenough"})
        assert again.status_code == 409  # taken in its own namespace, which it can list anyway
        # The new operator logs in with the qualified name; the other tenant's "other" is untouched.
        r = api.post("/api/auth/login", json={"username": f"other@t{stack.seed.tenant_id}", "password": "longenough"})
        assert r.status_code == 200 and r.json()["tenant_id"] == stack.seed.tenant_id
        r = api.post("/api/auth/login", json={"username": DEMO_OTHER_OPERATOR[0], "password": DEMO_OTHER_OPERATOR[1]})
        assert r.status_code == 200 and r.json()["tenant_id"] == stack.seed.other_tenant_id

        # Centres: names are unique among the centres a tenant sees, not platform-wide.
        r = api.post("/api/auth/login", json={"username": DEMO_ADMIN[0], "password": DEMO_ADMIN[1]})
        h = {"X-CSRF-Token": r.json()["csrf_token"]}
        theirs = api.post("/api/admin/centres", headers=h, json={"name": "Northwind Night Desk"})
        free = api.post("/api/admin/centres", headers=h, json={"name": "Nobody Has This Desk"})
        same_answer(theirs, free)
        assert theirs.status_code == 201 and theirs.json()["owned"] is True
        assert api.post("/api/admin/centres", headers=h, json={"name": "Northwind Night Desk"}).status_code == 409
