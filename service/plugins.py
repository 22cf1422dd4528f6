"""Finding connectors (entry point group `kirjuri.connectors`) and plugins (group `kirjuri`,
or `[plugins] modules`).

The core never imports `connectors` (dependencies point connectors -> service -> storage):
`pyproject.toml` names each connector's `setup(app)`, and the app factory calls them. Plugins
implement the hooks of `service.hookspecs`; the app factory builds one plugin manager.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

import pluggy
from aiohttp import web

from service import hookspecs
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


def plugin_manager(modules: list[str]) -> pluggy.PluginManager:
    """The hooks' manager with every installed plugin and the configured modules registered.
    Raises ConfigError naming a module that cannot be imported."""
    manager = pluggy.PluginManager("kirjuri")
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints("kirjuri")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"[plugins] modules: cannot import {name!r}: {exc}") from None
        if manager.get_plugin(name) is None:
            manager.register(module, name)
    return manager
