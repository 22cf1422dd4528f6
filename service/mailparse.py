"""Reading a captured email with the stdlib `email` package (`policy.default`).

Parsing never raises: whatever cannot be read becomes a note in `parse_errors`, and the raw
message is kept whatever happens. Address headers with defects (CVE-2023-27043 style
`alice@x(<bob@y>`) are not guessed at: the mail is flagged for review and not linked.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from service.htmltext import html_to_text
from service.identifiers import is_plain_email

ADDRESS_HEADERS = (
    ("from", "From"),
    ("sender", "Sender"),
    ("reply-to", "Reply-To"),
    ("to", "To"),
    ("cc", "Cc"),
    ("bcc", "Bcc"),
)


# The plain forms most mail's address headers take, read without the stdlib's full RFC 5322
# parser (about 50-80 us a header): `local@domain` or `Display Name <local@domain>`, ASCII
# atoms only, comma-separated. Anything else (quotes, comments, encoded words, dots in a name,
# routes, groups, non-ASCII) goes to policy.default as before; what matches here is what
# that parser makes of it, with no defects (tests/service/test_mailparse.py compares the two).
PLAIN_ADDR_SPEC = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_NAME = r"[A-Za-z0-9'_-]+(?:[ \t]+[A-Za-z0-9'_-]+)*"
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:({_PLAIN_NAME})[ \t]*<({PLAIN_ADDR_SPEC})>|({PLAIN_ADDR_SPEC}))[ \t]*"
)
# header text with nothing policy.default would decode or unfold: printable ASCII and no
# RFC 2047 encoded word
_PLAIN_TEXT = re.compile(r"[ -~\t]*")


@dataclass
class MailAddress:
    """One address from an address header, with the header it came from."""

    role: str
    address: str
    name: str | None


@dataclass
class MailAttachment:
    """A non-body part of the message."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ParsedEmail:
    """What Kirjuri keeps of an email besides its raw bytes."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    addresses: list[MailAddress] = field(default_factory=list)
    body: str = ""
    attachments: list[MailAttachment] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    address_defects: bool = False


def _raw_headers(msg: Message, name: str) -> list[str]:
    """The unfolded values of a header as written (compat32 keeps them unparsed)."""
    return [str(v).replace("\r\n", "").replace("\n", "") for v in msg.get_all(name) or []]


@functools.cache
def _header_class(name: str) -> Any:
    """`policy.default`'s class for a header (its registry builds a new class on every
    lookup: about 8 us a header, more than parsing a plain subject takes)."""
    return policy.default.header_factory[name]  # type: ignore[index]  # HeaderRegistry


def _parse_header(name: str, value: str) -> Any:
    """One header value parsed by `policy.default` (RFC 2047 words decoded, addresses strict)."""
    return _header_class(name)(name, value)


def plain_mailboxes(value: str) -> list[tuple[str, str]] | None:
    """(display name, address) of an address header written in the plain forms only, as
    `policy.default` would read them; None when the header needs the full parser."""
    found = []
    for piece in value.split(","):
        match = _PLAIN_MAILBOX.fullmatch(piece)
        if match is None:
            return None
        name, in_angles, bare = match.groups()
        found.append((" ".join(name.split()) if name else "", in_angles or bare))
    return found


def _subject(msg: Message, errors: list[str]) -> str:
    values = _raw_headers(msg, "Subject")
    if not values:
        return ""
    if _PLAIN_TEXT.fullmatch(values[0]) and "=?" not in values[0]:
        return values[0].strip()  # nothing to decode: policy.default gives it back as it is
    try:
        return str(_parse_header("Subject", values[0])).strip()
    except Exception as exc:  # noqa: BLE001 - the stdlib raises many kinds on broken headers
        errors.append(f"Subject header could not be read ({type(exc).__name__})")
        return ""


def _date(msg: Message, errors: list[str]) -> datetime | None:
    """The Date header in UTC (what policy.default's DateHeader computes, without the class)."""
    values = _raw_headers(msg, "Date")
    if not values:
        return None
    try:
        when = parsedate_to_datetime(values[0])
    except ValueError:
        errors.append("Date header is not a valid date; the time of capture is used")
        return None
    except Exception as exc:  # noqa: BLE001 - the stdlib raises many kinds on broken headers
        errors.append(f"Date header could not be read ({type(exc).__name__})")
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _msg_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:998] or None


