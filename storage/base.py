"""Declarative base and the column types every table shares.

Times are timezone-aware UTC in and out: SQLite keeps no zone, so `DateTimeUTC` stores naive
UTC and hands back aware datetimes (advanced-alchemy's DateTimeUTC does the same).

`among_ids` asks for rows by a list of ids bound as one value, where `IN` with an expanding
parameter had SQLAlchemy render the list into the statement at every execution.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, MetaData, String, Table, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class DateTimeUTC(TypeDecorator[datetime]):
    """A timestamp that must be timezone-aware going in and is UTC-aware coming out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every Kirjuri table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: DateTimeUTC, dict[str, Any]: JSON, list[str]: JSON}


def without_nul(value: Any) -> Any:
    """`value` (text, or JSON made of lists and dicts) with every NUL character removed:
    PostgreSQL keeps none in text or JSON, and decoded mail can carry one (`=00`)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value


def table_of(model: type[Base]) -> Table:
    """The Core table of a model: statements on it skip the ORM's bookkeeping (bulk inserts
    and selects of plain columns on the capture path, where each costs the writer's time)."""
    return cast(Table, model.__table__)


class IdList(TypeDecorator[Sequence[int]]):
    """A list of ids as one bound value: a bigint[] on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(BigInteger))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Sequence[int] | None, dialect: Dialect) -> Any:
        ids = [int(i) for i in value or ()]
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class _AmongIds(FunctionElement[Any]):
    """`column` is one of the ids bound to a parameter (`among_ids`). Untyped, as a bare
    condition: SQLite would render a Boolean one as `… = 1`."""

    type = NullType()  # type: ignore[assignment]
    inherit_cache = True
    name = "among_ids"


@compiles(_AmongIds)
def _among_json(element: _AmongIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(_AmongIds, "postgresql")
def _among_array(element: _AmongIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"{column} = ANY({ids})"


def among_ids(column: Any) -> ColumnElement[Any]:
    """The condition that `column` is one of the ids given as the parameter `ids` (a list)."""
    return cast(ColumnElement[Any], _AmongIds(column, bindparam("ids", type_=IdList())))
