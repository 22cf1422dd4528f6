"""The database handle: one read engine, one writer, migrations on open.

SQLite allows one writer at a time, so writes go through a single connection guarded by an
asyncio lock and start with `BEGIN IMMEDIATE` (datasette's `execute_write_fn` does the same);
reads use their own pool and see committed data through WAL. Every SQLite connection gets
WAL, `synchronous=FULL` (a commit is on disk when it returns), foreign keys and
`secure_delete` (deleted content is overwritten, not left in free pages).
PostgreSQL needs none of this: both handles are the same engine and the lock is not taken;
a pooled PostgreSQL connection is checked before use only when it has been idle a while.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from storage.errors import Conflict, Unavailable

T = TypeVar("T")
# a pooled PostgreSQL connection idle this long is pinged before it is used again
IDLE_PING_SECONDS = 5.0

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA secure_delete=ON",
    "PRAGMA busy_timeout=10000",
)


def _sqlite_setup(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite/aiosqlite).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it has sat unused for `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` pings at every checkout; with asyncpg a ping is three round
    trips (BEGIN, `;`, ROLLBACK), about 0.35 ms, and an API request checks out three times
    (its session, its read, its audit row). A connection found dead here is replaced
    (`DisconnectionError`: the pool reconnects); one in steady use that meets a server
    restarted within the last `idle_seconds` fails that one transaction (`Unavailable`,
    temporary), and SQLAlchemy then drops the pool's other connections.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means this connection is gone
            raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}") from exc


class Database:
    """Engines and session factories for one database URL. Open with `open()`, end with `close()`."""

    def __init__(self, url: str, idle_ping_seconds: float = IDLE_PING_SECONDS) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._write_lock = asyncio.Lock()
        self._lock_file: Path | None = None
        # called (in the committing thread) with the events a committed transaction queued;
        # set by the app factory to the plugins' on_event hook
        self.event_sink: Callable[[list[dict[str, Any]]], None] | None = None
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                self._lock_file = Path(f"{database}-writelock")
            self.read_engine = create_async_engine(self.url, pool_size=4, max_overflow=4)
            self.write_engine = create_async_engine(self.url, pool_size=1, max_overflow=0)
            _sqlite_setup(self.read_engine.sync_engine, "BEGIN")
            _sqlite_setup(self.write_engine.sync_engine, "BEGIN IMMEDIATE")
            # Batch work (ingest) runs whole transactions in one thread hop on plain sqlite3
            # connections: one await per batch instead of one event-loop round trip per statement.
            sync_url = self.url.set(drivername="sqlite")
            self._sync_read = create_engine(sync_url, pool_size=2, max_overflow=2)
            self._sync_write = create_engine(sync_url, pool_size=1, max_overflow=0)
            _sqlite_setup(self._sync_read, "BEGIN")
            _sqlite_setup(self._sync_write, "BEGIN IMMEDIATE")
            self._read_thread = ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-read")
            self._write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-write")
        else:
            # a plan per statement: after five runs of a prepared statement PostgreSQL may keep
            # a generic plan, which cannot tell a rare word from a common one (a full-text
            # search went from 20 ms to 400 ms on its sixth run)
            self.read_engine = create_async_engine(
                self.url,
                connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
            )
            _ping_when_idle(self.read_engine.sync_engine, idle_ping_seconds)
            self.write_engine = self.read_engine
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)

    async def open(self) -> None:
        """Bring the schema to the newest migration (an empty database gets every table)."""
        from storage.migrate import upgrade

        try:
            await upgrade(self.write_engine)
        except (OperationalError, DBAPIError) as exc:
            raise Unavailable(f"cannot open the database: {exc.orig}") from exc

    async def close(self) -> None:
        """Close every pooled connection; for SQLite, fold the WAL back into the file."""
        if self.is_sqlite:
            try:
                await self.checkpoint()
            except (OperationalError, DBAPIError, sqlite3.Error):
                pass
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
        if self.is_sqlite:
            self._read_thread.shutdown(wait=True)
            self._write_thread.shutdown(wait=True)
            self._sync_read.dispose()
            self._sync_write.dispose()

    async def checkpoint(self) -> bool:
        """Copy the SQLite WAL into the database file and truncate it to zero bytes, so pages
        as they were before a deletion are not left in it. Retries while readers hold an old
        snapshot; True once done (always True on PostgreSQL, where there is nothing to do)."""
        if not self.is_sqlite:
            return True
        loop = asyncio.get_running_loop()
        for attempt in range(50):
            async with self._write_lock, self._between_processes():
                done = await loop.run_in_executor(self._write_thread, self._checkpoint)
            if done:
                return True
            await asyncio.sleep(0.02 * (attempt + 1))
        return False

    def _checkpoint(self) -> bool:
        # on the raw connection: through SQLAlchemy the pragma would run inside the
        # BEGIN IMMEDIATE every transaction starts with, where SQLite refuses it
        conn = self._sync_write.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()  # (busy, frames in the WAL, frames checkpointed)
            cursor.close()
            return row is not None and not row[0]
        finally:
            conn.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries. Its transaction is rolled back at the end."""
        try:
            async with self._read_sessions() as session:
                yield session
        except (OperationalError, DBAPIError) as exc:
            raise Unavailable(f"database read failed: {type(exc.orig).__name__}") from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends without an error.

        Only one writer runs at a time on SQLite. A broken constraint becomes `Conflict`,
        other database failures `Unavailable`.
        """
        async with self._write_lock if self.is_sqlite else _nolock(), self._between_processes():
            try:
                async with self._write_sessions() as session, session.begin():
                    session.info["event_sink"] = self.event_sink
                    yield session
            except IntegrityError as exc:
                raise Conflict(f"the change conflicts with stored data: {type(exc.orig).__name__}") from exc
            except (OperationalError, DBAPIError) as exc:
                raise Unavailable(f"database write failed: {type(exc.orig).__name__}") from exc

    async def run_read(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` (plain synchronous SQLAlchemy) as one read, off the event loop."""
        if not self.is_sqlite:
            async with self.read() as session:
                return await session.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_thread, _in_session, self._sync_read, work, False)

    async def run_write(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` as one write transaction (committed if it returns) off the event
        loop; the same single-writer rule and error translation as `write()`."""
        if not self.is_sqlite:
            async with self.write() as session:
                return await session.run_sync(work)
        loop = asyncio.get_running_loop()
        work = self._with_sink(work)
        async with self._write_lock:
            return await loop.run_in_executor(self._write_thread, self._write_between_processes, work)

    def _with_sink(self, work: Callable[[Session], T]) -> Callable[[Session], T]:
        def run(session: Session) -> T:
            session.info["event_sink"] = self.event_sink
            return work(session)

        return run

    @asynccontextmanager
    async def _between_processes(self) -> AsyncIterator[None]:
        """The cross-process write lock (see `_write_between_processes`) around an async write;
        waited for in a thread, so the event loop runs on meanwhile."""
        if self._lock_file is None:
            yield
            return
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._write_thread, fcntl.flock, fd, fcntl.LOCK_EX
            )
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _write_between_processes(self, work: Callable[[Session], T]) -> T:
        """One write transaction, holding an flock on `<db>-writelock` when several processes
        share the file (`[smtp] processes`): a writer waiting for the lock wakes the moment
        it is free, where SQLite's own busy handler sleeps in steps of up to 100 ms and
        halves the throughput of two processes writing in turns."""
        if self._lock_file is None:
            return _in_session(self._sync_write, work, True)
        with open(self._lock_file, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return _in_session(self._sync_write, work, True)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _in_session(engine: Engine, work: Callable[[Session], T], commit: bool) -> T:
    try:
        with Session(engine, expire_on_commit=False) as session:
            result = work(session)
            if commit:
                session.commit()
            return result  # closing the session rolls back what was not committed
    except IntegrityError as exc:
        raise Conflict(f"the change conflicts with stored data: {type(exc.orig).__name__}") from exc
    except (OperationalError, DBAPIError) as exc:
        raise Unavailable(f"database access failed: {type(exc.orig).__name__}") from exc


@asynccontextmanager
async def _nolock() -> AsyncIterator[None]:
    yield
