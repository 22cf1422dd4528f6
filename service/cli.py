"""The `kirjuri` command: serve, add staff users and service tokens, migrate the database.

kirjuri serve [--config FILE] [--data-dir DIR] [--http-port N] [--smtp-port N] [--only api|smtp|worker]
kirjuri user add NAME --role agent|privacy|admin --password-stdin [--data-dir DIR]
kirjuri token add NAME --scope ingest|marketing [--data-dir DIR]
kirjuri migrate [--data-dir DIR]
kirjuri retention [--dry-run] [--config FILE] [--data-dir DIR]
kirjuri customers import FILE.csv [--source NAME] [--dry-run] [--map COLUMN=FIELD] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from service.access import SCOPES, create_service_token, create_user
from service.accesslog import PrivacyAccessLogger
from service.app import create_app, freeze_startup_heap
from service.blobs import open_blobs
from service.customer_import import ImportReport, import_csv, read_csv
from service.errors import ConfigError, KirjuriError
from service.marketing import Hasher
from service.processes import smtp_children
from service.register import load_register
from service.retention import run_retention
from service.rights import RightsContext
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
    serve.add_argument(
        "--only",
        choices=sorted(PARTS),
        help="run one part: api (HTTP API and the call folder), smtp (mail capture) or worker "
        "(transcription, marketing-ban detection); any number of each can share one database",
    )
    # set on the processes that `[smtp] processes` starts: they share the port, start none
    serve.add_argument("--smtp-child", action="store_true", help=argparse.SUPPRESS)

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
    token_add.add_argument("--scope", required=True, choices=SCOPES)

    commands.add_parser("migrate", parents=[common], help="upgrade the database to the newest schema")
    cust = commands.add_parser("customers", help="customer data").add_subparsers(dest="action", required=True)
    imp = cust.add_parser(
        "import", parents=[common], help="create or update customers from a CRM's CSV export"
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--source", default="csv", help="the CRM the ids belong to (default: csv)")
    imp.add_argument("--dry-run", action="store_true", help="check every row, change nothing")
    imp.add_argument(
        "--map", action="append", default=[], metavar="COLUMN=FIELD", help="read a column as a customer field"
    )
    retention = commands.add_parser(
        "retention", parents=[common], help="delete interactions past their channel's [retention] limit"
    )
    retention.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
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


# what each `serve --only` part turns off; nothing given runs every part in one process
PARTS: dict[str, dict[str, dict[str, object]]] = {
    "api": {
        "smtp": {"enabled": False},
        "transcription": {"enabled": False},
        "marketing": {"enabled": False},
        "retention": {"enabled": False},
        "webhooks": {"enabled": False},
    },
    "smtp": {
        "transcription": {"enabled": False},
        "calls": {"watch_dir": ""},
        "marketing": {"enabled": False},
        "retention": {"enabled": False},
        "webhooks": {"enabled": False},
    },
    "worker": {"smtp": {"enabled": False}, "calls": {"watch_dir": ""}},
}


def _part(settings: Settings, only: str | None) -> Settings:
    for section, changes in PARTS.get(only or "", {}).items():
        settings = settings.replace(section, **changes)
    return settings


def _serve_args(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The `serve` flags that give a child process these same settings."""
    out = ["--data-dir", str(settings.storage.data_path), "--smtp-port", str(settings.smtp.port)]
    if args.config:
        out += ["--config", args.config]
    return out


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _part(settings, args.only)
    if settings.ingest.switch_interval_ms <= 0:
        raise ConfigError("[ingest] switch_interval_ms must be more than 0")
    sys.setswitchinterval(settings.ingest.switch_interval_ms / 1000)  # this process is Kirjuri's
    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)  # after the cleanup contexts have started
    if settings.smtp.processes < 1:
        raise ConfigError("[smtp] processes must be 1 or more")
    extra = settings.smtp.processes - 1
    if settings.smtp.enabled and extra > 0 and not args.smtp_child:
        if settings.smtp.port == 0:
            raise ConfigError("[smtp] processes > 1 needs a fixed [smtp] port (they share it)")
        app.cleanup_ctx.append(smtp_children(_serve_args(args, settings), extra))
    if args.only in ("smtp", "worker"):
        asyncio.run(_run_without_http(app))
        return
    web.run_app(
        app,
        host=settings.http.host,
        port=settings.http.port,
        access_log_class=PrivacyAccessLogger,
        print=lambda text: print(text, flush=True),
        shutdown_timeout=30,
    )


async def _run_without_http(app: web.Application) -> None:
    """Start the app's parts (its cleanup contexts) without an HTTP listener; stop on a signal."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _add_user(settings: Settings, name: str, role: str) -> None:
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(db: Database) -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            await create_user(db, executor, name, role, password)

    asyncio.run(_with_db(settings, work))
    print(f"user {name} ({role}) created")


async def _import(settings: Settings, args: argparse.Namespace, text: str) -> ImportReport:
    overrides = {}
    for item in args.map:
        column, sep, target = item.partition("=")
        if not sep:
            raise ConfigError(f"--map {item}: write it as COLUMN=FIELD")
        overrides[column] = target

    async def work(db: Database) -> ImportReport:
        region = settings.linking.default_region
        return await import_csv(db, text, args.source, region, overrides, args.dry_run)

    return await _with_db(settings, work)


async def _retention(settings: Settings, dry_run: bool) -> dict[str, Any]:
    """Run retention once, outside the server (same deletion as the daily run)."""

    async def work(db: Database) -> dict[str, Any]:
        with ThreadPoolExecutor(max_workers=2) as executor:
            ctx = RightsContext(
                db=db,
                blobs=open_blobs(settings.storage),
                executor=executor,
                hasher=Hasher.from_settings(settings.marketing, settings.storage.data_path),
                watch_dir=settings.calls.watch_dir,
                register=load_register(settings.rights.register_file),
                retention=settings.retention,
            )
            return await run_retention(ctx, settings.retention, dry_run)

    return await _with_db(settings, work)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            _serve(args, settings)
        elif args.command == "user":
            _add_user(settings, args.name, args.role)
        elif args.command == "token":
            token = asyncio.run(
                _with_db(settings, lambda db: create_service_token(db, args.name, args.scope))
            )
            print(token)
        elif args.command == "customers":
            imported = asyncio.run(_import(settings, args, read_csv(Path(args.file))))
            print(json.dumps(imported.to_dict(), indent=2, ensure_ascii=False))
            for line, reason in imported.errors:
                print(f"kirjuri: line {line}: {reason}", file=sys.stderr)
            return 1 if imported.errors else 0
        elif args.command == "retention":
            report = asyncio.run(_retention(settings, args.dry_run))
            print(json.dumps(report, indent=2, ensure_ascii=False))
        elif args.command == "migrate":
            asyncio.run(_with_db(settings, lambda db: asyncio.sleep(0)))
            print("database is at the newest schema")
    except (KirjuriError, StorageError) as exc:
        print(f"kirjuri: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
