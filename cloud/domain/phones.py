"""Phone numbers, read and checked by Google's libphonenumber rules (the
``phonenumbers`` package): stored in E.164 ("+33612345678"), shown in the
national format of their country ("06 12 34 56 78"). A number written without
its country code ("06 12 34 56 78") is read in the configured default region
(``PERS_PHONE_REGION``, e.g. "FR"); without one it is refused, since nobody can
tell which country it belongs to."""
from __future__ import annotations

import re

import phonenumbers

from cloud.domain.errors import Invalid

_PHONE_TEXT = re.compile(r"^\+?[0-9][0-9 ().\-]{1,39}$")  # what people write: "+33 6 12-34.56 (78)"


def check_characters(text: str, *, what: str = "phone number") -> None:
    """What can be said of a number before its country is known."""
    if not _PHONE_TEXT.match(text):
        raise Invalid(f"the {what} {text!r} is not a phone number: digits, spaces and + only")


def to_e164(raw: str, region: str | None = None, *, what: str = "phone number") -> str:
    """``raw`` as E.164, or Invalid with the reason in plain words."""
    text = (raw or "").strip()
    if not text:
        raise Invalid(f"the {what} is empty")
    check_characters(text, what=what)
    if text.startswith("00"):  # the international prefix, as dialled in most of Europe
        text = "+" + text[2:]
    if not text.startswith("+") and not region:
        raise Invalid(f"the {what} {text!r} needs its country code, e.g. +33 6 12 34 56 78")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise Invalid(f"the {what} {text!r} is not a phone number") from None
    # Possible (the right length for its country), not "valid" (a range in use today):
    # numbering plans change faster than a pinned library, and a call centre's own
    # number must not be refused because a range is new.
    if not phonenumbers.is_possible_number(number):
        raise Invalid(f"the {what} {text!r} has too few or too many digits for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national(e164: str | None) -> str | None:
    """How the number is read aloud in its own country; unchanged if it does not parse
    (a number stored before numbers were checked)."""
    if not e164:
        return e164
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
