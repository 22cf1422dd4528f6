"""Full-text search over interactions: the query language people type, and the index.

SQLite keeps an FTS5 table `interaction_fts` (subject, body, participants) whose rowid is the
interaction id. Its tokenizer is `unicode61` with diacritics kept, so Finnish and Swedish
letters (ä, ö, å) are letters of a word, fold case (Ä = ä) and stay distinct from a and o.

Query language, parsed here and never handed raw to FTS5 (so no input can be an FTS5 syntax
error or inject column filters):
  word          must appear          "two words"   phrase
  word*         prefix (lasku*)      a OR b        either
  -word         must not appear      alice@example.fi  matched as the phrase alice example fi
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, bindparam, column, text
from sqlalchemy.orm import Session

from storage.errors import BadQuery

MAX_QUERY_CHARS = 500
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class Term:
    """One searched word or phrase."""

    text: str
    prefix: bool = False
    negated: bool = False

    def fts(self) -> str:
        quoted = '"' + self.text.replace('"', '""') + '"'
        return quoted + " *" if self.prefix else quoted


def _tokens(query: str) -> list[tuple[str, bool]]:
    """Split into (token, was_quoted); raises BadQuery on an unclosed quote."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        neg = ""
        if ch == "-" and i + 1 < len(query) and query[i + 1] == '"':
            neg, i = "-", i + 1
            ch = '"'
        if ch == '"':
            end = query.find('"', i + 1)
            if end == -1:
                raise BadQuery(f"unclosed quote at character {i + 1} of the query")
            out.append((neg + query[i + 1 : end], True))
            i = end + 1
            continue
        j = i
        while j < len(query) and not query[j].isspace() and query[j] != '"':
            j += 1
        out.append((query[i:j], False))
        i = j
    return out


def parse_query(query: str) -> str:
    """Turn what a person typed into a safe FTS5 MATCH expression.

    Raises BadQuery saying what is wrong: empty, too long, an unclosed quote, a term with no
    letters or digits, OR without a term on both sides, or nothing but exclusions.
    """
    query = query.strip()
    if not query:
        raise BadQuery("the search query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise BadQuery(f"the search query is longer than {MAX_QUERY_CHARS} characters")
    groups: list[list[Term]] = []  # AND of ORs
    negatives: list[Term] = []
    pending_or = False
    for raw, quoted in _tokens(query):
        if not quoted and raw == "OR":
            if not groups or pending_or:
                raise BadQuery("OR needs a search term on both sides")
            pending_or = True
            continue
        negated = raw.startswith("-") and len(raw) > 1
        body = raw[1:] if negated else raw
        prefix = not quoted and body.endswith("*")
        body = body.rstrip("*") if prefix else body
        if not _WORD.search(body):
            raise BadQuery(f"{raw!r} has no letters or digits to search for")
        term = Term(body, prefix=prefix, negated=negated)
        if negated:
            if pending_or:
                raise BadQuery("OR cannot join an excluded term")
            negatives.append(term)
        elif pending_or:
            groups[-1].append(term)
            pending_or = False
        else:
            groups.append([term])
    if pending_or:
        raise BadQuery("OR needs a search term on both sides")
    if not groups:
        raise BadQuery("a search needs at least one term that is not excluded")
    expr = " AND ".join(
        "(" + " OR ".join(t.fts() for t in g) + ")" if len(g) > 1 else g[0].fts() for g in groups
    )
    for term in negatives:
        expr = f"({expr}) NOT {term.fts()}"
    return expr


def matching_ids(expression: str) -> Any:
    """A selectable of interaction ids matching a parsed expression (see `parse_query`)."""
    return (
        text("SELECT rowid FROM interaction_fts WHERE interaction_fts MATCH :fts_q")
        .bindparams(fts_q=expression)
        .columns(column("rowid", Integer))
    )


MARK_START, MARK_END = "\x02", "\x03"


def matched_snippets(session: Session, expression: str, ids: Sequence[int]) -> dict[int, str]:
    """For these interactions, a few words around where the parsed expression matched, with
    each matched word between MARK_START and MARK_END (FTS5 `snippet()`, subject or body)."""
    if not ids:
        return {}
    rows = session.execute(
        text(
            "SELECT rowid, snippet(interaction_fts, -1, :a, :b, '…', 16) FROM interaction_fts "
            "WHERE interaction_fts MATCH :q AND rowid IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"a": MARK_START, "b": MARK_END, "q": expression, "ids": list(ids)},
    )
    return {rowid: snippet for rowid, snippet in rows}


def index_interactions(session: Session, rows: Sequence[tuple[int, str, str, str]]) -> None:
    """Add new interactions' searchable text (id, subject, body, participants) in one statement."""
    if not rows:
        return
    session.execute(
        text("INSERT INTO interaction_fts(rowid, subject, body, participants) VALUES (:id, :s, :b, :p)"),
        [{"id": i, "s": s, "b": b, "p": p} for i, s, b, p in rows],
    )


def replace_body_text(session: Session, interaction_id: int, body: str) -> None:
    """Make a stored interaction's body (a call's transcript) its text and its searchable text."""
    session.execute(
        text("UPDATE interactions SET body = :b WHERE id = :id"), {"b": body, "id": interaction_id}
    )
    old = session.execute(
        text("SELECT subject, participants FROM interaction_fts WHERE rowid = :id"), {"id": interaction_id}
    ).first()
    session.execute(text("DELETE FROM interaction_fts WHERE rowid = :id"), {"id": interaction_id})
    subject, participants = (old[0], old[1]) if old is not None else ("", "")
    index_interactions(session, [(interaction_id, subject or "", body, participants or "")])


def unindex_interactions(session: Session, ids: Sequence[int]) -> None:
    """Delete interactions' searchable text (the terms stay in older index segments until
    `purge_deleted_terms`)."""
    if ids:
        session.execute(
            text("DELETE FROM interaction_fts WHERE rowid IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": list(ids)},
        )


def purge_deleted_terms(session: Session) -> None:
    """Merge the full-text index into one segment, which drops every deleted document's terms.

    FTS5 records a deletion as a marker in a new segment and leaves the document's terms in
    the older ones until segments are merged (SQLite 3.42's 'secure-delete' option removes
    them at once; the SQLite of this Python is 3.40). Costs about a second per 100,000 mails.
    """
    session.execute(text("INSERT INTO interaction_fts(interaction_fts) VALUES ('optimize')"))
