"""Prometheus metrics: one registry per app, exact values, the official text format."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qa.config import Settings
from qa.server.api import create_app
from qa.server.observability import Metrics

from .conftest import FakeEmbedder
from .test_hardening import ASK, metric_samples


def served_state(chunks: int, documents: int) -> SimpleNamespace:
    version = SimpleNamespace(n_chunks=chunks, manifest={"counts": {"documents": documents}})
    return SimpleNamespace(
        engine=SimpleNamespace(serving_name="v-big", version=version),
        gate=SimpleNamespace(pending=3), streams=SimpleNamespace(open=2),
        builds=SimpleNamespace(status=lambda: SimpleNamespace(state="running")))


def test_large_counts_are_exact():
    metrics = Metrics()
    metrics.watch(served_state(chunks=1_234_567, documents=98_765_432))
    for _ in range(3):
        metrics.observe("POST", "/api/ask", 200, 0.02, abstained=False)
    text = generate_latest(metrics.registry).decode()
    samples = metric_samples(text)
    assert samples[("qa_index_chunks", ())] == 1_234_567
    assert samples[("qa_index_documents", ())] == 98_765_432
    assert samples[("qa_work_pending", ())] == 3 and samples[("qa_streams_open", ())] == 2
    assert samples[("qa_build_running", ())] == 1
    assert samples[("qa_answers_total", (("abstained", "false"),))] == 3
    assert samples[("qa_answers_total", (("abstained", "true"),))] == 0
    assert "1.23457e+06" not in text and "9.87654e+07" not in text  # the old %g rounding
    buckets = {k[1]: v for k, v in samples.items() if k[0] == "qa_request_duration_seconds_bucket"}
    assert buckets[(("le", "0.01"), ("route", "/api/ask"))] == 0
    assert buckets[(("le", "0.025"), ("route", "/api/ask"))] == 3


def test_a_state_not_loaded_yet_reports_no_serving_gauges():
    metrics = Metrics()
    metrics.watch(SimpleNamespace())
    text = generate_latest(metrics.registry).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert "qa_index_chunks" not in names and "qa_requests_total" not in names
    if Path("/proc/self/stat").exists():  # process figures come from /proc
        assert "qa_process_resident_memory_bytes" in names


def test_each_app_counts_only_its_own_requests(built: Settings):
    with TestClient(create_app(built, FakeEmbedder)) as first, \
            TestClient(create_app(built, FakeEmbedder)) as second:
        for _ in range(2):
            assert first.post("/api/ask", json=ASK).status_code == 200
        one, two = metric_samples(first.get("/metrics").text), metric_samples(
            second.get("/metrics").text)
    key = ("qa_requests_total", (("method", "POST"), ("route", "/api/ask"), ("status", "200")))
    assert one[key] == 2 and key not in two


def test_openmetrics_is_served_when_asked_for(built: Settings):
    with TestClient(create_app(built, FakeEmbedder)) as c:
        c.get("/healthz")
        r = c.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")
    assert 'qa_requests_total{method="GET",route="/healthz",status="200"} 1.0' in r.text
