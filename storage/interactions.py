"""Interactions (emails, calls, chats) with their participants, attachments and tags.

An interaction is written once, whole, by ingest; linking may later set its customer.
`dedup_key` makes a capture delivered twice (BCC and journal, a retried SMTP transaction)
one row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    any_,
    false,
    func,
    insert,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload
from sqlalchemy.sql import Select

from storage.base import Base, among_ids, table_of, utcnow, without_nul
from storage.errors import NotFound
from storage.search import (
    FTS,
    SearchQuery,
    Unindexed,
    estimated_matches,
    id_runs,
    matching_ids,
    resolved,
)

CHANNELS = ("email", "call", "chat")
FEW_MATCHES = 2000  # a search matching at most this many sorts its matches (`_search_page`)
COUNT_CAP = 20000  # totals are counted this far (beyond: "20000 or more", not exact)
# walked ids spanning at most this many times their number are asked for as one id range
# (splitting 7,500 ids into runs in Python took 4 ms of a 1% word's 25 ms search)
DENSE_RANGE = 4
MAX_CHUNK = 50000  # rows of the date index one step of a walk reads (`_walk`)


class Interaction(Base):
    """One captured email, call or chat, as it was received, and its link to a customer."""

    __tablename__ = "interactions"
    # the date index is the newest-first order itself, (occurred_at, id): PostgreSQL reads a
    # walk's chunk from it alone, with no sort and no visit to the table (SQLite's index on
    # occurred_at held the id already, as every SQLite index holds the rowid)
    __table_args__ = (Index("ix_interactions_occurred_at_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime] = mapped_column()
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    dedup_key: Mapped[str] = mapped_column(String(1100), unique=True)
    raw_blob: Mapped[str | None] = mapped_column(String(64), index=True)
    raw_size: Mapped[int] = mapped_column(Integer, default=0)
    raw_content_type: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    link_method: Mapped[str | None] = mapped_column(String(16))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    parse_errors: Mapped[list[str]] = mapped_column(default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)

    participants: Mapped[list[Participant]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan", order_by="Participant.id"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan", order_by="Attachment.id"
    )
    tags: Mapped[list[Tag]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan", order_by="Tag.id"
    )


class Participant(Base):
    """Someone an interaction names: sender, recipient, caller. `customer_id` if they are known."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320), index=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )

    interaction: Mapped[Interaction] = relationship(back_populates="participants")


class Attachment(Base):
    """A file that came with an interaction; its bytes are a blob."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str | None] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    blob: Mapped[str] = mapped_column(String(64), index=True)

    interaction: Mapped[Interaction] = relationship(back_populates="attachments")


class Tag(Base):
    """Something found in an interaction (e.g. a marketing ban statement), with its evidence."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    interaction: Mapped[Interaction] = relationship(back_populates="tags")


@dataclass(frozen=True)
class InteractionFilter:
    """What a list of interactions is narrowed to; `match` is a parsed full-text query."""

    customer_id: int | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    unlinked: bool | None = None
    match: SearchQuery | None = None
    naming: Sequence[tuple[str, str]] = ()
    tag: str | None = None


@dataclass
class NewInteraction:
    """One interaction to insert: its column values, participants and attachments (as dicts)."""

    values: dict[str, Any]
    participants: list[dict[str, Any]]
    attachments: list[dict[str, Any]]


SNIPPET_CHARS = 200  # of the body, shown in lists


@dataclass(frozen=True)
class ListedParticipant:
    """A participant as a list shows it."""

    role: str
    kind: str
    value: str
    display_name: str | None
    customer_id: int | None


@dataclass(frozen=True)
class Listed:
    """An interaction as lists and timelines show it: no full body, no raw original."""

    id: int
    channel: str
    direction: str
    occurred_at: datetime
    subject: str | None
    snippet: str
    customer_id: int | None
    link_method: str | None
    needs_review: bool
    participants: tuple[ListedParticipant, ...]
    attachment_count: int


