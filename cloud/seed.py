"""Demo data: a care home's tenant, its call centre, an operator, a wearer and her watch.

A second tenant with its own operator shows tenant isolation: its operator
never sees the first tenant's cases."""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select

from cloud.domain.accounts import AccountService, provision_device
from cloud.domain.security import hash_secret
from cloud.domain.uow import transaction
from cloud.files import open_private
from cloud.store.models import CallCentre, Contact, Contract, Operator, Tenant, Wearer

DEMO_OPERATOR = ("operator", "operator-demo")
DEMO_OTHER_OPERATOR = ("other", "other-demo")
DEMO_SECOND_OPERATOR = ("nina", "nina-demo")
DEMO_SUPERVISOR = ("supervisor", "supervisor-demo")
DEMO_ADMIN = ("manager", "manager-demo")  # the care home's manager: the admin pages
DEMO_DEVICE_ID = "demo-watch-1"


@functools.cache
def demo_password_hash(password: str) -> str:
    """One argon2 hash per demo password and process, not one per seeding: the passwords
    are public (README), so two demo databases sharing a salt tell nobody anything, and
    the tests seed hundreds of databases (five hashes, a second or more, each time)."""
    return hash_secret(password)


@dataclass
class DemoSeed:
    tenant_id: int
    other_tenant_id: int
    device_id: str
    device_secret: str
    wearer_id: int


def seed_demo(sm, clock, data_dir: Path) -> DemoSeed:
    """Idempotent: a second run returns the same ids and the saved device secret."""
    creds_file = data_dir / "demo-device.json"
    with sm() as s:
        existing = s.scalar(select(Tenant).where(Tenant.name == "Les Tilleuls care home"))
        if existing is not None and creds_file.exists():
            saved = json.loads(creds_file.read_text())
            other = s.scalar(select(Tenant).where(Tenant.name == "Northwind Insurance"))
            wearer = s.scalar(select(Wearer).where(Wearer.tenant_id == existing.id))
            return DemoSeed(existing.id, other.id, saved["id"], saved["secret"], wearer.id)

    with transaction(sm) as tx:
        s = tx.session
        tenant, other = Tenant(name="Les Tilleuls care home"), Tenant(name="Northwind Insurance")
        lyon, north = (CallCentre(name="Lyon Alarm Centre", phone="+33400000000"),
                       CallCentre(name="Northwind Response", phone="+441000000000"))
        s.add_all([tenant, other, lyon, north])
        s.flush()
        s.add_all([Contract(tenant_id=tenant.id, centre_id=lyon.id, rank=0),
                   Contract(tenant_id=other.id, centre_id=north.id, rank=0)])
        wearer = Wearer(tenant_id=tenant.id, name="Jeanne Martin", birth_date=date(1941, 3, 14), language="fr",
                        home_address="12 rue de la République, 69002 Lyon", home_lat=45.7640, home_lon=4.8357,
                        medical_notes="Type 2 diabetes. Hearing aid (left). Lives alone; neighbour has a key.")
        s.add(wearer)
        s.flush()
        s.add_all([Contact(wearer_id=wearer.id, rank=0, name="Sophie Martin", relation="daughter",
                           phone="+33611111111", email="sophie.martin@example.org"),
                   Contact(wearer_id=wearer.id, rank=1, name="Marc Bernard", relation="neighbour (has a key)",
                           phone="+33622222222")])
        ids = (tenant.id, other.id, wearer.id, lyon.id, north.id)
    tenant_id, other_id, wearer_id, lyon_id, north_id = ids

    accounts = AccountService(sm, clock)
    create_operator = functools.partial(accounts.create_operator, hasher=demo_password_hash)
    with sm() as s:
        if s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0])) is None:
            create_operator(tenant_id, DEMO_OPERATOR[0], DEMO_OPERATOR[1], display_name="Claire (night shift)",
                            centre_id=lyon_id)
            create_operator(tenant_id, DEMO_SECOND_OPERATOR[0], DEMO_SECOND_OPERATOR[1],
                            display_name="Nina (night shift)", centre_id=lyon_id)
            create_operator(tenant_id, DEMO_SUPERVISOR[0], DEMO_SUPERVISOR[1],
                            display_name="Hugo (supervisor)", role="supervisor", centre_id=lyon_id)
            create_operator(tenant_id, DEMO_ADMIN[0], DEMO_ADMIN[1],
                            display_name="Martine (care-home manager)", role="admin")
            create_operator(other_id, DEMO_OTHER_OPERATOR[0], DEMO_OTHER_OPERATOR[1],
                            display_name="Sam (Northwind)", centre_id=north_id)
    dev = provision_device(sm, clock, tenant_id, device_id=DEMO_DEVICE_ID, wearer_id=wearer_id, actor="seed")
    data_dir.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_private(creds_file), "w") as fh:
        json.dump({"id": dev.device_id, "secret": dev.secret}, fh)
    return DemoSeed(tenant_id, other_id, dev.device_id, dev.secret, wearer_id)