def _decode_part(part: Message, errors: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset)
    except LookupError:
        errors.append(f"body part {part.get_content_type()} could not be decoded (unknown charset)")
    except UnicodeDecodeError:
        errors.append(f"body part {part.get_content_type()} could not be decoded as {charset}")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")  # the usual legacy charset here


def _mailboxes(header: str, value: str, parsed: ParsedEmail) -> list[tuple[str, str]]:
    """(display name, address) of one address header value; defects are noted in `parsed`."""
    plain = plain_mailboxes(value)
    if plain is not None:
        return plain
    try:
        parsed_value = _parse_header(header, value)
    except Exception as exc:  # noqa: BLE001 - the stdlib raises many kinds on broken headers
        parsed.parse_errors.append(f"{header} header could not be read ({type(exc).__name__})")
        parsed.address_defects = True
        return []
    if getattr(parsed_value, "defects", None):
        parsed.address_defects = True
        parsed.parse_errors.append(f"{header} header is malformed; not used for linking")
    return [(a.display_name, a.addr_spec) for a in getattr(parsed_value, "addresses", ())]


def _addresses(msg: Message, parsed: ParsedEmail) -> None:
    for role, header in ADDRESS_HEADERS:
        for value in _raw_headers(msg, header):
            for name, spec in _mailboxes(header, value, parsed):
                if not spec or spec == "<>":
                    continue
                if not is_plain_email(spec):
                    parsed.address_defects = True
                    parsed.parse_errors.append(f"{header} holds an address that is not plain")
                    continue
                parsed.addresses.append(MailAddress(role, spec.lower(), name or None))


class _Body:
    """Walks the MIME tree once: the first inline text/plain is the body (else the first
    inline text/html, as text); other leaves and attached messages are attachments."""

    def __init__(self, parsed: ParsedEmail) -> None:
        self.parsed = parsed
        self.plain: str | None = None
        self.html: str | None = None

    def visit(self, part: Message, depth: int = 0) -> None:
        ctype = part.get_content_type()
        maintype = ctype.split("/", 1)[0]
        if maintype == "multipart" and depth < 50:
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.visit(sub, depth + 1)
            return
        filename = part.get_filename()
        if maintype == "message":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = first.as_bytes() if isinstance(first, Message) else part.as_bytes()
            self.parsed.attachments.append(MailAttachment(filename, ctype, data))
            return
        if part.get_content_disposition() != "attachment" and not filename and maintype == "text":
            if ctype == "text/plain" and self.plain is None:
                self.plain = _decode_part(part, self.parsed.parse_errors)
                return
            if ctype == "text/html" and self.html is None:
                self.html = _decode_part(part, self.parsed.parse_errors)
                return
            if ctype in ("text/plain", "text/html"):
                return  # the other alternative of the body
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        self.parsed.attachments.append(MailAttachment(filename, ctype, data))

    def text(self) -> str:
        if self.plain is not None:
            return self.plain.strip()
        return html_to_text(self.html) if self.html is not None else ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything Kirjuri reads from a message; notes problems instead of raising.

    The message is parsed once with `compat32`, which keeps headers as written and does not
    re-parse one on every access; the few headers Kirjuri reads are then parsed with
    `policy.default`'s header classes (RFC 2047 words, strict address lists), except those
    written in plain forms that read the same without them (plain ASCII subjects and
    addresses, see `plain_mailboxes`), and the Date header, which goes straight to the
    function its class calls.
    """
    parsed = ParsedEmail()
    try:
        tree = BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - keep the raw bytes whatever the parser thinks
        parsed.parse_errors.append(f"message could not be parsed ({type(exc).__name__})")
        return parsed
    for defect in {type(d).__name__ for p in tree.walk() for d in p.defects}:
        parsed.parse_errors.append(f"MIME: {defect}")
    ids = {name: _raw_headers(tree, name) for name in ("Message-ID", "In-Reply-To", "References")}
    parsed.message_id = _msg_id(ids["Message-ID"][0]) if ids["Message-ID"] else None
    parsed.in_reply_to = _msg_id(ids["In-Reply-To"][0]) if ids["In-Reply-To"] else None
    parsed.references = " ".join(ids["References"]).split()
    parsed.subject = _subject(tree, parsed.parse_errors)
    parsed.date = _date(tree, parsed.parse_errors)
    _addresses(tree, parsed)
    body = _Body(parsed)
    try:
        body.visit(tree)
    except Exception as exc:  # noqa: BLE001
        parsed.parse_errors.append(f"body could not be read ({type(exc).__name__})")
    parsed.body = body.text()
    return parsed
