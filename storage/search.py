"""Full-text search over interactions: the query language people type, and the index.

Both databases keep a table `interaction_fts` whose rowid is the interaction id. On SQLite it
is an FTS5 table (subject, body, participants) whose tokenizer is `unicode61` with diacritics
kept, so Finnish and Swedish letters (ä, ö, å) are letters of a word, fold case (Ä = ä) and
stay distinct from a and o. On PostgreSQL it holds a `document` tsvector under a GIN index:
the text stemmed in its language (`finnish`, `swedish` or `english`, guessed from its common
words by `guess_language`), so "lasku" finds "laskun" and "laskuja". A query term is stemmed
all three ways and matches a document in any of them.

Query language, parsed here and never handed raw to FTS5 (so no input can be an FTS5 syntax
error or inject column filters):
  word          must appear          "two words"   phrase
  word*         prefix (lasku*)      a OR b        either
  -word         must not appear      alice@example.fi  matched as the phrase alice example fi

A parsed query (`SearchQuery`) becomes an FTS5 MATCH expression or a PostgreSQL tsquery when
the statement is compiled for its database (`matching_ids`), so callers never say which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Integer, String, bindparam, column, func, literal_column, select, table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import DateTime, NullType

from storage.base import IdList, among_ids, without_nul
from storage.errors import BadQuery
from storage.highlight import candidate_words, cut_snippet, tsquery_lexemes

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

    def tsquery(self, param: Callable[[str], str]) -> str:
        """This term as a PostgreSQL tsquery: stemmed in each language, any of them matching
        (`param` binds a value and gives its placeholder)."""
        value = self.text
        if self.prefix:  # to_tsquery's own syntax: a quoted literal, then :* for the prefix
            value = "'" + self.text.replace("\\", "\\\\").replace("'", "''") + "':*"
        placeholder = param(value)
        fn = "to_tsquery" if self.prefix else "phraseto_tsquery"
        stemmed = ", ".join(f"{fn}('{cfg}', {placeholder})" for cfg in LANGUAGES)
        # the distinct stemmings ORed: most words stem alike in two or three languages, and
        # 'x' | 'x' | 'x' made the planner guess three times the matches (and walk less
        # than a page needed) and every row's check test the same lexeme three times
        return (
            "coalesce(CAST((SELECT string_agg(DISTINCT '(' || CAST(q AS text) || ')', ' | ') "
            f"FROM unnest(ARRAY[{stemmed}]) AS q WHERE numnode(q) > 0) AS tsquery), CAST('' AS tsquery))"
        )


LANGUAGES = ("finnish", "swedish", "english")  # PostgreSQL text-search configurations


@dataclass(frozen=True)
class SearchQuery:
    """A parsed query: all of `groups` (each: any of its terms) and none of `negatives`."""

    groups: tuple[tuple[Term, ...], ...]
    negatives: tuple[Term, ...]
    # PostgreSQL: the tsquery the terms stem to, once `resolved` has asked the server
    stemmed: str | None = None
    # SQLite: whether `resolved` has replaced prefix terms by the indexed words they stand for
    expanded: bool = False
    # the database `resolved` made it ready for ("sqlite", "postgresql"); None: not resolved
    resolved_on: str | None = None

    @property
    def has_prefix(self) -> bool:
        """Whether a term is a prefix (FTS5 then merges the lists of every term it matches,
        each time it runs the query)."""
        return any(t.prefix for t in (*self.negatives, *(t for g in self.groups for t in g)))

    def fts5(self) -> str:
        """The SQLite FTS5 MATCH expression."""
        expr = " AND ".join(
            "(" + " OR ".join(t.fts() for t in g) + ")" if len(g) > 1 else g[0].fts() for g in self.groups
        )
        for term in self.negatives:
            expr = f"({expr}) NOT {term.fts()}"
        return expr

    def tsquery(self, param: Callable[[str], str]) -> str:
        """The PostgreSQL tsquery expression (SQL text whose values `param` binds)."""
        if self.stemmed is not None:
            return f"CAST({param(self.stemmed)} AS tsquery)"
        expr = " && ".join("(" + " || ".join(t.tsquery(param) for t in g) + ")" for g in self.groups)
        for term in self.negatives:
            expr = f"({expr}) && !!{term.tsquery(param)}"
        return expr


def _text_binder(values: dict[str, str]) -> Callable[[str], str]:
    """A `tsquery` param function for a `text()` statement: each value into `values`."""

    def param(value: str) -> str:
        name = f"w{len(values)}"
        values[name] = value
        return f":{name}"

    return param


def _binder(compiler: SQLCompiler, **kw: Any) -> Callable[[str], str]:
    """A `tsquery` param function binding each value into the statement being compiled."""
    return lambda value: compiler.process(bindparam(None, value, type_=String, unique=True), **kw)


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


def parse_query(query: str) -> SearchQuery:
    """Turn what a person typed into a safe search (see the module docstring).

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
    return SearchQuery(tuple(tuple(g) for g in groups), tuple(negatives))


