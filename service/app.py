"""The app factory: the only place where Kirjuri's parts are wired together.

Nothing connects, opens or loads at import time. Each long-lived resource is one cleanup
context, started in order and stopped in reverse: executor, database (migrated on open),
ingest writer, transcription workers, marketing-ban detection, subject rights (and the
retention runs), then the connectors (so
connectors stop taking data before the writer stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any

from aiohttp import web

from service.api.auth import auth_middleware
from service.api.problems import problem_middleware
from service.api.routes import setup_routes
from service.appkeys import (
    BACKGROUND,
    BLOBS,
    DB,
    EXECUTOR,
    HASHER,
    INGESTOR,
    METRICS,
    PARSER,
    PLUGINS,
    RIGHTS,
    SETTINGS,
    TRANSCRIPTION,
)
from service.blobs import open_blobs
from service.ingest import Ingestor
from service.marketing import Hasher, MarketingService
from service.metrics import HttpMetrics
from service.plugins import connector_setups, plugin_manager
from service.processes import background_pool, die_with_parent
from service.queue import DETECT, WEBHOOKS
from service.register import load_register
from service.retention import retention_loop
from service.rights import RightsContext, finish_deletions
from service.settings import Settings
from service.transcription import TranscriptionService
from service.ui.pages import setup as setup_ui
from service.ui.web import ui_middleware
from service.webhooks import WebhookService
from storage.engine import Database

log = logging.getLogger(__name__)


async def _executor(app: web.Application) -> AsyncIterator[None]:
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kirjuri")
    workers = app[SETTINGS].ingest.parse_workers
    # spawn, not fork: this process already runs threads (aiosqlite, the executor)
    app[PARSER] = (
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        if workers > 0
        else app[EXECUTOR]
    )
    if app[PARSER] is not app[EXECUTOR]:
        # start the parser processes now, not on the first large message
        await asyncio.get_running_loop().run_in_executor(app[PARSER], int, "0")
    yield
    if app[PARSER] is not app[EXECUTOR]:
        app[PARSER].shutdown(wait=True, cancel_futures=True)
    app[EXECUTOR].shutdown(wait=True)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    db = Database(settings.storage.database_url)
    hook = app[PLUGINS].hook

    def on_events(events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                hook.on_event(event=event)
            except Exception:  # a plugin's failure must not undo or hide a committed change
                log.exception("a plugin's on_event failed")

    if hook.on_event.get_hookimpls():  # no listening plugin: commits register nothing
        db.event_sink = on_events
    await db.open()
    app[DB] = db
    app[BLOBS] = open_blobs(settings.storage)
    yield
    await db.close()


async def _ingest(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ingestor = Ingestor(
        app[DB],
        app[BLOBS],
        app[EXECUTOR],
        internal_domains=settings.linking.internal_domains,
        max_batch=settings.storage.max_batch,
        parser=app[PARSER],
        process_parse_min_bytes=settings.ingest.process_parse_min_bytes,
        max_body_chars=settings.ingest.max_body_chars,
        job_max_attempts=settings.transcription.max_attempts,
        plugins=app[PLUGINS],
    )
    app[INGESTOR] = ingestor
    task = _start(app, ingestor.run(), "ingest-writer")
    yield
    await _stop(task)
    ingestor.fail_pending()


async def _transcription(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    service = TranscriptionService(
        app[DB],
        app[BLOBS],
        settings.transcription,
        settings.storage.data_path,
        app[INGESTOR].wakes,
    )
    app[TRANSCRIPTION] = service
    task = _start(app, service.run(), "transcription") if settings.transcription.enabled else None
    yield
    await _stop(task)
    await asyncio.get_running_loop().run_in_executor(None, service.close)


async def _marketing(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hasher = Hasher.from_settings(settings.marketing, settings.storage.data_path)
    app[HASHER] = hasher
    task = service = None
    if settings.marketing.enabled:
        workers = settings.marketing.workers
        service = MarketingService(
            app[DB],
            partial(background_pool, workers) if workers > 0 else partial(ThreadPoolExecutor, 1),
            settings.marketing,
            hasher,
            app[INGESTOR].wakes[DETECT],
        )
        task = _start(app, service.run(), "marketing")
    yield
    await _stop(task)
    if service is not None:
        await asyncio.get_running_loop().run_in_executor(None, service.close)


async def _rights(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ctx = RightsContext(
        db=app[DB],
        blobs=app[BLOBS],
        executor=app[EXECUTOR],
        hasher=app[HASHER],
        watch_dir=settings.calls.watch_dir,
        register=load_register(settings.rights.register_file),
        retention=settings.retention,
    )
    app[RIGHTS] = ctx
    await finish_deletions(ctx)  # blobs an interrupted erasure queued but had not removed
    task = (
        _start(app, retention_loop(ctx, settings.retention), "retention")
        if settings.retention.enabled
        else None
    )
    yield
    await _stop(task)


async def _webhooks(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].webhooks
    task = None
    if settings.enabled:
        task = _start(app, WebhookService(app[DB], settings, app[INGESTOR].wakes[WEBHOOKS]).run(), "webhooks")
    yield
    await _stop(task)


def _start(app: web.Application, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A background task of the app, listed in app[BACKGROUND] while it runs."""
    task = asyncio.create_task(work, name=name)
    app[BACKGROUND].append(task)
    return task


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def freeze_startup_heap(_app: web.Application) -> None:
    """Put what start-up made (modules, mappers, compiled statements: about 80,000 objects)
    out of the cyclic garbage collector's reach (`gc.freeze`), for a process that is
    Kirjuri's alone (`kirjuri serve`, the benches; not the tests, which build many apps).

    Python's full collections traverse every tracked object; with the start-up heap in view,
    one ran every few searches and took 40-60 ms (bench/search.py: a search's p50 of 15 ms
    had a p95 of 110 ms). Frozen objects are still freed when nothing refers to them.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> web.Application:
    """A ready-to-run Kirjuri application for these settings."""
    metrics = HttpMetrics()
    app = web.Application(
        middlewares=[metrics.middleware(), problem_middleware, auth_middleware, ui_middleware],
        client_max_size=settings.http.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[BACKGROUND] = []
    app[PLUGINS] = plugin_manager(settings.plugins.modules)
    app.cleanup_ctx.extend([_executor, _database, _ingest, _transcription, _marketing, _rights, _webhooks])
    setup_routes(app)
    setup_ui(app)
    for _name, setup in sorted(connector_setups().items()):
        setup(app)
    return app
