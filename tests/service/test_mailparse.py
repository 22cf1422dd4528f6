"""Reading a captured email's headers: the plain address forms read without the stdlib's full
parser must come out exactly as `policy.default` reads them, and every other form (comments,
quotes, encoded words, the CVE-2023-27043 shapes) must still go to that parser."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import policy

import pytest

from service.mailparse import parse_email, plain_mailboxes

ATOMS = ["Aino", "Oy", "asiakas", "O'Brien", "x_y", "a-b", "Q", "42", "Matti", "-"]
LOCALS = ["asiakas1", "a.b", "first_last", "x+tag", "a%b", "a-b.c", "Z"]
DOMAINS = ["example.fi", "laskukassa.fi", "mail.a-b.com", "x.co", "localhost"]
# characters that change how RFC 5322 reads an address, sprinkled in at random
TRICKY = ['"', "(", ")", "<", ">", ",", ";", ":", ".", "@", "\\", "[", "]", " ", "=?", "ä", "\t"]


def stdlib(value: str) -> tuple[list[tuple[str, str]], bool]:
    header = policy.default.header_factory("To", value)
    return [(a.display_name, a.addr_spec) for a in header.addresses], bool(header.defects)


def random_header(rng: random.Random) -> str:
    mailboxes = []
    for _ in range(rng.randint(1, 3)):
        address = f"{rng.choice(LOCALS)}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.5:
            name = (" " * rng.randint(1, 2)).join(rng.choice(ATOMS) for _ in range(rng.randint(1, 3)))
            mailboxes.append(f"{name}{' ' * rng.randint(0, 2)}<{address}>")
        else:
            mailboxes.append(address)
    text = ", ".join(mailboxes)
    if rng.random() < 0.4:  # break it somewhere
        at = rng.randint(0, len(text))
        text = text[:at] + rng.choice(TRICKY) + text[at:]
    return text


def test_plain_forms_read_as_the_stdlib_reads_them() -> None:
    rng = random.Random(20261203)
    read_plain = 0
    for _ in range(3000):
        value = random_header(rng)
        plain = plain_mailboxes(value)
        if plain is None:
            continue
        read_plain += 1
        assert (plain, False) == stdlib(value), value
    assert read_plain > 1000  # the generator does make plain headers


@pytest.mark.parametrize(
    "value",
    [
        "alice@x(<bob@y>",  # CVE-2023-27043
        "alice@example.fi(<bob@example.fi>",
        '"Doe, John" <john@example.fi>',
        "John Q. Public <john@example.fi>",
        "=?utf-8?q?Aino_M=C3=A4kinen?= <aino@example.fi>",
        "Aino Mäkinen <aino@example.fi>",
        "aino@example.fi (Aino)",
        "Team: a@example.fi, b@example.fi;",
        "<@route.fi:aino@example.fi>",
        "aino@[192.0.2.1]",
        "a@example.fi,",
        "",
    ],
)
def test_other_forms_go_to_the_full_parser(value: str) -> None:
    assert plain_mailboxes(value) is None


def mail(headers: str) -> bytes:
    return (headers + "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHei\r\n").encode("utf-8")


def test_a_plain_mail_reads_the_same_as_before() -> None:
    parsed = parse_email(
        mail(
            "From: Aino  Virtanen <Aino.Virtanen@Example.fi>\r\nTo: myynti@laskukassa.fi, Pekka <p@x.fi>\r\n"
            "Subject:  Lasku   12  \r\nDate: Tue, 24 Nov 2026 10:00:00 +0200\r\n"
        )
    )
    assert [(a.role, a.address, a.name) for a in parsed.addresses] == [
        ("from", "aino.virtanen@example.fi", "Aino Virtanen"),
        ("to", "myynti@laskukassa.fi", None),
        ("to", "p@x.fi", "Pekka"),
    ]
    assert parsed.subject == "Lasku   12"
    assert parsed.date == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert parsed.parse_errors == [] and not parsed.address_defects


def test_encoded_and_malformed_headers_still_get_the_full_parser() -> None:
    parsed = parse_email(
        mail(
            "From: =?utf-8?q?Aino_M=C3=A4kinen?= <aino@example.fi>\r\nTo: alice@x(<bob@y>\r\n"
            "Subject: =?utf-8?q?Er=C3=A4p=C3=A4iv=C3=A4?=\r\nDate: eilen\r\n"
        )
    )
    assert [(a.role, a.address, a.name) for a in parsed.addresses] == [
        ("from", "aino@example.fi", "Aino Mäkinen"),
        ("to", "alice@x", None),  # what the strict parser makes of it: never bob
    ]
    assert parsed.address_defects  # and so the mail is left unlinked for review
    assert "To header is malformed; not used for linking" in parsed.parse_errors
    assert parsed.subject == "Eräpäivä"
    assert parsed.date is None
    assert "Date header is not a valid date; the time of capture is used" in parsed.parse_errors


def test_plain_subjects_read_as_the_stdlib_reads_them() -> None:
    rng = random.Random(7)
    alphabet = "abc XYZ\t12-_:;,.()<>[]!?=\"'"
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        parsed = parse_email(mail(f"Subject: {value}\r\n"))
        assert parsed.subject == str(policy.default.header_factory("Subject", value)).strip(), value
