"""Shapes shared by several areas."""
from __future__ import annotations

from typing import Annotated

from fastapi import Path as FastApiPath
from pydantic import BaseModel, Field

PHONE = r"^\+?[0-9]{2,20}$"

# Ids are database integers: bound them so an absurd id is a 422, not a crash.
CaseId = Annotated[int, FastApiPath(ge=1, le=2**31 - 1)]


class Page(BaseModel):
    items: list[dict]
    total: int
    limit: int
    offset: int


class Window(BaseModel):
    """A weekly opening window (a centre's hours, a geofence's schedule)."""
    days: list[int] = Field(default_factory=lambda: list(range(7)), description="0 = Monday ... 6 = Sunday")
    from_: str = Field(alias="from", pattern=r"^\d{2}:\d{2}$")
    to: str = Field(pattern=r"^\d{2}:\d{2}$")

    def dump(self) -> dict:
        return {"days": self.days, "from": self.from_, "to": self.to}
