"""Which code a receiver is sent for each event (docs/forwarding.md has the table and
where each code comes from). Contact ID: a 3-digit event code with a qualifier
(1 new event, 3 restore); SIA DCS: a 2-letter code, its restore a different code."""
from __future__ import annotations

from dataclasses import dataclass

NEW, RESTORE = 1, 3


@dataclass(frozen=True)
class Codes:
    cid: str  # Contact ID event code
    sia: str  # SIA DCS code of the event
    sia_restore: str  # SIA DCS code of its restore


CODES: dict[str, Codes] = {
    "sos": Codes("101", "QA", "QH"),  # personal emergency / emergency alarm
    "fall": Codes("100", "MA", "MH"),  # medical
    "low_battery": Codes("384", "XT", "XR"),  # low battery of a wireless transmitter (the watch)
    "offline": Codes("381", "YC", "YK"),  # loss of supervision / communications fail
    "geofence": Codes("150", "UA", "UH"),  # 24-hour auxiliary / untyped zone alarm
    "test": Codes("602", "RP", "RP"),  # periodic test report
}


def code_for(fmt: str, event: str, qualifier: int) -> str:
    """The code as the format writes it; an event without a mapping is a plain
    personal emergency (an alarm is never held back for want of a code)."""
    codes = CODES.get(event, CODES["sos"])
    if fmt == "ADM-CID":
        return codes.cid
    return codes.sia_restore if qualifier == RESTORE else codes.sia
