"""Shapes shared by several areas."""
from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Path as FastApiPath
from pydantic import AfterValidator, BaseModel, Field

PHONE = r"^\+?[0-9]{2,20}$"

_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
LINK_RULE = ("an https: URL (http: only on localhost, for development), a data:image (base64) URL, "
             "or a path on this server such as /static/photo.jpg")


def _safe_link(value: str) -> str:
    """A link an operator's browser will load: an allow-list of forms, so javascript:,
    data:text/html, //elsewhere and their disguises (spaces, tabs, case) are all refused."""
    if value != value.strip() or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise ValueError(f"must be {LINK_RULE}; no spaces or control characters")
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    if _DATA_IMAGE.match(value):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError(f"must be {LINK_RULE}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if host and (scheme == "https" or (scheme == "http" and host in _LOCAL_HOSTS)):
        return value
    raise ValueError(f"must be {LINK_RULE}")


SafeLink = Annotated[str, AfterValidator(_safe_link)]

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
