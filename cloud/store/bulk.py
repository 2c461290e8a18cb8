"""Bulk writes for the ingest's batch of location reports, with what each database
needs to do them fast. The domain calls these functions and never sees a dialect.

``insert_location_points`` is one multi-row ``INSERT .. ON CONFLICT DO NOTHING
RETURNING``: what it does not return was already stored (a redelivery)."""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy import insert as sa_insert
from sqlalchemy import text as sa_text
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from cloud.store.models import Device, LocationPoint

LOC_COLUMNS = {"device_id": "varchar", "mid": "varchar", "lat": "float8", "lon": "float8", "acc": "float8",
               "src": "varchar", "device_ts": "int8", "received_at": "timestamp", "reason": "varchar",
               "ref": "varchar"}
_PG_LOC_INSERT = sa_text(
    f"INSERT INTO location_points ({', '.join(LOC_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in LOC_COLUMNS.items())}) "
    "ON CONFLICT (device_id, mid) DO NOTHING RETURNING device_id, mid")
_SQLITE_LOC_ROW = f"({', '.join('?' * len(LOC_COLUMNS))})"
_CHUNK = 500  # rows per statement, and ids per IN (...): well under any bound-parameter limit


def insert_location_points(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
    """Insert location rows (dicts with the keys of ``LOC_COLUMNS``), skipping
    (device, mid) pairs already stored; returns the pairs inserted."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return _pg_insert_locations(s, rows)
    if dialect == "sqlite":
        return _sqlite_insert_locations(s, rows)
    return _generic_insert_locations(s, rows)


def _pg_insert_locations(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
    # One statement with one array per column: a multi-row VALUES of 500 x 10
    # placeholders costs more to build and parse (psycopg) than to execute.
    params = {c: [r[c] for r in rows] for c in LOC_COLUMNS}
    return {tuple(r) for r in s.execute(_PG_LOC_INSERT, params)}


@functools.lru_cache(maxsize=8)
def _sqlite_loc_insert(n: int) -> str:
    return (f"INSERT INTO location_points ({', '.join(LOC_COLUMNS)}) VALUES "
            f"{', '.join([_SQLITE_LOC_ROW] * n)} ON CONFLICT (device_id, mid) DO NOTHING RETURNING device_id, mid")


def _sqlite_insert_locations(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
    """The same multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING as SQLAlchemy's
    sqlite dialect builds, as SQL text with flat positional parameters: binding
    5,000 parameters one by one through the compiled statement cost about as much
    CPU as SQLite's own work on the insert. Every row of a batch has the same
    received_at, so the column's bind processor (SQLAlchemy's text form of a
    datetime, which the ORM reads back) runs once per batch, not once per row."""
    conn = s.connection()
    to_db = LocationPoint.__table__.c.received_at.type.bind_processor(conn.dialect)
    # The driver's cursor, in the session's transaction: plain tuples back, not Rows.
    stamps: dict = {}
    inserted: set[tuple[str, str]] = set()
    with contextlib.closing(conn.connection.dbapi_connection.cursor()) as cursor:
        for k in range(0, len(rows), _CHUNK):  # 5,000 parameters: well under SQLite's 32,766
            chunk = rows[k:k + _CHUNK]
            flat: list = []
            for r in chunk:
                at = r["received_at"]
                stamp = stamps.get(at)
                if stamp is None:
                    stamp = stamps[at] = to_db(at) if to_db else at
                flat += (r["device_id"], r["mid"], r["lat"], r["lon"], r["acc"], r["src"], r["device_ts"], stamp,
                         r["reason"], r["ref"])
            inserted.update(cursor.execute(_sqlite_loc_insert(len(chunk)), flat).fetchall())
    return inserted


def _generic_insert_locations(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
    """Any other store: read what is there, insert the rest."""
    table = LocationPoint.__table__
    stored = {tuple(r) for r in s.execute(
        select(table.c.device_id, table.c.mid).where(table.c.device_id.in_({r["device_id"] for r in rows}),
                                                     table.c.mid.in_({r["mid"] for r in rows})))}
    fresh = [r for r in rows if (r["device_id"], r["mid"]) not in stored]
    if fresh:
        s.execute(sa_insert(table), fresh)
    return {(r["device_id"], r["mid"]) for r in fresh}


def mark_devices_seen(s: Session, device_ids: list[str], now: datetime) -> None:
    """``last_seen`` and ``online`` of many devices, without loading them."""
    table = Device.__table__
    for k in range(0, len(device_ids), _CHUNK):
        s.execute(sa_update(table).where(table.c.id.in_(device_ids[k:k + _CHUNK])).values(last_seen=now, online=True))


def set_last_cells(s: Session, cells: Iterable[tuple[str, dict | None]]) -> None:
    """``last_cell`` of many devices, one executemany: (device id, cell) pairs."""
    params = [{"b_id": device_id, "b_cell": cell} for device_id, cell in cells]
    if params:
        table = Device.__table__
        s.execute(sa_update(table).where(table.c.id == bindparam("b_id")).values(last_cell=bindparam("b_cell")),
                  params)
