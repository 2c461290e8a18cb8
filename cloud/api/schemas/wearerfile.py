"""The wearer's file and the watch's numbers: what admins write and operators read."""
from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

_SEPARATORS = re.compile(r"[\s.\-()]")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


class WearerFileIn(BaseModel):
    """Every field optional: only those sent are changed; an empty string clears one."""
    languages: str | None = Field(default=None, max_length=200, description='e.g. "French, Occitan"')
    gp: str | None = Field(default=None, max_length=400, description="the GP's name and phone")
    allergies: str | None = Field(default=None, max_length=2000)
    medication: str | None = Field(default=None, max_length=2000)
    mobility: str | None = Field(default=None, max_length=400, description='e.g. "walks with a frame"')
    key_safe_code: str | None = Field(default=None, max_length=64)
    key_holders: str | None = Field(default=None, max_length=2000, description="who has keys, how to reach them")

    def dump(self) -> dict:
        return self.model_dump(exclude_unset=True)


class DeviceNumbersIn(BaseModel):
    phone_number: str | None = Field(default=None, max_length=32,
                                     description="the watch's own number, international format (+33 6 12 34 56 78)")
    sim_number: str | None = Field(default=None, max_length=32, description="the SIM's ICCID (89...)")

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return v
        compact = _SEPARATORS.sub("", v)
        if not re.fullmatch(r"\+[1-9][0-9]{6,14}", compact):
            raise ValueError("write the watch's number in international format, starting with + and the country code")
        return compact

    @field_validator("sim_number")
    @classmethod
    def _iccid(cls, v: str | None) -> str | None:
        if not v:
            return v
        compact = _SEPARATORS.sub("", v)
        # ITU-T E.118: 89 (telecommunications), then up to 20 digits in all, the last a Luhn check digit.
        if not re.fullmatch(r"89[0-9]{16,20}", compact) or not _luhn_ok(compact):
            raise ValueError("not a SIM number (ICCID): 18 to 22 digits starting with 89, as printed on the SIM")
        return compact

    def dump(self) -> dict:
        return self.model_dump(exclude_unset=True)
