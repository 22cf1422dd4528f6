"""Identifier normalisation: the keys that link interactions to customers."""

from __future__ import annotations

import pytest

from service.errors import InvalidInput
from service.identifiers import (
    business_ids_in,
    normalise_business_id,
    normalise_email,
    normalise_phone,
)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("045 125 4423", "FI", "+358451254423"),
        ("+358 45 1254423", "FI", "+358451254423"),
        ("(09) 123 4567", "FI", "+35891234567"),
        ("070-123 45 67", "SE", "+46701234567"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, e164: str) -> None:
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["12", "not a number", "+358 45"])
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_phone(raw, "FI")


def test_business_id_check_digit() -> None:
    assert normalise_business_id("2468823-3") == "2468823-3"
    assert normalise_business_id("24688233") == "2468823-3"
    with pytest.raises(InvalidInput):
        normalise_business_id("2468823-4")
    assert business_ids_in("Y-tunnus 2468823-3, ei 2468823-4 eikä 12468823-3") == ["2468823-3"]


@pytest.mark.parametrize(
    "raw", ["alice@x(<bob@y>", "a b@c.fi", "<a@b.fi>", "a@@b.fi", "a@b.fi,c@d.fi", "@b.fi"]
)
def test_only_plain_addresses_are_accepted(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_email(raw)


def test_addresses_compare_lower_case() -> None:
    assert normalise_email(" Aino.Asiakas@Example.FI ") == "aino.asiakas@example.fi"
