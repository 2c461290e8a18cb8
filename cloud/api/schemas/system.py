"""The platform's own state, as a tenant sees it."""
from __future__ import annotations

from pydantic import BaseModel


class DeadLetterOut(BaseModel):
    id: int
    received_at: str
    last_at: str
    count: int
    device_id: str | None = None
    topic: str
    reason: str
    detail: str | None = None
    case_id: int | None = None
    payload: str