_LISTED = select(
    Interaction.id,
    Interaction.channel,
    Interaction.direction,
    Interaction.occurred_at,
    Interaction.subject,
    func.substr(Interaction.body, 1, SNIPPET_CHARS),
    Interaction.customer_id,
    Interaction.link_method,
    Interaction.needs_review,
).where(among_ids(Interaction.id))
_PARTICIPANTS = (
    select(
        Participant.interaction_id,
        Participant.role,
        Participant.kind,
        Participant.value,
        Participant.display_name,
        Participant.customer_id,
    )
    .where(among_ids(Participant.interaction_id))
    .order_by(Participant.interaction_id, Participant.id)
)
_ATTACHMENT_COUNTS = (
    select(Attachment.interaction_id, func.count())
    .where(among_ids(Attachment.interaction_id))
    .group_by(Attachment.interaction_id)
)


def insert_interactions(session: Session, items: Sequence[NewInteraction]) -> list[int | None]:
    """Insert many interactions with their participants and attachments in three statements.

    Returns the new ids in the order given, None for an item whose dedup_key was stored
    already (by another process since it was checked: several SMTP processes may take the
    BCC and the journal copy of one message at the same moment). Such an item is skipped,
    not an error, so it cannot fail the rest of its batch.
    """
    if not items:
        return []
    table = table_of(Interaction)
    rows = session.execute(
        _insert_new(session, table, "dedup_key").returning(table.c.dedup_key, table.c.id),
        [_storable(table, item.values) for item in items],
    )
    by_key: dict[str, int] = {key: iid for key, iid in rows}
    ids = [by_key.get(item.values["dedup_key"]) for item in items]
    participants = [
        p | {"interaction_id": iid}
        for iid, item in zip(ids, items, strict=True)
        if iid is not None
        for p in item.participants
    ]
    attachments = [
        a | {"interaction_id": iid}
        for iid, item in zip(ids, items, strict=True)
        if iid is not None
        for a in item.attachments
    ]
    if participants:
        table = table_of(Participant)
        session.execute(insert(table), [_storable(table, p) for p in participants])
    if attachments:
        table = table_of(Attachment)
        session.execute(insert(table), [_storable(table, a) for a in attachments])
    return ids


# what a sender names freely, cut to its column's length: PostgreSQL refuses a longer value,
# and the mail or chat it came with must not fail to store for a name
_LABELS = ("display_name", "filename", "content_type", "raw_content_type")


