"""The URL map of /api/v1. The OpenAPI document is checked against this table by a test."""

from __future__ import annotations

from aiohttp import web

from service.api import handlers
from service.api.openapi import openapi

ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/api/v1/health", handlers.health),
    ("GET", "/api/v1/openapi.json", openapi),
    ("POST", "/api/v1/session", handlers.create_session),
    ("GET", "/api/v1/customers", handlers.list_customers),
    ("POST", "/api/v1/customers", handlers.create_customer),
    ("GET", "/api/v1/customers/{id}", handlers.get_customer),
    ("PATCH", "/api/v1/customers/{id}", handlers.patch_customer),
    ("GET", "/api/v1/interactions", handlers.list_interactions),
    ("GET", "/api/v1/interactions/{id}", handlers.get_interaction),
    ("GET", "/api/v1/interactions/{id}/raw", handlers.get_raw),
    ("GET", "/api/v1/interactions/{id}/audio", handlers.get_audio),
    ("POST", "/api/v1/interactions/{id}/link", handlers.link_interaction),
    ("GET", "/api/v1/subjects", handlers.subjects),
    ("GET", "/api/v1/audit", handlers.audit),
]


def setup_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)  # type: ignore[arg-type]
