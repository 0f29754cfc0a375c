"""A damaged index never answers 500 or kills the server, and version switches leak nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.build import build_index
from qa.index.index_dir import IndexDir
from qa.search.engine import Engine
from qa.server.api import create_app

from .conftest import REPO, FakeEmbedder, free_port

ASK = {"question": "Which company brought tea to London?"}
DAMAGES = ["truncated vectors", "manifest", "missing version", "garbage CURRENT"]


def app_client(settings: Settings, **update: Any) -> TestClient:
    update = {"admin_rate": 0.0, **update}
    return TestClient(create_app(settings.model_copy(update=update), FakeEmbedder))


def current_folder(settings: Settings) -> Path:
    index = IndexDir(settings.index_dir)
    return index.versions / str(index.current_name())


def damage(settings: Settings, kind: str) -> None:
    folder = current_folder(settings)
    if kind == "truncated vectors":
        path = folder / "vectors.npy"
        os.truncate(path, path.stat().st_size // 2)
    elif kind == "manifest":
        (folder / "manifest.json").write_text('{"format_version": 3, "counts": ')
    elif kind == "missing version":
        (settings.index_dir / "CURRENT").write_text("v999999-20000101T000000\n")
    else:
        (settings.index_dir / "CURRENT").write_bytes(b"\x00\xff garbage / ..\n")


def assert_unavailable(response: httpx.Response, settings: Settings) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "index_unavailable"
    assert "qa index" in error["message"]
    for secret in (str(settings.index_dir), str(settings.corpus_dir), "/tmp", "versions"):
        assert secret not in error["message"]


def add_moon(settings: Settings) -> None:
    (settings.corpus_dir / "moon.txt").write_text("The Moon orbits the Earth every 27 days.\n")


# --- verified at load -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vectors", "postings", "manifest counts"])
def test_a_version_that_disagrees_with_its_manifest_is_not_loaded(built: Settings, kind: str):
    from qa.errors import IndexCorruptError
    from qa.index.store import IndexVersion

    folder = current_folder(built)
    if kind == "vectors":
        vectors = np.load(folder / "vectors.npy")
        np.save(folder / "vectors.npy", vectors[:-1])
    elif kind == "postings":
        offsets = np.load(folder / "postings_offsets.npy")
        np.save(folder / "postings_offsets.npy", offsets[::-1])
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["counts"]["chunks"] += 1
        (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError):
        IndexVersion(folder)


# --- a damaged index gives 503, never 500 ---------------------------------------------------


@pytest.mark.parametrize("kind", DAMAGES)
def test_damaged_index_at_start_up_is_503_with_a_path_free_message(built: Settings, kind: str):
    damage(built, kind)
    with app_client(built) as c:
        assert_unavailable(c.post("/api/ask", json=ASK), built)
        assert_unavailable(c.get("/healthz"), built)
        assert_unavailable(c.get("/api/documents"), built)
        chat = {"model": "qa", "messages": [{"role": "user", "content": ASK["question"]}]}
        assert c.post("/v1/chat/completions", json=chat).status_code == 503
        assert c.get("/api/index/status").status_code == 200
        assert c.get("/metrics").status_code == 200


@pytest.mark.parametrize("kind", DAMAGES)
def test_reload_to_a_broken_version_keeps_the_old_one(built: Settings, kind: str):
    with app_client(built, reload_interval=0.1) as c:
        before = c.get("/healthz").json()["index_version"]
        add_moon(built)
        # The poller waits while the new version is published and damaged: it must never see
        # the version whole, however the build's last milliseconds are timed.
        with c.app.state.engine._switch_lock:  # type: ignore[attr-defined]
            build_index(built, FakeEmbedder)  # a new version, which is then damaged
            damage(built, kind)
        time.sleep(0.3)  # the poller tried it
        for _ in range(3):
            r = c.post("/api/ask", json=ASK)
            assert r.status_code == 200 and r.json()["index_version"] == before
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json()["index_version"] == before
        assert_unavailable(c.post("/api/index/reload"), built)  # the admin hears why
        assert c.post("/api/ask", json=ASK).json()["index_version"] == before
        report = build_index(built, FakeEmbedder, full=True)  # repaired: switched to
        r = c.post("/api/index/reload")  # (or the poller was first)
        assert r.status_code == 200 and r.json()["serving_version"] == report.version
        assert c.post("/api/ask", json=ASK).json()["index_version"] == report.version


# --- a version switch leaks nothing ---------------------------------------------------------


def open_fds() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


def test_rebuilds_and_reloads_do_not_leak_files(built: Settings):
    with app_client(built, reload_interval=0) as c:

        def cycle(i: int) -> None:
            (built.corpus_dir / f"extra{i}.txt").write_text(f"Extra note {i} about comets.\n")
            report = build_index(built, FakeEmbedder)
            assert c.post("/api/index/reload").json()["serving_version"] == report.version
            assert c.post("/api/ask", json=ASK).status_code == 200

        cycle(0)
        start = len(open_fds())
        for i in range(1, 7):
            cycle(i)
        assert len(open_fds()) <= start + 2
        index = str(built.index_dir)
        assert not [f for f in open_fds() if f.startswith(index) and f.endswith("(deleted)")]


def test_a_replaced_version_closes_after_its_last_request(built: Settings):
    engine = Engine(built, FakeEmbedder)
    with engine.lease() as old:
        add_moon(built)
        build_index(built, FakeEmbedder)
        assert engine.reload_if_changed()
        assert old.documents()  # still open for the request that holds it
    with pytest.raises(Exception, match="closed"):
        old.documents()
    engine.close()


def test_concurrent_reloads_load_one_version(built: Settings, monkeypatch: pytest.MonkeyPatch):
    engine = Engine(built, FakeEmbedder)
    add_moon(built)
    build_index(built, FakeEmbedder)
    loads = []
    real = IndexDir.open_current

    def counted(self: IndexDir) -> Any:
        loads.append(1)
        time.sleep(0.1)
        return real(self)

    monkeypatch.setattr(IndexDir, "open_current", counted)
    threads = [threading.Thread(target=engine.reload_if_changed) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(loads) == 1
    engine.close()


def test_reload_interval_zero_turns_reload_checks_off(built: Settings):
    with app_client(built, reload_interval=0) as c:
        before = c.get("/healthz").json()["index_version"]
        add_moon(built)
        build_index(built, FakeEmbedder)
        time.sleep(0.2)
        assert c.post("/api/ask", json=ASK).json()["index_version"] == before
        assert c.get("/healthz").json()["index_version"] == before


# --- against a real server process ----------------------------------------------------------

SERVER = textwrap.dedent("""
    import sys, threading, time
    sys.path.insert(0, {repo!r})
    import uvicorn
    from qa.server.api import create_app
    from qa.cli import SHUTDOWN_GRACE
    from qa.config import Settings
    from tests.conftest import FakeEmbedder

    class HangingBuilds(FakeEmbedder):
        def embed(self, texts, progress=False):
            while threading.current_thread().name.startswith("rebuild-"):
                time.sleep(0.1)  # a build that never finishes
            return super().embed(texts, progress)

    uvicorn.run(create_app(Settings(), HangingBuilds), host="127.0.0.1", port={port},
                log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE)
