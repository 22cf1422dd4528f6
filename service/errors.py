"""Errors of the Kirjuri service. They carry no HTTP types; `service.api.problems` maps them.

KirjuriError
 ├── ConfigError        bad configuration (file, section, key named)
 ├── InvalidInput       a request or value a person sent is wrong (field named)
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


class AuthenticationFailed(KirjuriError):
    """No credentials, or credentials that are wrong or expired."""


class PermissionDenied(KirjuriError):
    """The caller is known but its role or scope does not allow this."""


class IngestFailed(KirjuriError):
    """A capture could not be stored durably. Temporary: the sender should try again."""
