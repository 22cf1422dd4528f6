"""More SMTP processes beside `kirjuri serve`, so mail capture can use every core.

One Python process takes mail at about one core's worth of parsing, storing and replying (the
interpreter lock), so `[smtp] processes = N` starts N-1 more `kirjuri serve --only smtp`
processes that listen on the same port (SO_REUSEPORT: the kernel spreads connections over
them). Each stores with its own group-commit writer into the same database; a message taken
by two at once is stored once (the dedup key is unique). This module only starts, watches and
stops those children; what they run is the ordinary `serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor

from aiohttp import web

log = logging.getLogger(__name__)
RESTART_DELAY_SECONDS = 1.0
STOP_GRACE_SECONDS = 35.0  # the SMTP connector's own shutdown grace, and a little more


def die_with_parent(parent: int | None = None) -> None:  # pragma: no cover - runs in the child
    """Linux: this process gets SIGTERM when the one that started it dies, even by SIGKILL, so
    no SMTP, parser or transcription process outlives a killed `kirjuri serve`. Used before
    exec for the SMTP processes and as the initializer of the process pools, which pass the
    parent's pid: a pool process that starts after its parent died exits at once."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def background_process(parent: int) -> None:  # pragma: no cover - runs in the child
    """Initializer of pools doing background work: dies with its parent and yields the CPU
    to the processes that capture mail and answer HTTP."""
    die_with_parent(parent)
    os.nice(10)


def background_pool(workers: int) -> Executor:
    """`workers` spawned, niced processes that die with this one."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=background_process,
        initargs=(os.getpid(),),
    )


class Children:
    """N child processes running `argv`; one that exits unexpectedly is started again."""

    def __init__(self, argv: Sequence[str], count: int, env: dict[str, str]) -> None:
        self.argv = list(argv)
        self.count = count
        self.env = env
        self.stopping = False
        self.procs: list[asyncio.subprocess.Process] = []

    async def keep(self, slot: int) -> None:
        while not self.stopping:
            proc = await asyncio.create_subprocess_exec(*self.argv, env=self.env, preexec_fn=die_with_parent)
            self.procs.append(proc)
            code = await proc.wait()
            self.procs.remove(proc)
            if not self.stopping:
                log.error("SMTP process %d exited with %s; starting it again", slot, code)
                await asyncio.sleep(RESTART_DELAY_SECONDS)

    async def stop(self) -> None:
        self.stopping = True
        for proc in list(self.procs):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in list(self.procs):
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


def smtp_children(serve_args: Sequence[str], count: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `count` extra `kirjuri serve --only smtp` processes with the
    same `serve_args` (config, data dir, port) while the app runs; started after the database
    context, so the schema is migrated before any child opens it."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        argv = [sys.executable, "-m", "service.cli", "serve", *serve_args, "--only", "smtp", "--smtp-child"]
        children = Children(argv, count, dict(os.environ))
        tasks = [asyncio.create_task(children.keep(n), name=f"smtp-process-{n}") for n in range(count)]
        yield
        await children.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return context
