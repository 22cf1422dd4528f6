"""The search query language: what people type becomes a safe FTS5 expression or a clear error."""

from __future__ import annotations

import pytest

from storage.errors import BadQuery
from storage.search import parse_query


@pytest.mark.parametrize(
    ("typed", "fts"),
    [
        ("lasku", '"lasku"'),
        ("lasku*", '"lasku" *'),
        ('"laskun numero"', '"laskun numero"'),
        ("a OR b c", '("a" OR "b") AND "c"'),
        ("a -b", '("a") NOT "b"'),
        ('a -"b c"', '("a") NOT "b c"'),
        ("aino@example.fi", '"aino@example.fi"'),
        ('say "hi', None),
        ("NEAR(a b)", '"NEAR(a" AND "b)"'),
        ("subject:x", '"subject:x"'),
    ],
)
def test_typed_queries(typed: str, fts: str | None) -> None:
    if fts is None:
        with pytest.raises(BadQuery, match="unclosed quote"):
            parse_query(typed)
    else:
        assert parse_query(typed).fts5() == fts
