"""Errors raised by the storage layer, translated from SQLAlchemy and OS errors at its boundary.

StorageError
 ├── NotFound       the row asked for does not exist
 ├── Conflict       a unique value is taken (e.g. an identifier belongs to another customer)
 ├── BadQuery       a search query cannot be understood (position and reason given)
 └── Unavailable    the database or blob store cannot be written or read right now
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error the storage layer raises."""


class NotFound(StorageError):
    """The row asked for does not exist."""

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key} not found")
        self.what = what
        self.key = key


class Conflict(StorageError):
    """A unique value is already taken."""


class BadQuery(StorageError):
    """A full-text query that cannot be parsed; the message says where and why."""


class Unavailable(StorageError):
    """The database or the blob store failed; the operation may succeed if tried again."""
