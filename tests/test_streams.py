"""Event streams over a real server: framing, a slot per stream, freed when the client leaves."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from qa.config import Settings
from qa.server.api import create_app

from .conftest import FakeEmbedder, free_port, uvicorn_thread

RELEASE = threading.Event()


class Held(FakeEmbedder):
    """Embeds only once the test lets it, so a rebuild stays running as long as needed."""

    def embed(self, texts: Any, progress: bool = False) -> Any:
        RELEASE.wait(30)
        return super().embed(texts, progress)


@pytest.fixture
def served(built: Settings) -> Iterator[tuple[FastAPI, str]]:
    RELEASE.clear()
    app = create_app(built.model_copy(update={"max_streams": 2}), Held)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    try:
        with uvicorn_thread(config) as url:
            yield app, url
    finally:
        RELEASE.set()


def events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events as dicts of their fields, comments (keep-alive pings) skipped."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


def wait_until(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_status_stream_follows_a_build_to_its_end(served: tuple[FastAPI, str]):
    app, url = served
    assert httpx.post(f"{url}/api/index/rebuild", json={"full": True}).status_code == 202
    with httpx.stream("GET", f"{url}/api/index/status/stream", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        received = events(r.iter_lines())
        first = next(received)
        assert first["event"] == "status" and json.loads(first["data"])["state"] == "running"
        assert app.state.streams.open == 1
        RELEASE.set()
        states = [json.loads(e["data"])["state"] for e in received]  # ends with the build
    assert states[-1] == "succeeded"
    wait_until(lambda: app.state.streams.open == 0)


def test_a_client_that_leaves_gives_its_slot_back(served: tuple[FastAPI, str]):
    app, url = served
    assert httpx.post(f"{url}/api/index/rebuild", json={"full": True}).status_code == 202
    for _ in range(3):  # more than the cap of 2: each slot comes back when its client leaves
        with httpx.stream("GET", f"{url}/api/index/status/stream", timeout=30) as r:
            assert r.status_code == 200
            assert next(events(r.iter_lines()))["event"] == "status"
        wait_until(lambda: app.state.streams.open == 0)
    with httpx.stream("GET", f"{url}/api/index/status/stream", timeout=30) as a, \
            httpx.stream("GET", f"{url}/api/index/status/stream", timeout=30) as b:
        assert a.status_code == b.status_code == 200
        refused = httpx.get(f"{url}/api/index/status/stream", timeout=30)
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "too_many_streams"
    wait_until(lambda: app.state.streams.open == 0)
