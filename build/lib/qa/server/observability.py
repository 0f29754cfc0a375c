"""Per-request structured logs, request ids and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
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
    """Request counters and latency histograms, kept in memory and written as Prometheus text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.answers: dict[bool, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float,
                abstained: bool | None) -> None:
        """Count one finished request."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.latency.setdefault(route, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.latency_sum[route] += seconds
            if abstained is not None:
                self.answers[abstained] += 1

    def render(self, gauges: dict[str, tuple[str, float, dict[str, str]]]) -> str:
        """The Prometheus text format (version 0.0.4)."""
        out: list[str] = []
        with self._lock:
            out += ["# HELP qa_requests_total HTTP requests by method, route and status.",
                    "# TYPE qa_requests_total counter"]
            for (method, route, status), n in sorted(self.requests.items()):
                labels = _labels(method=method, route=route, status=str(status))
                out.append(f"qa_requests_total{labels} {n}")
            out += ["# HELP qa_request_duration_seconds Time to answer, by route.",
                    "# TYPE qa_request_duration_seconds histogram"]
            for route, counts in sorted(self.latency.items()):
                for bound, n in zip(BUCKETS, counts, strict=False):
                    out.append(f"qa_request_duration_seconds_bucket"
                               f"{_labels(route=route, le=repr(bound))} {n}")
                out.append(f"qa_request_duration_seconds_bucket{_labels(route=route, le='+Inf')} "
                           f"{counts[-1]}")
                out.append(f"qa_request_duration_seconds_sum{_labels(route=route)} "
                           f"{self.latency_sum[route]:.6f}")
                out.append(f"qa_request_duration_seconds_count{_labels(route=route)} {counts[-1]}")
            out += ["# HELP qa_answers_total Answers given, by whether they abstained.",
                    "# TYPE qa_answers_total counter"]
            for abstained in (False, True):
                out.append(f"qa_answers_total{_labels(abstained=str(abstained).lower())} "
                           f"{self.answers[abstained]}")
        for name, (help_text, value, names) in gauges.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                    f"{name}{_labels(**names)} {value:g}"]
        return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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
async def metrics(request: Request) -> PlainTextResponse:
    """Request counts, latencies, load and the served index, in the Prometheus text format."""
    state = request.app.state
    name = state.engine.serving_name
    version = state.engine.version if name is not None else None
    counts = version.manifest.get("counts", {}) if version is not None else {}
    gauges = {
        "qa_index_info": ("The served index version (value 1).", float(version is not None),
                          {"version": name or ""}),
        "qa_index_documents": ("Documents in the served index.",
                               float(counts.get("documents", 0)), {}),
        "qa_index_chunks": ("Chunks in the served index.",
                            float(version.n_chunks if version is not None else 0), {}),
        "qa_work_pending": ("Questions running or waiting for a worker.",
                            float(state.gate.pending), {}),
        "qa_streams_open": ("Event streams open now.", float(state.streams.open), {}),
        "qa_build_running": ("1 while an index rebuild runs.",
                             float(state.builds.status().state == "running"), {}),
    }
    text = state.metrics.render(gauges)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
