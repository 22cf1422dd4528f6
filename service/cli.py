"""The `kirjuri` command: serve, add staff users and service tokens, migrate the database.

kirjuri serve [--config FILE] [--data-dir DIR] [--http-port N] [--smtp-port N]
kirjuri user add NAME --role agent|privacy|admin --password-stdin [--data-dir DIR]
kirjuri token add NAME --scope ingest [--data-dir DIR]
kirjuri migrate [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web

from service.access import create_service_token, create_user
from service.accesslog import PrivacyAccessLogger
from service.app import create_app
from service.errors import KirjuriError
from service.settings import Settings, load_settings
from storage.access import ROLES
from storage.engine import Database
from storage.errors import StorageError

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML file merged over config/kirjuri.toml")
    common.add_argument("--data-dir", metavar="DIR", help="folder for the database and blobs")

    parser = argparse.ArgumentParser(prog="kirjuri", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the API, SMTP connector and workers")
    serve.add_argument("--http-port", type=int, metavar="N")
    serve.add_argument("--smtp-port", type=int, metavar="N")

    user = commands.add_parser("user", help="staff users").add_subparsers(dest="action", required=True)
    user_add = user.add_parser("add", parents=[common], help="create a staff user")
    user_add.add_argument("name")
    user_add.add_argument("--role", required=True, choices=ROLES)
    user_add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input (first line)",
    )

    token = commands.add_parser("token", help="service tokens").add_subparsers(dest="action", required=True)
    token_add = token.add_parser("add", parents=[common], help="create a service token and print it")
    token_add.add_argument("name")
    token_add.add_argument("--scope", required=True, choices=["ingest"])

    commands.add_parser("migrate", parents=[common], help="upgrade the database to the newest schema")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.data_dir:
        settings = settings.replace("storage", data_dir=args.data_dir)
    if getattr(args, "http_port", None) is not None:
        settings = settings.replace("http", port=args.http_port)
    if getattr(args, "smtp_port", None) is not None:
        settings = settings.replace("smtp", port=args.smtp_port)
    return settings


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(settings.storage.database_url)
    try:
        await db.open()
        return await work(db)
    finally:
        await db.close()


def _serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    web.run_app(
        create_app(settings),
        host=settings.http.host,
        port=settings.http.port,
        access_log_class=PrivacyAccessLogger,
        print=lambda text: print(text, flush=True),
        shutdown_timeout=30,
    )


def _add_user(settings: Settings, name: str, role: str) -> None:
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(db: Database) -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            await create_user(db, executor, name, role, password)

    asyncio.run(_with_db(settings, work))
    print(f"user {name} ({role}) created")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            _serve(settings)
        elif args.command == "user":
            _add_user(settings, args.name, args.role)
        elif args.command == "token":
            token = asyncio.run(
                _with_db(settings, lambda db: create_service_token(db, args.name, args.scope))
            )
            print(token)
        elif args.command == "migrate":
            asyncio.run(_with_db(settings, lambda db: asyncio.sleep(0)))
            print("database is at the newest schema")
    except (KirjuriError, StorageError) as exc:
        print(f"kirjuri: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