""")


@pytest.fixture
def server(built: Settings, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER.format(repo=str(REPO), port=port))
    env = {**os.environ, "QA_CORPUS_DIR": str(built.corpus_dir),
           "QA_INDEX_DIR": str(built.index_dir), "QA_MIN_CONFIDENCE": "0",
           "QA_MAX_STREAMS": "64", "QA_ASK_RATE": "0", "QA_ADMIN_RATE": "0"}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=str(tmp_path))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server died at start-up"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_served_files_truncated_in_place_do_not_kill_the_server(server, built: Settings):
    proc, url = server
    assert httpx.post(f"{url}/api/ask", json=ASK, timeout=30).status_code == 200
    folder = current_folder(built)
    for name in ("vectors.npy", "postings_offsets.npy", "postings_chunks.npy",
                 "postings_impacts.npy", "vectors.faiss"):
        os.truncate(folder / name, 0)
    for _ in range(3):
        assert httpx.post(f"{url}/api/ask", json=ASK, timeout=30).status_code == 200
    sqlite = folder / "chunks.sqlite"
    os.truncate(sqlite, sqlite.stat().st_size // 3)
    for question in ("Where do penguins live?", "Which river reaches the Black Sea?"):
        r = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=30)
        assert r.status_code in (200, 503), r.text
    assert_unavailable(httpx.get(f"{url}/healthz", timeout=10), built)
    assert proc.poll() is None


def test_event_streams_hold_no_thread_and_shutdown_skips_a_hung_build(server):
    proc, url = server
    r = httpx.post(f"{url}/api/index/rebuild", json={"full": True}, timeout=10)
    assert r.status_code == 202, r.text

    def threads() -> int:
        return len(os.listdir(f"/proc/{proc.pid}/task"))

    before = threads()
    n = 48  # more than the 40 threads of the server's default pool
    with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=n + 4)) as client:
        streams = [client.stream("GET", f"{url}/api/index/status/stream") for _ in range(n)]
        opened = [s.__enter__() for s in streams]
        try:
            assert all(s.status_code == 200 for s in opened)
            firsts = [next(s.iter_lines()) for s in opened]
            assert all(line.startswith("event: status") for line in firsts)
            time.sleep(1.5)
            assert threads() < before + 10
            assert client.get(f"{url}/healthz").status_code == 200
            assert client.post(f"{url}/api/index/reload").status_code == 200
            assert client.get(f"{url}/api/index/status").json()["state"] == "running"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            assert time.monotonic() - started < 15
        finally:
            for s in streams:
                try:
                    s.__exit__(None, None, None)
                except httpx.HTTPError:
                    pass
