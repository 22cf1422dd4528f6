"""Normalising the identifiers that link interactions to customers.

Email addresses are compared lower-cased and must be plain `local@domain` (no comments,
quotes or routes: an address that needs those is not used for linking). Phone numbers
become E.164 with `phonenumbers` (default region from config, so `045 125 4423` in Finland
is `+358451254423`). Finnish business IDs (Y-tunnus, `1234567-8`) are checked by their
check digit, personal identity codes (henkilötunnus) by their date and check character.
"""

from __future__ import annotations

import re
from datetime import date

import phonenumbers

from service.errors import InvalidInput

_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+)*"
    r"@(?:[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\u0080-\U0010ffff-]{0,61}[A-Za-z0-9\u0080-\U0010ffff])?\.)*"
    r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\u0080-\U0010ffff-]{0,61}[A-Za-z0-9\u0080-\U0010ffff])?$"
)
_BUSINESS_ID = re.compile(r"^(\d{7})-(\d)$")
_CHECK_PART = re.compile(r"-[0-9]")  # anchor on the rare "-digit", then look back
_ASCII_DIGITS = re.compile(r"[0-9]+")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def is_plain_email(value: str) -> bool:
    """True if `value` is a bare `local@domain` address of sane length."""
    return (
        len(value) <= 320 and "@" in value and len(value.split("@", 1)[0]) <= 64 and bool(_EMAIL.match(value))
    )


def normalise_email(value: str, field: str = "email") -> str:
    """The lower-cased address; raises InvalidInput if it is not a plain address."""
    candidate = value.strip()
    if not is_plain_email(candidate):
        raise InvalidInput(f"{value!r} is not an email address", field)
    return candidate.lower()


def normalise_phone(value: str, region: str, field: str = "phone") -> str:
    """The number in E.164 (`+358451254423`); raises InvalidInput if it is not a valid number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"{value!r} is not a phone number", field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{value!r} is not a valid phone number", field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _business_id_ok(digits: str, check: str) -> bool:
    remainder = sum(int(d) * w for d, w in zip(digits, _WEIGHTS, strict=True)) % 11
    if remainder == 1:
        return False
    return int(check) == (0 if remainder == 0 else 11 - remainder)


def normalise_business_id(value: str, field: str = "business_id") -> str:
    """A Finnish business ID `1234567-8` with a correct check digit; raises InvalidInput."""
    candidate = value.strip()
    if len(candidate) == 8 and candidate.isdigit():
        candidate = f"{candidate[:7]}-{candidate[7]}"
    match = _BUSINESS_ID.match(candidate)
    if not match or not _business_id_ok(match.group(1), match.group(2)):
        raise InvalidInput(f"{value!r} is not a valid Finnish business ID (1234567-8)", field)
    return candidate


def business_ids_in(text: str) -> list[str]:
    """Valid business IDs written in a text, in order of first appearance."""
    found: list[str] = []
    for match in _CHECK_PART.finditer(text):
        dash = match.start()
        start, end = dash - 7, dash + 2
        if start < 0 or not _ASCII_DIGITS.fullmatch(text, start, dash):
            continue
        if (start and (text[start - 1].isdigit() or text[start - 1] == "-")) or (
            end < len(text) and (text[end].isdigit() or text[end] == "-")
        ):
            continue  # part of a longer number
        candidate = text[start:end]
        digits, check = candidate.split("-")
        if _business_id_ok(digits, check) and candidate not in found:
            found.append(candidate)
    return found


# Finnish personal identity code (henkilötunnus): DDMMYY, a century sign, a three-digit
# individual number and a check character; the signs of the 2023 reform included.
_PERSONAL_ID = re.compile(r"^(\d{2})(\d{2})(\d{2})([-+A-FU-Y])(\d{3})([0-9A-Y])$")
_CENTURY = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900}
_CENTURY |= dict.fromkeys("ABCDEF", 2000)
_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def normalise_personal_id(value: str, field: str = "personal_id") -> str:
    """A Finnish personal identity code (`131052-308T`) with a real date of birth and a
    correct check character, upper-cased; raises InvalidInput (without echoing the code:
    it is personal data that error messages and logs must not spread)."""
    candidate = value.strip().upper()
    match = _PERSONAL_ID.match(candidate)
    if match is None:
        raise InvalidInput("the personal identity code is not of the form DDMMYYCZZZQ", field)
    day, month, year, sign, individual, check = match.groups()
    try:
        date(_CENTURY[sign] + int(year), int(month), int(day))
    except ValueError:
        raise InvalidInput("the personal identity code has no real date of birth", field) from None
    if int(individual) < 2 or _CHECK_CHARS[int(day + month + year + individual) % 31] != check:
        raise InvalidInput("the personal identity code's check character is wrong", field)
    return candidate
