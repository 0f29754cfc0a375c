"""Per-request structured logs, request ids and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("qa.access")

NOTES = "qa.notes"  # scope key where routes leave what the log line should say
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def note(request: Request, **fields: Any) -> None:
    """Add fields (abstained, index version) to this request's log line."""
    notes = request.scope.get(NOTES)
    if notes is not None:
        notes.update(fields)


def route_of(scope: Scope) -> str:
    """The route template that served a request, so metrics stay few whatever the URLs."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if scope["path"].startswith("/static/"):
        return "/static"
    return "unmatched"


class Metrics:
    """Request counters and latency histograms in a registry of the app's own (so that apps in
    one process never share counts), plus what the app serves, read when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("qa_requests", "HTTP requests by method, route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("qa_request_duration_seconds", "Time to answer, by route.",
                                 ["route"], buckets=BUCKETS, registry=self.registry)
        self.answers = Counter("qa_answers", "Answers given, by whether they abstained.",
                               ["abstained"], registry=self.registry)
        for abstained in ("false", "true"):
            self.answers.labels(abstained=abstained)  # both series exist from the start
        ProcessCollector(namespace="qa", registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float,
                abstained: bool | None) -> None:
        """Count one finished request."""
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)
        if abstained is not None:
            self.answers.labels(abstained=str(abstained).lower()).inc()

    def watch(self, state: Any) -> None:
        """Report the served index and the load of the app whose state this is."""
        self.registry.register(ServingCollector(state))


class ServingCollector(Collector):
    """Gauges read from the app's state at each scrape: the served index, queue and streams."""

    def __init__(self, state: Any):
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        engine = getattr(state, "engine", None)
        if engine is None:  # scraped before start-up finished
            return
        name = engine.serving_name
        version = engine.version if name is not None else None
        counts = version.manifest.get("counts", {}) if version is not None else {}
        info = GaugeMetricFamily("qa_index_info", "The served index version (value 1).",
                                 labels=["version"])
        info.add_metric([name or ""], float(version is not None))
        yield info
        yield GaugeMetricFamily("qa_index_documents", "Documents in the served index.",
                                value=counts.get("documents", 0))
        yield GaugeMetricFamily("qa_index_chunks", "Chunks in the served index.",
                                value=version.n_chunks if version is not None else 0)
        yield GaugeMetricFamily("qa_work_pending", "Questions running or waiting for a worker.",
                                value=state.gate.pending)
        yield GaugeMetricFamily("qa_streams_open", "Event streams open now.",
                                value=state.streams.open)
        yield GaugeMetricFamily("qa_build_running", "1 while an index rebuild runs.",
                                value=float(state.builds.status().state == "running"))


class RequestLog:
    """ASGI middleware: gives each request an id (echoed as X-Request-ID), then logs one JSON
    line with its latency, status and outcome and counts it in the metrics. Headers, bodies and
    query strings are never logged, so neither are tokens."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        notes: dict[str, Any] = {}
        scope[NOTES] = notes
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.observe(scope["method"], route, status, seconds,
                                 notes.get("abstained"))
            line = {"id": request_id, "method": scope["method"], "path": scope["path"][:200],
                    "route": route, "status": status, "ms": round(seconds * 1000, 1),
                    "client": (scope.get("client") or ("-",))[0], **notes}
            if "index_version" not in line:
                line["index_version"] = _serving_version(scope)
            log.info(json.dumps(line, ensure_ascii=False))


def _serving_version(scope: Scope) -> str | None:
    app = scope.get("app")
    engine = getattr(getattr(app, "state", None), "engine", None)
    return getattr(engine, "serving_name", None)


router = APIRouter(tags=["index"])


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    """Request counts, latencies, load and the served index, in the Prometheus text format
    (OpenMetrics when the scraper asks for it)."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    registry = request.app.state.metrics.registry
    return Response(encode(registry), media_type=content_type)
