"""Hot reload, rebuild conflicts, load limits, CORS, request logs and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.build import build_index, build_lock
from qa.server.api import create_app
from qa.server.limits import OverloadedError, TimedOutError, TokenBuckets, WorkGate

from .conftest import REPO, FakeEmbedder

TOKEN = "s3cret-token-4f9a1c"
ASK = {"question": "Which company brought tea to London?"}


def app_client(settings: Settings, factory: Any = FakeEmbedder, **update: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=update), factory))


def add_moon(settings: Settings) -> None:
    (settings.corpus_dir / "moon.txt").write_text("The Moon orbits the Earth every 27 days.\n")


def wait_for(check: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- picking up new index versions ----------------------------------------------------------


def test_server_picks_up_a_cli_build_by_polling(built: Settings):
    with app_client(built, reload_interval=0.2) as c:
        before = c.get("/healthz").json()["index_version"]
        add_moon(built)
        report = build_index(built, FakeEmbedder)  # what `qa index` does in another process
        wait_for(lambda: c.get("/healthz").json()["index_version"] == report.version)
        assert report.version != before
        r = c.post("/api/ask", json={"question": "How often does the Moon orbit the Earth?"})
        assert r.json()["citations"][0]["path"] == "moon.txt"
        assert r.json()["index_version"] == report.version


def test_server_picks_up_a_cli_build_on_request(built: Settings):
    with app_client(built, reload_interval=0, admin_token=TOKEN) as c:
        before = c.get("/healthz").json()["index_version"]
        add_moon(built)
        report = build_index(built, FakeEmbedder)
        time.sleep(0.3)
        assert c.get("/healthz").json()["index_version"] == before  # polling is off
        assert c.post("/api/index/reload").status_code == 403
        auth = {"authorization": f"Bearer {TOKEN}"}
        r = c.post("/api/index/reload", headers=auth)
        assert r.status_code == 200 and r.json() == {"reloaded": True,
                                                     "serving_version": report.version}
        assert c.get("/healthz").json()["index_version"] == report.version
        assert c.post("/api/index/reload", headers=auth).json()["reloaded"] is False


# --- one build at a time --------------------------------------------------------------------


class Gated(FakeEmbedder):
    """Embeds only once `go` is set, so a build can be held in the middle."""

    go = threading.Event()

    def embed(self, texts: Any, progress: bool = False) -> Any:
        self.go.wait(30)
        return super().embed(texts, progress)


def test_rebuild_while_an_api_rebuild_runs_is_409(built: Settings):
    Gated.go.clear()
    with app_client(built, Gated) as c:
        assert c.post("/api/index/rebuild", json={"full": True}).status_code == 202
        second = c.post("/api/index/rebuild", json={"full": False})
        assert second.status_code == 409
        assert second.json()["error"] == {"type": "busy", "message": "a rebuild is already running"}
        Gated.go.set()
        c.app.state.builds.join(60)
        assert c.get("/api/index/status").json()["state"] == "succeeded"


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from qa.index.build import build_lock
    with build_lock(Path({index!r})):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_rebuild_while_a_cli_build_holds_the_lock_is_409(built: Settings, tmp_path: Path):
    script = tmp_path / "hold.py"
    script.write_text(HOLD_LOCK.format(repo=str(REPO), index=str(built.index_dir)))
    with app_client(built) as c:
        proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
            r = c.post("/api/index/rebuild")
            assert r.status_code == 409 and r.json()["error"]["type"] == "busy"
            assert "another build" in r.json()["error"]["message"]
        finally:
            proc.communicate("done\n", timeout=10)
        assert c.post("/api/index/rebuild").status_code == 202  # free again
        c.app.state.builds.join(60)


def test_rebuild_while_the_lock_is_held_in_process_is_409(built: Settings):
    with app_client(built) as c, build_lock(built.index_dir):
        assert c.post("/api/index/rebuild").status_code == 409


# --- load limits ----------------------------------------------------------------------------


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another client has its own budget
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert TokenBuckets(rate=0, burst=1).take("a") == 0.0  # 0 turns the limit off


def test_asking_too_fast_is_429_with_retry_after(built: Settings):
    with app_client(built, ask_rate=0.5, ask_burst=2) as c:
        assert [c.post("/api/ask", json=ASK).status_code for _ in range(2)] == [200, 200]
        r = c.post("/v1/chat/completions",
                   json={"model": "qa", "messages": [{"role": "user", "content": "tea?"}]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limited"
        assert r.headers["x-content-type-options"] == "nosniff"  # still a guarded response
        assert c.get("/api/documents").status_code == 200  # reading is not rationed


def test_rebuilds_have_a_stricter_budget(built: Settings):
    with app_client(built) as c:
        codes = []
        for _ in range(7):
            codes.append(c.post("/api/index/rebuild").status_code)
            c.app.state.builds.join(60)
        assert codes[:5] == [202] * 5 and codes[5:] == [429, 429]


def test_work_gate_refuses_beyond_its_queue_and_times_out():
    async def scenario() -> None:
        gate = WorkGate(workers=1, max_queue=1, timeout=0.3)
        release = threading.Event()
        running = [asyncio.ensure_future(gate.run(release.wait, 5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert gate.pending == 2
        with pytest.raises(OverloadedError) as overloaded:
            await gate.run(time.sleep, 0)
        assert overloaded.value.retry_after >= 1
        with pytest.raises(TimedOutError):
            await running[0]
        release.set()
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.sleep(0.05)
        assert gate.pending == 0 and await gate.run(sum, [1, 2]) == 3
        gate.close()

    asyncio.run(scenario())


class Slow(FakeEmbedder):
    def embed(self, texts: Any, progress: bool = False) -> Any:
        time.sleep(0.6)
        return super().embed(texts, progress)


def test_slow_question_is_503_with_retry_after(built: Settings):
    with app_client(built, Slow, ask_timeout=0.2) as c:
        r = c.post("/api/ask", json=ASK)
        assert r.status_code == 503 and r.json()["error"]["type"] == "timeout"
        assert int(r.headers["retry-after"]) >= 1


def test_full_queue_is_503_not_a_hang(built: Settings):
    with app_client(built, Slow, workers=1, max_queue=0) as c:
        first = threading.Thread(target=c.post, args=("/api/ask",), kwargs={"json": ASK})
        first.start()
        wait_for(lambda: c.app.state.gate.pending == 1)
        r = c.post("/api/ask", json=ASK)
        first.join()
        assert r.status_code == 503 and r.json()["error"]["type"] == "overloaded"
        assert r.headers["retry-after"]


def test_streams_over_the_cap_are_503(built: Settings):
    with app_client(built, max_streams=1) as c:
        body = {"model": "qa", "stream": True, "messages": [{"role": "user", "content": "tea?"}]}
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        assert c.app.state.streams.open == 0  # the finished stream gave its slot back
        c.app.state.streams.open = 1  # as if another client were still reading one
        r = c.post("/v1/chat/completions", json=body)
        assert r.status_code == 503 and r.json()["error"]["type"] == "too_many_streams"
        assert c.get("/api/index/status/stream").status_code == 503
        c.app.state.streams.open = 0


# --- CORS, headers -------------------------------------------------------------------------


def test_cors_is_off_by_default(built: Settings):
    with app_client(built) as c:
        r = c.post("/api/ask", json=ASK, headers={"origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in r.headers
        pre = c.options("/api/ask", headers={"origin": "https://elsewhere.example",
                                             "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in pre.headers


def test_cors_allows_only_the_configured_origins(built: Settings):
    with app_client(built, cors_origins=["https://app.example"]) as c:
        pre = c.options("/api/ask", headers={"origin": "https://app.example",
                                             "access-control-request-method": "POST",
                                             "access-control-request-headers": "content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        r = c.post("/api/ask", json=ASK, headers={"origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        other = c.post("/api/ask", json=ASK, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QA_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("path", ["/", "/admin", "/api/index", "/metrics", "/docs", "/redoc",
                                  "/openapi.json"])
def test_every_page_carries_the_security_headers(built: Settings, path: str):
    with app_client(built) as c:
        r = c.get(path)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"


# --- logs and metrics ----------------------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "qa.access"]


def test_each_request_logs_one_json_line_with_its_id(built: Settings,
                                                     caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="qa.access")
    with app_client(built) as c:
        r = c.post("/api/ask", json=ASK)
        given = c.get("/healthz", headers={"x-request-id": "trace-42"})
        abstain = c.post("/api/ask", json={"question": "???"})
    lines = access_lines(caplog)
    ask = next(x for x in lines if x["id"] == r.headers["x-request-id"])
    assert ask["route"] == "/api/ask" and ask["status"] == 200 and ask["ms"] > 0
    assert ask["abstained"] is False and ask["index_version"] == r.json()["index_version"]
    assert given.headers["x-request-id"] == "trace-42"
    assert any(x["id"] == "trace-42" and x["index_version"] for x in lines)
    assert next(x for x in lines if x["id"] == abstain.headers["x-request-id"])["abstained"]


def test_the_token_never_reaches_the_logs(built: Settings, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with app_client(built, admin_token=TOKEN) as c:
        good = {"authorization": f"Bearer {TOKEN}"}
        bad = {"authorization": f"Bearer {TOKEN}-wrong"}
        assert c.post("/api/index/rebuild", headers=good).status_code == 202
        c.app.state.builds.join(60)
        assert c.post("/api/index/rebuild", headers=bad).status_code == 403
        assert c.post("/api/index/reload", headers=good).status_code == 200
        assert c.post("/admin", data={"token": TOKEN + "x"}).status_code == 403
        assert c.post("/api/ask", json=ASK, headers=good).status_code == 200
    assert len(access_lines(caplog)) >= 5
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.args) for r in caplog.records)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, read with the client library's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_in_prometheus_text(built: Settings):
    with app_client(built) as c:
        for _ in range(2):
            c.post("/api/ask", json=ASK)
        c.get("/api/documents/nope")
        version = c.get("/healthz").json()["index_version"]
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = metric_samples(r.text)
    assert samples[("qa_requests_total", (("method", "POST"), ("route", "/api/ask"),
                                          ("status", "200")))] == 2
    assert samples[("qa_requests_total", (("method", "GET"), ("route", "/api/documents/{doc_id}"),
                                          ("status", "404")))] == 1
    assert samples[("qa_request_duration_seconds_count", (("route", "/api/ask"),))] == 2
    assert samples[("qa_request_duration_seconds_bucket", (("le", "+Inf"),
                                                           ("route", "/api/ask")))] == 2
    assert samples[("qa_index_info", (("version", version),))] == 1
    assert samples[("qa_answers_total", (("abstained", "false"),))] == 2
    assert samples[("qa_index_chunks", ())] > 0
    for line in r.text.splitlines():
        assert line.startswith("#") or line.startswith("qa_"), line


# --- the admin page without JavaScript ------------------------------------------------------


@pytest.fixture
def guarded(built: Settings) -> Iterator[TestClient]:
    with app_client(built, admin_token=TOKEN) as c:
        yield c


def test_admin_page_form_needs_the_token(guarded: TestClient):
    page = guarded.get("/admin")
    assert 'id="admin-token"' in page.text and "<script>" not in page.text
    assert guarded.post("/admin", data={"token": "nope"}).status_code == 403
    cross = guarded.post("/admin", data={"token": TOKEN},
                         headers={"origin": "https://evil.example"})
    assert cross.status_code == 403 and "this site" in cross.text
    ok = guarded.post("/admin", data={"token": TOKEN, "full": "1"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/admin"
    guarded.app.state.builds.join(60)
    done = guarded.get("/admin").text
    assert "Done: version" in done and 'value="100"' in done


def test_chunked_body_over_the_limit_is_413(built: Settings):
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(70):
            yield b"x" * 8192
        yield b'"}'

    with app_client(built) as c:
        r = c.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["type"] == "too_large"
        form = c.post("/", content=chunks(),
                      headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status_code == 413
