"""Create a row unless it exists, in one statement that two transactions may run at
once (INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike). The
domain calls this and never sees a dialect."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_unless_exists(s: Session, model: Any, values: dict[str, Any], key: str) -> None:
    """Insert ``values`` into ``model``'s table unless a row with the same unique ``key`` exists."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=[key]))
