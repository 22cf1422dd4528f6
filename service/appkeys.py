"""Typed application state: every long-lived object the app factory wires, under one AppKey each."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor

import pluggy
from aiohttp import web

from service.ingest import Ingestor
from service.marketing import Hasher
from service.metrics import HttpMetrics
from service.rights import RightsContext
from service.settings import Settings
from service.transcription import TranscriptionService
from storage.blobs import Blobs
from storage.engine import Database

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
BLOBS = web.AppKey("blobs", Blobs)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
PARSER = web.AppKey("parser", Executor)  # processes that parse captured mail off the GIL
INGESTOR = web.AppKey("ingestor", Ingestor)
TRANSCRIPTION = web.AppKey("transcription", TranscriptionService)
HASHER = web.AppKey("hasher", Hasher)  # the keyed hash marketing bans keep of identifiers
BACKGROUND = web.AppKey("background", list[asyncio.Task[None]])
RIGHTS = web.AppKey("rights", RightsContext)  # what subject requests and retention need
PLUGINS = web.AppKey("plugins", pluggy.PluginManager)  # the hooks of service.hookspecs
METRICS = web.AppKey("metrics", HttpMetrics)  # this process's HTTP figures