def _storable(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` as both databases keep them: no NUL characters, labels cut to fit."""
    out = {name: without_nul(value) for name, value in values.items()}
    for name in _LABELS:
        value = out.get(name)
        length = getattr(table.c[name].type, "length", None) if name in table.c else None
        if isinstance(value, str) and length is not None and len(value) > length:
            out[name] = value[:length]
    return out


def _insert_new(session: Session, table: Table, unique: str) -> Any:
    """INSERT that skips rows whose `unique` column value exists (SQLite and PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[unique])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique])


def unreferenced_blobs(session: Session, names: Iterable[str]) -> set[str]:
    """Which of these blob names no interaction or attachment refers to."""
    wanted = set(names)
    if not wanted:
        return set()
    raw = session.scalars(select(Interaction.raw_blob).where(Interaction.raw_blob.in_(wanted)))
    attached = session.scalars(select(Attachment.blob).where(Attachment.blob.in_(wanted)))
    return wanted - set(raw) - set(attached)


def dedup_keys_stored(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """Which of these dedup keys are stored already, and under which interaction id."""
    rows = session.execute(
        select(Interaction.dedup_key, Interaction.id).where(Interaction.dedup_key.in_(list(keys)))
    )
    return {key: iid for key, iid in rows}


async def get_interaction(session: AsyncSession, interaction_id: int) -> Interaction:
    """One interaction with participants, attachments and tags loaded; raises NotFound."""
    found = await session.scalar(
        select(Interaction)
        .where(Interaction.id == interaction_id)
        .options(
            selectinload(Interaction.participants),
            selectinload(Interaction.attachments),
            selectinload(Interaction.tags),
        )
    )
    if found is None:
        raise NotFound("interaction", interaction_id)
    return found


def _naming(pairs: Sequence[tuple[str, str]]) -> Any:
    return Interaction.id.in_(
        select(Participant.interaction_id).where(
            or_(*[and_(Participant.kind == k, Participant.value == v) for k, v in pairs])
        )
    )


def about_subject(customer_id: int | None, pairs: Sequence[tuple[str, str]], mentioning: Any) -> Any:
    """The condition of interactions about one person: linked to their customer record, naming
    one of their identifiers as a participant, or (unlinked) mentioning their business ID
    (`mentioning`: ids from a full-text search, or None)."""
    conds: list[Any] = []
    if customer_id is not None:
        conds.append(Interaction.customer_id == customer_id)
    if pairs:
        conds.append(_naming(pairs))
    if mentioning is not None:
        conds.append(and_(Interaction.customer_id.is_(None), Interaction.id.in_(mentioning)))
    return or_(*conds) if conds else false()


def _where(flt: InteractionFilter) -> list[Any]:
    conds: list[Any] = []
    if flt.customer_id is not None and flt.naming:
        conds.append(or_(Interaction.customer_id == flt.customer_id, _naming(flt.naming)))
    elif flt.customer_id is not None:
        conds.append(Interaction.customer_id == flt.customer_id)
    elif flt.naming:
        conds.append(_naming(flt.naming))
    if flt.channel:
        conds.append(Interaction.channel == flt.channel)
    if flt.since:
        conds.append(Interaction.occurred_at >= flt.since)
    if flt.until:
        conds.append(Interaction.occurred_at < flt.until)
    if flt.unlinked is True:
        conds.append(Interaction.customer_id.is_(None))
    elif flt.unlinked is False:
        conds.append(Interaction.customer_id.is_not(None))
    if flt.tag:
        conds.append(Interaction.id.in_(select(Tag.interaction_id).where(Tag.kind == flt.tag)))
    return conds


def list_interactions(
    session: Session,
    flt: InteractionFilter,
    before: tuple[datetime, int] | None,
    limit: int,
) -> tuple[list[Listed], int, bool]:
    """Newest first: one page older than `before` (occurred_at, id), the total that match,
    and whether that total is exact (False: there are at least that many; see `COUNT_CAP`).
    Synchronous, for `Database.run_read`: a walk fetches thousands of ids, which costs 3 us
    each through the async SQLite driver and a tenth of that through plain sqlite3.

    The page's ids are chosen first and the rows read after. How the ids of a full-text
    search are found depends on how many interactions match (`_search_page`).
    """
    conds = _where(flt)
    page_conds = list(conds)
    if before is not None:
        page_conds.append(_older_than(session, before))
    if flt.match is None:
        total, exact = _capped_count(session, select(Interaction.id).where(*conds))
        ids = list(
            session.scalars(
                select(Interaction.id)
                .where(*page_conds)
                .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                .limit(limit)
            )
        )
    else:
        ids, total, exact = _search_page(session, flt.match, conds, page_conds, limit)
    return listed_by_id(session, ids), total, exact


def listed_by_id(session: Session, ids: Sequence[int]) -> list[Listed]:
    """These interactions as a list shows them, in the order of `ids`.

    Three Core statements (the rows with their snippet cut in the database, the participants,
    the attachment counts), not ORM objects: loading 50 interactions with their participants
    and attachments through the ORM took 8-15 ms, most of a search's time.
    """
    if not ids:
        return []
    conn = session.connection()
    wanted = {"ids": list(ids)}
    people: dict[int, list[ListedParticipant]] = {}
    for row in conn.execute(_PARTICIPANTS, wanted):
        people.setdefault(row[0], []).append(ListedParticipant(*row[1:]))
    attachments: dict[int, int] = {row[0]: row[1] for row in conn.execute(_ATTACHMENT_COUNTS, wanted)}
    found = {
        row[0]: Listed(
            id=row[0],
            channel=row[1],
            direction=row[2],
            occurred_at=row[3],
            subject=row[4],
            snippet=row[5] or "",
            customer_id=row[6],
            link_method=row[7],
            needs_review=bool(row[8]),
            participants=tuple(people.get(row[0], ())),
            attachment_count=attachments.get(row[0], 0),
        )
        for row in conn.execute(_LISTED, wanted)
    }
    return [found[i] for i in ids if i in found]


def listed(i: Interaction) -> Listed:
    """A loaded interaction (with its participants and attachments) as a list shows it."""
    return Listed(
        id=i.id,
        channel=i.channel,
        direction=i.direction,
        occurred_at=i.occurred_at,
        subject=i.subject,
        snippet=(i.body or "")[:SNIPPET_CHARS],
        customer_id=i.customer_id,
        link_method=i.link_method,
        needs_review=i.needs_review,
        participants=tuple(
            ListedParticipant(p.role, p.kind, p.value, p.display_name, p.customer_id) for p in i.participants
        ),
        attachment_count=len(i.attachments),
    )


def _capped_count(session: Session, query: Select[Any], cap: int | None = None) -> tuple[int, bool]:
    """How many rows `query` gives, counting no further than `cap` (default COUNT_CAP; beyond
    it the count is `cap` and not exact)."""
    cap = COUNT_CAP if cap is None else cap
    n = session.scalar(select(func.count()).select_from(query.limit(cap + 1).subquery())) or 0
    return (cap, False) if n > cap else (n, True)


def _search_page(
    session: Session, query: SearchQuery, conds: list[Any], page_conds: list[Any], limit: int
) -> tuple[list[int], int, bool]:
    """The ids of one page of a full-text search, newest first, and its total.

    The index knows which interactions match but not their dates, so:
    - a few matches (`_few_cap`): start from them and sort them by date. The sort keys are
      made unusable for an index, so neither database walks the date index checking every
      row for a rare word (PostgreSQL's planner does that when it guesses the matches are
      many: seconds at a million rows).
    - more: walk the date index newest first and keep the rows that match, until a page is
      full (`_walk`): the more common the word, the sooner.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    query = resolved(session, query)
    matches = matching_ids(query)
    cap = FEW_MATCHES
    if postgresql:
        everyone = session.scalar(select(func.max(Interaction.id))) or 0
        cap = _few_cap(everyone)
        guess = estimated_matches(session, query)
        if guess >= cap:
            # the planner's statistics say the matches are more than few: counting 'cap' of
            # them would visit as many rows (14 ms for a word in 1%, 80 ms in 10%), while a
            # walk needs few. The walk stops after five times the rows the guess says a page
            # needs, in case the guess was wrong
            needed = limit * everyone / guess
            ids = _walk(session, query, page_conds, limit, int(needed * 1.5), max(5000, int(5 * needed)))
            if len(ids) == limit:
                return _with_total(session, query, conds, ids, cap, False, limit)
    found, few = _capped_count(session, matches, cap)
    if few:
        # the subquery keeps its LIMIT: PostgreSQL then knows the matches are few. It gets
        # them as one array, found once, and looks each one up: with `IN (subquery)` its
        # planner hash-joined a rare word's matches against a scan of the whole date index,
        # which holds (occurred_at, id) (62 ms, against 4 ms for the look-ups)
        few_matches = matches.limit(cap + 1)
        in_matches = (
            Interaction.id == any_(func.array(few_matches.scalar_subquery()))
            if postgresql
            else Interaction.id.in_(few_matches)
        )
        total = found
        if conds:
            total = session.scalar(select(func.count(Interaction.id)).where(*conds, in_matches)) or 0
        sorted_matches = session.scalars(
            select(Interaction.id)
            .where(*page_conds, in_matches)
            .order_by(Unindexed(Interaction.occurred_at).desc(), Unindexed(Interaction.id).desc())
            .limit(limit)
        )
        return list(sorted_matches), total, True
    if postgresql:
        # counting further costs a table visit per match (70 ms for 10,000): "more than cap"
        found, exact = cap, False
        ids = _walk(session, query, page_conds, limit, int(limit * everyone / cap * 1.5))
    elif query.has_prefix:  # every count merges the prefix's lists again (0.1 s at 1M rows)
        found, exact = cap, False
        ids = _walk(session, query, page_conds, limit, 5000)  # each chunk merges once, too
    else:  # FTS5 counts 10,000 matches in a millisecond
        found, exact = _capped_count(session, matches)
        first = 500  # very common: a few hundred rows hold a page
        if exact:  # a known share of all interactions: the first chunk that likely holds a page
            everyone = session.scalar(select(func.max(Interaction.id))) or found
            first = int(limit * everyone / found * 1.5)
        ids = _walk(session, query, page_conds, limit, first)
    return _with_total(session, query, conds, ids, found, exact, limit)


def _with_total(
    session: Session,
    query: SearchQuery,
    conds: list[Any],
    ids: list[int],
    found: int,
    exact: bool,
    limit: int,
) -> tuple[list[int], int, bool]:
    """A walked page with its total: `found` (matches of the words, exact or a lower bound)
    without filters; with filters, counted exactly when the filtered rows are few enough to
    walk them all, else a lower bound (this page)."""
    if not conds:
        return ids, found, exact
    narrowed, small = _capped_count(session, select(Interaction.id).where(*conds), FEW_MATCHES * 2)
    if small:
        everything = _walk(session, query, conds, narrowed + 1, narrowed + 1)
        return ids, len(everything), True
    return ids, len(ids), len(ids) < limit


def _few_cap(everyone: int) -> int:
    """On PostgreSQL, how many matches are few enough to sort: looking up a match's date and
    checking a walked row cost about the same (4 us), so sorting m matches costs m and walking
    costs 50 * n / m checks; they cross near sqrt(50 n), and sorting is the safer side."""
    return max(FEW_MATCHES, min(20000, int(math.sqrt(60 * everyone))))


def _walk(
    session: Session,
    query: SearchQuery,
    page_conds: list[Any],
    limit: int,
    first: int,
    most: int | None = None,
) -> list[int]:
    """Up to `limit` ids of interactions meeting `page_conds` that match `query`, newest first,
    found by walking the date index in chunks: `first` rows, then as many as the share of
    matches so far says the rest of the page needs, with half again to spare (four times the
    chunk while none matched). With `most`, no more than about that many rows are walked."""
    out: list[int] = []
    chunk = max(100, min(first, MAX_CHUNK))
    walked = 0
    # FTS5 merges every term a prefix matches into one list each time it runs a query (0.1 s
    # for "lasku*" at a million rows): ask it once per chunk, over the chunk's whole id range
    one_range = session.get_bind().dialect.name == "sqlite" and query.has_prefix
    last: tuple[datetime, int] | None = None
    while len(out) < limit:
        conds = [*page_conds, _older_than(session, last)] if last is not None else page_conds
        ids, oldest = _chunk(session, conds, chunk)
        if not ids:
            break
        hits = set(session.connection().execute(_matching_among(query, ids, one_range)).scalars().all())
        out += [i for i in ids if i in hits]
        walked += len(ids)
        if len(ids) < chunk or (most is not None and walked >= most):
            break
        last = (oldest, ids[-1])
        wanted = (limit - len(out)) * walked * 3 // (2 * len(out)) if out else chunk * 4
        chunk = max(100, min(wanted, MAX_CHUNK, most - walked if most is not None else MAX_CHUNK))
    return out[:limit]


def _chunk(session: Session, conds: list[Any], n: int) -> tuple[list[int], datetime]:
    """The next `n` ids of the date index meeting `conds`, newest first, and the capture time
    of the last (where the next chunk starts). PostgreSQL sends the ids as one array, in the
    index's order (7,745 ids with the time: 2.4 ms, against 4.8 ms as rows; 3.0 ms as an
    `array_agg`, whose ORDER BY sorts them again)."""
    conn = session.connection()  # Core, not ORM, results: thousands of ids cost a tenth as much
    keys = (
        select(Interaction.id)
        .where(*conds)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(n)
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list(conn.execute(select(func.array(keys.scalar_subquery()))).scalar_one() or ())
    else:
        ids = list(conn.execute(keys).scalars().all())
    oldest = session.scalar(select(Interaction.occurred_at).where(Interaction.id == ids[-1])) if ids else None
    return ids, cast(datetime, oldest)


def _older_than(session: Session, last: tuple[datetime, int]) -> Any:
    """Rows after `last` (occurred_at, id) in newest-first order: after a page's cursor, or
    a walk's chunk. PostgreSQL gets a row comparison, which its date index answers as one
    range (the OR took 6 ms there)."""
    if session.get_bind().dialect.name == "postgresql":
        return tuple_(Interaction.occurred_at, Interaction.id) < tuple_(*last)
    return or_(
        Interaction.occurred_at < last[0],
        and_(Interaction.occurred_at == last[0], Interaction.id < last[1]),
    )


def _matching_among(query: SearchQuery, ids: Sequence[int], one_range: bool = False) -> Any:
    """Which of these ids match: between the smallest and the largest id when they are dense
    (the walk's usual case: ids rise with capture time) or `one_range`; else an indexed
    id-range query per run of nearby ids (`id_runs`), the stragglers by value."""
    lo, hi = min(ids), max(ids)
    if one_range or hi - lo < DENSE_RANGE * len(ids):
        return matching_ids(query).where(FTS.c.rowid.between(lo, hi))
    runs, stragglers = id_runs(ids)
    parts = [matching_ids(query).where(FTS.c.rowid.between(lo, hi)) for lo, hi in runs]
    if stragglers:
        parts.append(matching_ids(query).where(FTS.c.rowid.in_(stragglers)))
    return parts[0] if len(parts) == 1 else union_all(*parts)


async def link_unlinked(
    session: AsyncSession, customer_id: int, identifiers: Iterable[tuple[str, str]]
) -> list[int]:
    """Mark participants with these identifiers as the customer's, and link unlinked interactions.

    Interactions flagged for review (defective address headers) stay unlinked.
    Returns the ids of interactions that were linked now.
    """
    pairs = list(identifiers)
    if not pairs:
        return []
    match = or_(*[and_(Participant.kind == k, Participant.value == v) for k, v in pairs])
    await session.execute(
        update(Participant).where(match, Participant.customer_id.is_(None)).values(customer_id=customer_id)
    )
    ids = await _unlinked_among(session, select(Participant.interaction_id).where(match))
    owners: dict[int, list[tuple[int | None, str]]] = {iid: [] for iid in ids}
    if ids:
        rows = await session.execute(
            select(Participant.interaction_id, Participant.customer_id, Participant.kind).where(
                Participant.interaction_id.in_(ids), Participant.customer_id.is_not(None)
            )
        )
        for iid, cid, kind in rows:
            owners[iid].append((cid, kind))
    linked: list[int] = []
    for iid, known in owners.items():
        # only when the customer is the one and only known party: an interaction naming two
        # different customers is left for a person to decide
        if {cid for cid, _ in known} == {customer_id}:
            await session.execute(
                update(Interaction)
                .where(Interaction.id == iid)
                .values(customer_id=customer_id, link_method=known[0][1])
            )
            linked.append(iid)
    return linked


async def _unlinked_among(session: AsyncSession, candidates: Any) -> list[int]:
    """Which of these interactions are unlinked and not waiting for review."""
    found = await session.scalars(
        select(Interaction.id).where(
            Interaction.id.in_(candidates),
            Interaction.customer_id.is_(None),
            Interaction.needs_review.is_(False),
        )
    )
    return list(found.all())


async def link_mentioning(session: AsyncSession, customer_id: int, mentioning: Any) -> list[int]:
    """Link unlinked interactions among `mentioning` (ids from a full-text search for the
    customer's business ID) when none of their participants is a known customer.

    The same rule ingest applies to new mail; returns the ids linked now.
    """
    owned = select(Participant.interaction_id).where(Participant.customer_id.is_not(None))
    ids = await _unlinked_among(
        session, select(Interaction.id).where(Interaction.id.in_(mentioning), Interaction.id.not_in(owned))
    )
    if ids:
        await session.execute(
            update(Interaction)
            .where(Interaction.id.in_(ids))
            .values(customer_id=customer_id, link_method="business_id")
        )
    return ids
