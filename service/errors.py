"""Errors of the Kirjuri service. They carry no HTTP types; `service.api.problems` maps them.

KirjuriError
 ├── ConfigError        bad configuration (file, section, key named)
 ├── InvalidInput       a request or value a person sent is wrong (field named)
 │    ├── UnsupportedFormat  a file of a kind Kirjuri does not take (accepted kinds named)
 │    ├── Unprocessable      the right kind of file, but empty, truncated or undecodable
 │    └── TooLarge           over a configured size limit
 ├── AuthenticationFailed  no or wrong credentials
 ├── PermissionDenied   the credentials are right but the role is not enough
 └── IngestFailed       a capture could not be stored durably; the sender should retry
"""

from __future__ import annotations


class KirjuriError(Exception):
    """Root of every error the service raises on purpose."""


class ConfigError(KirjuriError):
    """The configuration is not usable; the message names the file, section and key."""


class InvalidInput(KirjuriError):
    """Input from a person or system is wrong; `field` names what, when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedFormat(InvalidInput):
    """A file of a kind Kirjuri does not accept; the message names the kinds it does."""


class Unprocessable(InvalidInput):
    """A file of an accepted kind that cannot be used: empty, truncated or undecodable."""


class TooLarge(InvalidInput):
    """Input over a configured size limit; the message names the limit."""


class AuthenticationFailed(KirjuriError):
    """No credentials, or credentials that are wrong or expired."""


class PermissionDenied(KirjuriError):
    """The caller is known but its role or scope does not allow this."""


class IngestFailed(KirjuriError):
    """A capture could not be stored durably. Temporary: the sender should try again."""