FTS = table("interaction_fts", column("rowid", Integer), column("document"))
_INTERACTIONS = table("interactions", column("id", Integer), column("subject"), column("body"))


class Matches(ColumnElement[bool]):
    """`interaction_fts` rows matching a query: FTS5 MATCH or tsvector @@ tsquery, for a
    query not `resolved` (its statements are compiled anew each time; see `matches`).

    Untyped on purpose: SQLite renders a Boolean condition as `… = 1`, and FTS5 only takes
    a bare MATCH as its constraint."""

    type = NullType()  # type: ignore[assignment]
    inherit_cache = False

    def __init__(self, query: SearchQuery) -> None:
        self.query = query


@compiles(Matches)
def _match_fts5(element: Matches, compiler: SQLCompiler, **kw: Any) -> str:
    param = compiler.process(bindparam(None, element.query.fts5(), type_=String, unique=True), **kw)
    return f"interaction_fts MATCH {param}"


@compiles(Matches, "postgresql")
def _match_tsquery(element: Matches, compiler: SQLCompiler, **kw: Any) -> str:
    return f"interaction_fts.document @@ ({element.query.tsquery(_binder(compiler, **kw))})"


class _ResolvedMatches(FunctionElement[Any]):
    """`Matches` for a `resolved` query, whose whole expression is one bound value (the FTS5
    MATCH text, or the stemmed tsquery): its only argument, so SQLAlchemy caches the compiled
    statements it is in and binds each search's value (compiling them anew took 3-4 ms of a
    search of 20-25 ms)."""

    type = NullType()  # type: ignore[assignment]
    inherit_cache = True
    name = "kirjuri_matches"

    def __init__(self, query: SearchQuery) -> None:
        self.dialect = query.resolved_on
        value = query.stemmed if query.resolved_on == "postgresql" else query.fts5()
        super().__init__(bindparam(None, value, type_=String, unique=True))


def _resolved_argument(element: _ResolvedMatches, compiler: SQLCompiler, **kw: Any) -> str:
    if element.dialect != compiler.dialect.name:
        raise CompileError(f"a search resolved for {element.dialect} compiled for {compiler.dialect.name}")
    (param,) = element.clauses.clauses
    return compiler.process(param, **kw)


@compiles(_ResolvedMatches)
def _resolved_fts5(element: _ResolvedMatches, compiler: SQLCompiler, **kw: Any) -> str:
    return f"interaction_fts MATCH {_resolved_argument(element, compiler, **kw)}"


@compiles(_ResolvedMatches, "postgresql")
def _resolved_tsquery(element: _ResolvedMatches, compiler: SQLCompiler, **kw: Any) -> str:
    return f"interaction_fts.document @@ (CAST({_resolved_argument(element, compiler, **kw)} AS tsquery))"


def matches(query: SearchQuery) -> ColumnElement[Any]:
    """The condition that an `interaction_fts` row matches the query."""
    return _ResolvedMatches(query) if query.resolved_on is not None else Matches(query)


class Unindexed(FunctionElement[Any]):
    """A column as a sort key no index can provide (SQLite `+col`, PostgreSQL `col + 0`), so
    the planner starts from the other conditions instead of walking an index in order. The
    column is its argument, so statements with it are cached like any other."""

    inherit_cache = True
    name = "kirjuri_unindexed"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


