"""`GET /api/v1/metrics` in the Prometheus text format (version 0.0.4).

Two kinds of figures: this process's HTTP requests (a counter and a latency histogram per
route, method and status, kept in an object the app factory makes; no global state), and the
store's state read at scrape time (interactions per channel, jobs per kind and status, how long
finished jobs waited and ran, transcription real-time factor, webhook deliveries per status).
Only counts and times: no personal data.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.access import Principal
from storage.base import utcnow
from storage.interactions import Interaction
from storage.jobs import Job
from storage.transcripts import Transcript
from storage.webhooks import WebhookDelivery

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HttpMetrics:
    """Requests and their latency by (route, method, status), for this process."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    sums: dict[tuple[str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    buckets: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        self.counts[key] += 1
        self.sums[key] += seconds
        counts = self.buckets.setdefault(key, [0] * len(BUCKETS))
        for n, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[n] += 1

    def middleware(self) -> Any:
        """The aiohttp middleware that times every request into these figures."""

        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                self.observe(route, request.method, status, time.perf_counter() - started)

        return measure

    def lines(self) -> list[str]:
        out = [
            "# HELP kirjuri_http_requests_total HTTP requests answered by this process.",
            "# TYPE kirjuri_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.counts.items()):
            out.append(f"kirjuri_http_requests_total{_labels(route=route, method=method, status=status)} {n}")
        out += [
            "# HELP kirjuri_http_request_seconds Time to answer, by route.",
            "# TYPE kirjuri_http_request_seconds histogram",
        ]
        for key, counts in sorted(self.buckets.items()):
            route, method, status = key
            labels = {"route": route, "method": method, "status": status}
            for bound, n in zip(BUCKETS, counts, strict=True):
                out.append(f"kirjuri_http_request_seconds_bucket{_labels(**labels, le=str(bound))} {n}")
            out.append(
                f"kirjuri_http_request_seconds_bucket{_labels(**labels, le='+Inf')} {self.counts[key]}"
            )
            out.append(f"kirjuri_http_request_seconds_sum{_labels(**labels)} {self.sums[key]:.6f}")
            out.append(f"kirjuri_http_request_seconds_count{_labels(**labels)} {self.counts[key]}")
        errors = sum(n for (_, _, status), n in self.counts.items() if status.startswith("5"))
        out += [
            "# HELP kirjuri_http_errors_total Answers with a 5xx status.",
            "# TYPE kirjuri_http_errors_total counter",
            f"kirjuri_http_errors_total {errors}",
        ]
        return out


def _labels(**values: str) -> str:
    escaped = {k: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for k, v in values.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped.items()) + "}"


def store_lines(session: Session) -> list[str]:
    """Figures read from the database at scrape time."""
    out = [
        "# HELP kirjuri_interactions Interactions stored, by channel.",
        "# TYPE kirjuri_interactions gauge",
    ]
    for channel, n in session.execute(
        select(Interaction.channel, func.count(Interaction.id)).group_by(Interaction.channel)
    ):
        out.append(f"kirjuri_interactions{_labels(channel=channel)} {n}")
    out += ["# HELP kirjuri_jobs Background jobs, by kind and status.", "# TYPE kirjuri_jobs gauge"]
    for kind, status, n in session.execute(
        select(Job.kind, Job.status, func.count(Job.id)).group_by(Job.kind, Job.status)
    ):
        out.append(f"kirjuri_jobs{_labels(kind=kind, status=status)} {n}")
    since = utcnow() - timedelta(hours=1)
    out += [
        "# HELP kirjuri_job_latency_seconds Mean time from queued to done, jobs done in the last hour.",
        "# TYPE kirjuri_job_latency_seconds gauge",
    ]
    finished = session.execute(
        select(Job.kind, Job.created_at, Job.updated_at).where(Job.status == "done", Job.updated_at >= since)
    ).all()
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, created, updated in finished:
        by_kind[kind].append((updated - created).total_seconds())
    for kind, values in sorted(by_kind.items()):
        out.append(f"kirjuri_job_latency_seconds{_labels(kind=kind)} {sum(values) / len(values):.3f}")
    audio, processing = session.execute(
        select(func.sum(Transcript.audio_seconds), func.sum(Transcript.processing_seconds)).where(
            Transcript.created_at >= since
        )
    ).one()
    out += [
        "# HELP kirjuri_transcription_rtf Processing over audio time, calls transcribed in the last hour.",
        "# TYPE kirjuri_transcription_rtf gauge",
    ]
    if audio:
        out.append(f"kirjuri_transcription_rtf {float(processing or 0) / float(audio):.4f}")
    out += [
        "# HELP kirjuri_webhook_deliveries Webhook deliveries, by status.",
        "# TYPE kirjuri_webhook_deliveries gauge",
    ]
    for status, n in session.execute(
        select(WebhookDelivery.status, func.count(WebhookDelivery.id)).group_by(WebhookDelivery.status)
    ):
        out.append(f"kirjuri_webhook_deliveries{_labels(status=status)} {n}")
    return out


def require_metrics(who: Principal) -> None:
    """Metrics are for a monitoring token (scope `metrics`) or an admin."""
    if who.kind == "service":
        who.require_scope("metrics")
    else:
        who.require_role("admin")
