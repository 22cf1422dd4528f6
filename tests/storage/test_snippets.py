"""Search snippets show the matched words, marked, wherever in a text they are.

On PostgreSQL the snippets are cut in Python from the stemmed query (`storage.highlight`),
with `ts_headline` for what that finds no match in: the words it marks must be the ones
PostgreSQL's own stemming matches. Runs on SQLite (FTS5 `snippet()`) and, in the PostgreSQL
run, on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage.engine import Database
from storage.interactions import insert_interactions
from storage.search import (
    HIGHLIGHT_CHARS,
    MARK_END,
    MARK_START,
    index_interactions,
    matched_snippets,
    parse_query,
    resolved,
)
from tests import postgres
from tests.conftest import stored_row

FILLER = "tämä on täytettä ja puhetta asiasta "
TEXTS = {
    "early": "Eräpäivä on huomenna, muistakaa maksaa lasku ajoissa.",
    "middle": FILLER * 40 + "Laskun eräpäivä siirtyy, laskuja on kaksi. " + FILLER * 40,
    # the word past the characters of a body the Python snippet looks at
    "far": FILLER * (HIGHLIGHT_CHARS // len(FILLER) + 10) + "eräpäivä viimein tässä.",
    "english": "The invoice is due tomorrow; invoices are sent monthly and invoicing is automatic.",
    "swedish": "Fakturan förfaller i morgon och fakturor skickas varje månad.",
    "negated": "Eräpäivä ja korko mainitaan tässä viestissä.",
    "participants": "Ei hakusanaa tekstissä lainkaan.",
}
PARTICIPANTS = {"participants": "Erkki Eräpäivä <erkki@example.fi>"}


@pytest.fixture
async def store(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Database, dict[str, int]]]:
    db = Database(database_url or f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    await db.open()

    def write(session: Any) -> dict[str, int]:
        items = [stored_row(f"s:{k}", channel="email", subject="", body=b) for k, b in TEXTS.items()]
        ids = [i for i in insert_interactions(session, items) if i is not None]
        index_interactions(
            session,
            [(iid, "", b, PARTICIPANTS.get(k, "")) for iid, (k, b) in zip(ids, TEXTS.items(), strict=True)],
        )
        return dict(zip(TEXTS, ids, strict=True))

    made = await db.run_write(write)
    yield db, made
    await db.close()


def marked(snippet: str) -> list[str]:
    return re.findall(re.escape(MARK_START) + "(.*?)" + re.escape(MARK_END), snippet)


async def snippets_of(db: Database, typed: str, ids: list[int]) -> dict[int, str]:
    query = parse_query(typed)
    return await db.run_read(lambda session: matched_snippets(session, query, ids))


async def test_the_matched_word_is_marked_wherever_it_is(store: tuple[Database, dict[str, int]]) -> None:
    db, made = store
    keys = ["early", "middle", "far", "negated"]
    found = await snippets_of(db, "eräpäivä", [made[k] for k in keys])
    assert set(found) == {made[k] for k in keys}
    for key in keys:
        snippet = found[made[key]]
        assert [w.lower() for w in marked(snippet)] == ["eräpäivä"], (key, snippet)
        assert len(snippet.split()) <= 20, (key, snippet)  # a few words, not the text
    assert found[made["middle"]].startswith("…") and found[made["middle"]].endswith("…")
    assert found[made["far"]].rstrip().endswith("tässä.")  # the end of the text: no "…"
    assert not found[made["early"]].startswith("…")


async def test_a_match_in_the_participants_still_gets_a_snippet(
    store: tuple[Database, dict[str, int]],
) -> None:
    db, made = store
    found = await snippets_of(db, "erkki", [made["participants"]])
    assert set(found) == {made["participants"]}


async def test_an_excluded_word_is_not_marked(store: tuple[Database, dict[str, int]]) -> None:
    db, made = store
    found = await snippets_of(db, "eräpäivä -maksaa", [made["negated"]])
    assert [w.lower() for w in marked(found[made["negated"]])] == ["eräpäivä"]
    found = await snippets_of(db, '"korko mainitaan" OR puuttuu', [made["negated"]])
    # (SQLite marks a phrase as one, PostgreSQL word by word)
    assert " ".join(marked(found[made["negated"]])).split() == ["korko", "mainitaan"]


# short texts, so PostgreSQL's own headline (its default options) shows every match in them
STEMMED = {
    "fi": "Laskun eräpäivä siirtyy, laskuja on kaksi ja laskin on rikki.",
    "en": "The invoice is due tomorrow; invoices are sent monthly and invoicing is automatic.",
    "sv": "Fakturan förfaller i morgon och fakturor skickas varje månad.",
}


HEADLINE = "SELECT ts_headline(language, :body, CAST(:q AS tsquery)) FROM interaction_fts WHERE rowid = :id"


@pytest.mark.skipif(not postgres.wanted(), reason="stemming is PostgreSQL's; FTS5 matches words as written")
@pytest.mark.parametrize(
    ("typed", "key", "words"),
    [
        ("lasku", "fi", ["Laskun", "laskuja"]),
        ("lasku*", "fi", ["Laskun", "laskuja"]),
        ("eräpäivä laskuja", "fi", ["Laskun", "eräpäivä", "laskuja"]),
        ("invoice", "en", ["invoice", "invoices", "invoicing"]),
        ("faktura", "sv", ["fakturor"]),  # Swedish stems "fakturan" to itself
    ],
)
async def test_postgresql_marks_the_inflected_forms_its_own_headline_marks(
    tmp_path: Path, database_url: str, typed: str, key: str, words: list[str]
) -> None:
    """The snippet marks what PostgreSQL's stemming matches: the same words as its own
    `ts_headline` marks in the same text."""
    db = Database(database_url)
    await db.open()
    try:

        def write(session: Any) -> int:
            (iid,) = insert_interactions(
                session, [stored_row("s", channel="email", subject="", body=STEMMED[key])]
            )
            assert iid is not None
            index_interactions(session, [(iid, "", STEMMED[key], "")])
            return iid

        iid = await db.run_write(write)
        found = await snippets_of(db, typed, [iid])
        assert marked(found[iid]) == words

        def headline(session: Any) -> str:
            query = resolved(session, parse_query(typed))
            return session.scalar(
                text(HEADLINE),
                {"body": STEMMED[key], "q": query.stemmed, "id": iid},
            )

        assert re.findall(r"<b>(.*?)</b>", await db.run_read(headline)) == words
    finally:
        await db.close()