def _unindexed_column(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses.clauses
    return compiler.process(column, **kw)


@compiles(Unindexed)
def _unindexed_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + _unindexed_column(element, compiler, **kw)


@compiles(Unindexed, "postgresql")
def _unindexed_postgresql(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    zero = "interval '0 s'" if isinstance(getattr(element.type, "impl", element.type), DateTime) else "0"
    return f"({_unindexed_column(element, compiler, **kw)} + {zero})"


RUN_GAP = 1000  # ids further apart than this are asked for in separate id ranges
MAX_RUNS = 20  # id ranges asked for at once; ids outside them are asked for by value


def id_runs(ids: Sequence[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """The id ranges of the largest runs of nearby ids (at most MAX_RUNS), and the ids left.

    Ids rise with capture time, so the interactions of one stretch of time are a few runs:
    the index answers an id range with one seek, where it runs a whole query per listed id.
    """
    ordered = sorted(ids)
    if not ordered:
        return [], []
    runs: list[list[int]] = [[ordered[0]]]
    for i in ordered[1:]:
        if i - runs[-1][-1] > RUN_GAP:
            runs.append([])
        runs[-1].append(i)
    runs.sort(key=len, reverse=True)
    return [(r[0], r[-1]) for r in runs[:MAX_RUNS]], [i for r in runs[MAX_RUNS:] for i in r]


def resolved(session: Session, query: SearchQuery) -> SearchQuery:
    """The query made ready for the database once per search, so each statement that uses it
    is cheaper: resolve it before a page and its snippets, and pass the result to both.

    - PostgreSQL: its terms stemmed, so the statements carry a constant tsquery (planning
      one took 3.6 ms with the stemming calls in it and 1 ms without).
    - SQLite: each prefix term replaced by the indexed words it stands for (`_expanded`).
    """
    dialect = session.get_bind().dialect.name
    if query.resolved_on == dialect:
        return query
    if dialect == "postgresql":
        values: dict[str, str] = {}
        # text, not a compiled construct: its SQL depends only on the query's shape, so
        # SQLAlchemy caches it (compiling the stemming afresh was 10% of a search)
        sql = f"SELECT CAST(({query.tsquery(_text_binder(values))}) AS text)"
        stemmed = session.scalar(text(sql), values) or ""
        return replace(query, stemmed=stemmed, resolved_on=dialect)
    if not query.has_prefix:
        return replace(query, resolved_on=dialect)
    groups = tuple(tuple(w for t in g for w in _expanded(session, t)) for g in query.groups)
    negatives = tuple(w for t in query.negatives for w in _expanded(session, t))
    return replace(query, groups=groups, negatives=negatives, expanded=True, resolved_on=dialect)


MIN_EXPANDED_PREFIX = 4  # shorter prefixes stay prefixes (FTS5 keeps an index of 3-letter ones)
MAX_EXPANSION = 64  # a prefix that stands for more words than this stays a prefix
_ONE_WORD = re.compile(r"\w+", re.UNICODE)


def _expanded(session: Session, term: Term) -> tuple[Term, ...]:
    """SQLite: the words of the index a prefix term stands for, as plain terms.

    FTS5 answers a prefix query by merging the lists of every word the prefix matches, each
    time the query runs (0.1 s for "lasku*" at a million interactions: a page and its
    snippets ran it several times); the same words ORed take a few milliseconds per id
    range. The words come from `interaction_fts_vocab` (migration 0009), which reads them
    from the index (60 ms for "lasku*", whose eight words are in 95% of a million texts).
    A term that is not a prefix of one word of at least MIN_EXPANDED_PREFIX letters, or
    that stands for more than MAX_EXPANSION words or for none, is kept as it is.
    """
    folded = term.text.lower()
    if not term.prefix or len(folded) < MIN_EXPANDED_PREFIX or not _ONE_WORD.fullmatch(folded):
        return (term,)
    words = list(
        session.scalars(
            text("SELECT term FROM interaction_fts_vocab WHERE term >= :low AND term <= :high LIMIT :n"),
            {"low": folded, "high": folded + "\U0010ffff", "n": MAX_EXPANSION + 1},
        )
    )
    if not words or len(words) > MAX_EXPANSION:
        return (term,)
    return tuple(Term(w, negated=term.negated) for w in words)


def estimated_matches(session: Session, query: SearchQuery) -> float:
    """PostgreSQL: the planner's estimate of how many interactions match (EXPLAIN, not run).
    A `text()` statement: for a resolved query it is the same each time, so it is compiled
    once (compiling the select to prefix it with EXPLAIN took 1 ms of every search)."""
    values: dict[str, str] = {}
    where = query.tsquery(_text_binder(values))
    sql = f"EXPLAIN (FORMAT JSON) SELECT rowid FROM interaction_fts WHERE document @@ ({where})"
    raw = session.scalar(text(sql), values)
    plan: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else cast(list[dict[str, Any]], raw)
    return float(plan[0]["Plan"]["Plan Rows"])


def matching_ids(query: SearchQuery) -> Any:
    """A selectable of the ids (column `rowid`) of interactions matching a parsed query."""
    return select(FTS.c.rowid).where(matches(query))


MARK_START, MARK_END = "\x02", "\x03"


class _Headline(FunctionElement[str]):
    """PostgreSQL `ts_headline` of subject and body for a `resolved` query, in the row's
    language. The stemmed tsquery is its argument, so the statement is cached."""

    type = String()
    inherit_cache = True
    name = "kirjuri_headline"

    def __init__(self, query: SearchQuery) -> None:
        if query.stemmed is None:
            raise ValueError("a headline needs the query resolved (stemmed) first")
        super().__init__(bindparam(None, query.stemmed, type_=String, unique=True))


@compiles(_Headline, "postgresql")
def _headline(element: _Headline, compiler: SQLCompiler, **kw: Any) -> str:
    options = f'StartSel="{MARK_START}", StopSel="{MARK_END}", MaxWords=16, MinWords=8, ShortWord=2'
    (stemmed,) = element.clauses.clauses
    return (
        "ts_headline(interaction_fts.language, coalesce(interactions.subject, '') || ' — ' || "
        f"coalesce(interactions.body, ''), CAST({compiler.process(stemmed, **kw)} AS tsquery), '{options}')"
    )


def matched_snippets(session: Session, query: SearchQuery, ids: Sequence[int]) -> dict[int, str]:
    """For these interactions, a few words around where the query matched, with each matched
    word between MARK_START and MARK_END (FTS5 `snippet()`; on PostgreSQL cut in Python by
    `storage.highlight` from the stemmed query, or `ts_headline` in the interaction's language
    where that finds no match)."""
    if not ids:
        return {}
    query = resolved(session, query)
    if session.get_bind().dialect.name != "postgresql":
        # a prefix query by id range, not `rowid IN (…)`: FTS5 runs the whole query once per
        # listed id, and merges every matching term's list each time (8 s for 50 "lasku*")
        runs, stragglers = id_runs(ids) if query.has_prefix else ([], list(ids))
        parts = [FTS.c.rowid.between(lo, hi) for lo, hi in runs]
        parts += [FTS.c.rowid.in_(stragglers)] if stragglers else []
        snippet = func.snippet(literal_column("interaction_fts"), -1, MARK_START, MARK_END, "…", 16)
        wanted = set(ids)
        out: dict[int, str] = {}
        for part in parts:
            rows = session.execute(select(FTS.c.rowid, snippet).where(matches(query), part))
            out |= {rowid: found for rowid, found in rows if rowid in wanted}
        return out
    lexemes = tsquery_lexemes(query.stemmed or "")
    texts = []
    for rowid, language, subject, body in session.execute(_HIGHLIGHT_TEXTS, {"ids": list(ids)}):
        whole = f"{subject} — {body or ''}" if subject else body or ""
        texts.append((rowid, language, whole, candidate_words(whole, lexemes)))
    asked = sorted({(language, w) for _, language, _, found in texts for _, _, w in found})
    stems: dict[tuple[str, str], frozenset[str]] = {}
    if asked:
        words = {"languages": [lang for lang, _ in asked], "words": [w for _, w in asked]}
        # a tsvector's text ('faktur':1) reads as a query's, its lexemes quoted
        stems = {
            (lang, w): tsquery_lexemes(vector or "").exact
            for lang, w, vector in session.execute(_STEMS, words)
        }
    out = {}
    for rowid, language, whole, found in texts:
        hits = [(a, b) for a, b, w in found if any(map(lexemes.matches, stems.get((language, w), ())))]
        if hits:
            out[rowid] = cut_snippet(whole, hits, MARK_START, MARK_END)
    rest = [i for i in ids if i not in out]
    if rest:  # matched where Python does not look (participants, an address): the server's way
        rows = session.execute(
            select(FTS.c.rowid, _Headline(query))
            .select_from(FTS.join(_INTERACTIONS, _INTERACTIONS.c.id == FTS.c.rowid))
            .where(among_ids(FTS.c.rowid)),
            {"ids": rest},
        )
        out |= {rowid: headline for rowid, headline in rows}
    return out


HIGHLIGHT_CHARS = 20000  # of a body, searched for a snippet in Python; beyond it ts_headline
# each (configuration, word) stemmed as the index stems it
_STEMS = text(
    "SELECT w.language, w.word, CAST(to_tsvector(CAST(w.language AS regconfig), w.word) AS text) "
    "FROM unnest(:languages, :words) AS w(language, word)"
).bindparams(
    bindparam("languages", type_=postgresql.ARRAY(String)), bindparam("words", type_=postgresql.ARRAY(String))
)
_HIGHLIGHT_TEXTS = text(
    "SELECT interaction_fts.rowid, CAST(interaction_fts.language AS text), interactions.subject, "
    f"left(interactions.body, {HIGHLIGHT_CHARS}) FROM interaction_fts "
    "JOIN interactions ON interactions.id = interaction_fts.rowid WHERE interaction_fts.rowid = ANY(:ids)"
).bindparams(bindparam("ids", type_=IdList()))


def index_interactions(session: Session, rows: Sequence[tuple[int, str, str, str]]) -> None:
    """Add new interactions' searchable text (id, subject, body, participants) in one statement."""
    if not rows:
        return
    rows = [(i, without_nul(s), without_nul(b), without_nul(p)) for i, s, b, p in rows]
    if session.get_bind().dialect.name != "postgresql":
        session.execute(
            text("INSERT INTO interaction_fts(rowid, subject, body, participants) VALUES (:id, :s, :b, :p)"),
            [{"id": i, "s": s, "b": b, "p": p} for i, s, b, p in rows],
        )
        return
    # at most 200,000 characters of a body: a tsvector holds 1 MB, and a longer text must not
    # make its mail fail to store
    session.execute(
        text(
            "INSERT INTO interaction_fts(rowid, subject, participants, language, document) "
            "VALUES (:id, :s, :p, CAST(:lang AS regconfig), to_tsvector(CAST(:lang AS regconfig), "
            "left(:s, 2000) || ' ' || left(:b, 200000) || ' ' || left(:p, 20000)))"
        ),
        [{"id": i, "s": s, "b": b, "p": p, "lang": guess_language(f"{s} {b}")} for i, s, b, p in rows],
    )


_COMMON_WORDS = {
    "finnish": set(
        "ja on ei että se hän tämä ole olen oli ovat mutta kun jos niin myös sen te me minä mitä "
        "kiitos hei terveisin voi voisitte laskun lasku teille meille tai vielä nyt kuin".split()
    ),
    "swedish": set(
        "och är att det som en ett på för med inte jag vi ni har till av om tack hej vänliga "
        "hälsningar kan ska den de där här nu eller fakturan faktura".split()
    ),
    "english": set(
        "the and is to of in for that you we please thanks this with on are be it not have "
        "regards dear will can your our from invoice hello".split()
    ),
}


def guess_language(content: str) -> str:
    """The text-search configuration of a text's language: whichever of Finnish, Swedish and
    English has the most of its common words in the first 2,000 words (Finnish when none)."""
    words = re.findall(r"[^\W\d_]+", content[:20000].lower())[:2000]
    counts = {lang: sum(w in common for w in words) for lang, common in _COMMON_WORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > 0 else "finnish"


def replace_body_text(session: Session, interaction_id: int, body: str) -> None:
    """Make a stored interaction's body (a call's transcript) its text and its searchable text."""
    body = without_nul(body)
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
    the older ones until segments are merged. It rewrites the whole index: 0.6-0.9 s at
    100,000 interactions. (SQLite 3.42's 'secure-delete' option removes them in place, but
    tried with SQLite 3.51 it made deleting 10,000 documents take 11 s instead of 0.4 s.)
    PostgreSQL deletes index entries with their rows (VACUUM reclaims the space): nothing to do.
    """
    if session.get_bind().dialect.name != "postgresql":
        session.execute(text("INSERT INTO interaction_fts(interaction_fts) VALUES ('optimize')"))
