"""Fixtures for tests that run `kirjuri` as an operator does (see test_cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_cli import Server


@pytest.fixture
def server(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A `kirjuri serve` to start; on the PostgreSQL run every command it and the tests run
    uses this test's database (KIRJURI_STORAGE_URL in the environment they inherit)."""
    if database_url:
        monkeypatch.setenv("KIRJURI_STORAGE_URL", database_url)
    s = Server(tmp_path / "data")
    yield s
    s.kill()
