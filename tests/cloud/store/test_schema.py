"""The schema is Alembic's, on both databases: head matches the models, and 0003
upgrades a database that already holds data (server defaults for new NOT NULL columns)."""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from cloud.store.migrate import alembic_config, upgrade
from cloud.store.models import Base


def test_head_matches_the_models(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_0003_upgrades_populated_data_and_downgrades(db_url):
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "0002")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (1, 't')"))
        conn.execute(text("INSERT INTO devices (id, tenant_id, broker_hash, online, created_at) "
                          "VALUES ('d1', 1, 'h', false, '2026-11-22 08:00:00')"))
        conn.execute(text("INSERT INTO operators (id, tenant_id, username, display_name, password_hash, role) "
                          "VALUES (1, 1, 'u', 'u', 'h', 'operator')"))
    upgrade(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT presence FROM devices")).scalar() == "unknown"
        assert conn.execute(text("SELECT active FROM operators")).scalar() in (True, 1)
    engine.dispose()
