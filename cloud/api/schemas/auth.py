"""Logging in, and who is logged in."""
from __future__ import annotations

from pydantic import BaseModel, Field


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class OperatorOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    tenant_id: int
    csrf_token: str | None = None


class OperatorBrief(BaseModel):
    id: int
    display_name: str
    role: str


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class PasswordChanged(BaseModel):
    other_sessions_ended: int
