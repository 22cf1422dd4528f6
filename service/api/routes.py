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
    ("GET", "/api/v1/customers/{id}/history", handlers.customer_history),
    ("PUT", "/api/v1/customers/external/{source}/{external_id}", handlers.put_external_customer),
    ("PUT", "/api/v1/customers/{id}/marketing-bans/{channel}", handlers.put_marketing_ban),
    ("DELETE", "/api/v1/customers/{id}/marketing-bans/{channel}", handlers.delete_marketing_ban),
    ("GET", "/api/v1/customers/{id}/marketing-bans/history", handlers.marketing_ban_history),
    ("GET", "/api/v1/marketing-bans", handlers.list_marketing_bans),
    ("POST", "/api/v1/marketing-bans/{id}/confirm", handlers.confirm_marketing_ban),
    ("POST", "/api/v1/marketing-bans/{id}/reject", handlers.reject_marketing_ban),
    ("POST", "/api/v1/marketing/check", handlers.marketing_check),
    ("GET", "/api/v1/marketing/suppression", handlers.marketing_suppression),
    ("GET", "/api/v1/interactions", handlers.list_interactions),
    ("GET", "/api/v1/interactions/{id}", handlers.get_interaction),
    ("GET", "/api/v1/interactions/{id}/raw", handlers.get_raw),
    ("GET", "/api/v1/interactions/{id}/audio", handlers.get_audio),
    ("POST", "/api/v1/interactions/{id}/link", handlers.link_interaction),
    ("GET", "/api/v1/subjects", handlers.subjects),
    ("GET", "/api/v1/audit", handlers.audit),
    ("GET", "/api/v1/metrics", handlers.metrics),
    ("POST", "/api/v1/webhooks", handlers.create_webhook),
    ("GET", "/api/v1/webhooks", handlers.list_webhooks),
    ("DELETE", "/api/v1/webhooks/{id}", handlers.delete_webhook),
    ("GET", "/api/v1/webhooks/{id}/deliveries", handlers.webhook_deliveries),
    ("POST", "/api/v1/webhooks/deliveries/{id}/redeliver", handlers.redeliver_webhook),
    ("POST", "/api/v1/subject-requests", handlers.create_subject_request),
    ("GET", "/api/v1/subject-requests", handlers.list_subject_requests),
    ("GET", "/api/v1/subject-requests/{id}", handlers.get_subject_request),
    ("GET", "/api/v1/subject-requests/{id}/export", handlers.export_subject_request),
    ("POST", "/api/v1/subject-requests/{id}/execute", handlers.execute_subject_request),
    ("POST", "/api/v1/legal-holds", handlers.create_legal_hold),
    ("GET", "/api/v1/legal-holds", handlers.list_legal_holds),
    ("DELETE", "/api/v1/legal-holds/{id}", handlers.release_legal_hold),
]


def setup_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)  # type: ignore[arg-type]
