"""A real PostgreSQL server for the tests, started by them (Debian's `postgresql` package).

`KIRJURI_TEST_DATABASE=postgresql pytest` runs the whole suite on PostgreSQL: one server in a
temporary directory for the session, and a fresh database per test cloned from a template
that has every migration applied. As root the server runs as the `postgres` user (PostgreSQL
refuses to run as root). Durability settings are off: a test server holds nothing to keep.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path

TEMPLATE = "kirjuri_template"


def wanted() -> bool:
    """Whether this test run is the PostgreSQL one."""
    return os.environ.get("KIRJURI_TEST_DATABASE", "sqlite") == "postgresql"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throwaway PostgreSQL cluster on loopback."""

    def __init__(self, root: Path | None = None, durable: bool = False, options: str = "") -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="kirjuri-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.durable = durable
        self.options = options
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        self._names = count(1)

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def start(self, template: bool = True) -> None:
        """Start the server (creating the cluster unless its folder holds one already) and,
        with `template`, the migrated template database."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                self._as_owner(
                    _bin("initdb"), "-D", str(self.data), "--auth=trust", "-E", "UTF8", "--no-sync"
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c max_connections=300 " + self.options
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(
            self._as_owner(
                _bin("pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if template:
            self.sql(f"CREATE DATABASE {TEMPLATE}")
            self._migrate(TEMPLATE)

    def stop(self, remove: bool = True) -> None:
        """Stop the server; with `remove`, delete its folder."""
        subprocess.run(
            self._as_owner(
                _bin("pg_ctl"), "-D", str(self.data), "-m", "fast" if not remove else "immediate", "stop"
            ),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                _bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def _migrate(self, database: str) -> None:
        import asyncio

        from storage.engine import Database

        async def run() -> None:
            db = Database(self.url(database))
            await db.open()
            await db.close()

        asyncio.run(run())

    def new_database(self) -> str:
        """A fresh database with every migration applied; returns its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}_{int(time.time() * 1000) % 100000}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def drop(self, url: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
