"""Finding connectors through the `kirjuri.connectors` entry point group.

The core never imports `connectors` (dependencies point connectors -> service -> storage):
`pyproject.toml` names each connector's `setup(app)`, and the app factory calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from aiohttp import web

from service.errors import ConfigError

GROUP = "kirjuri.connectors"

Setup = Callable[[web.Application], None]


def connector_setups() -> dict[str, Setup]:
    """Every installed connector's setup function, by name."""
    found = {ep.name: ep.load() for ep in entry_points(group=GROUP)}
    if not found:
        raise ConfigError(
            f"no connectors found in entry point group {GROUP!r}; install Kirjuri with `pip install -e .`"
        )
    return found
