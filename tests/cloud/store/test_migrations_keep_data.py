"""Migrations run forward on a populated database: data written under an older
schema survives `alembic upgrade head`, and the service works on it."""
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, select, text

from cloud.domain.ports import NullSender
from cloud.settings import Settings
from cloud.store.migrate import upgrade
from cloud.store.models import Alert, AlertCase, Contact, Device, Wearer
from cloud.wiring import build_services

OLD = "0002"  # the schema of the Foundation release


def populate_old_schema(url):
    """Rows as the 0002 schema had them (raw SQL: today's models are newer)."""
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO tenants (id, name) VALUES (1, 'Old tenant')"))
        db.execute(text("INSERT INTO call_centres (id, name, phone) VALUES (1, 'Old centre', '+33400000001')"))
        db.execute(text("INSERT INTO contracts (tenant_id, centre_id, rank) VALUES (1, 1, 0)"))
        db.execute(text("INSERT INTO wearers (id, tenant_id, name, home_lat, home_lon) "
                        "VALUES (1, 1, 'Old wearer', 45.76, 4.83)"))
        db.execute(text("INSERT INTO contacts (id, wearer_id, rank, name, phone) "
                        "VALUES (1, 1, 0, 'Son', '+33600000000')"))
        db.execute(text("INSERT INTO devices (id, tenant_id, wearer_id, broker_hash, online, created_at) "
                        "VALUES ('old-watch', 1, 1, '$7$101$x$y', 0, '2026-01-01 00:00:00')"))
        db.execute(text("INSERT INTO alert_cases (id, tenant_id, device_id, wearer_id, centre_id, kind, priority, "
                        "status, first_mid, press_count, wearer_cancelled, late, opened_at) VALUES "
                        "(1, 1, 'old-watch', 1, 1, 'sos', 0, 'routed', '1.1', 1, 0, 0, '2026-01-01 00:00:05')"))
        # Received an hour ago: within the retry window, so a redelivery is still one.
        db.execute(text("INSERT INTO alerts (id, case_id, device_id, mid, kind, received_at, payload) VALUES "
                        "(1, 1, 'old-watch', '1.1', 'sos', :at, :p)"),
                   {"p": json.dumps({"v": 1, "mid": "1.1", "kind": "sos"}),
                    "at": (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)).isoformat(" ")})
    engine.dispose()


def test_upgrade_to_head_keeps_old_rows_and_the_service_works(tmp_path):
    settings = Settings(data_dir=tmp_path, log_json=False)
    upgrade(settings.db_url, OLD)
    populate_old_schema(settings.db_url)
    upgrade(settings.db_url)  # to head

    svc = build_services(settings, with_mqtt=False, sender=NullSender())
    with svc.sm() as s:
        assert s.get(Device, "old-watch").tenant_id == 1
        assert s.get(Wearer, 1).name == "Old wearer"
        assert s.scalars(select(Contact.name)).all() == ["Son"]
        case = s.get(AlertCase, 1)
        assert (case.status, case.first_mid) == ("routed", "1.1")
    # A redelivery of the old alert is still recognised; a new press joins the old open case.
    out = svc.ingestor.handle("pers/v1/old-watch/alert", b'{"v":1,"mid":"1.1","kind":"sos"}')
    assert out.accepted and out.duplicate
    out = svc.ingestor.handle("pers/v1/old-watch/alert", b'{"v":1,"mid":"1.2","kind":"sos"}')
    assert out.accepted and out.case_id == 1
    with svc.sm() as s:
        assert s.get(AlertCase, 1).press_count == 2
        assert len(s.scalars(select(Alert)).all()) == 2
