"""Schemathesis against the app's own OpenAPI schema: no 5xx, every response as documented."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from starlette.types import Receive, Scope, Send

from qa.config import Settings
from qa.server.api import create_app

from .conftest import FakeEmbedder

TOKEN = "fuzz-token"
# Cases per operation and generation mode; QA_FUZZ_EXAMPLES raises it for a longer run.
EXAMPLES = int(os.environ.get("QA_FUZZ_EXAMPLES", "150"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def without_lifespan(app: FastAPI) -> Any:
    """The app for schemathesis; the test runs the real lifespan itself so it ends with the test."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


@pytest.fixture
def running(built: Settings) -> Iterator[FastAPI]:
    s = built.model_copy(update={"admin_token": TOKEN, "ask_rate": 0.0, "reload_interval": 0})
    app = create_app(s, FakeEmbedder)
    with TestClient(app):
        yield app
        app.state.builds.join(60)


def fuzz(op: Any, mode: Any, checks: list[Any]) -> int:
    """Run generated cases of one operation in one mode; the number of cases run."""
    from schemathesis.generation import GenerationMode

    count = [0]

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        count[0] += 1
        # Every other call carries the admin token, so the guarded routes are exercised too.
        headers = {"authorization": f"Bearer {TOKEN}"} if count[0] % 2 else None
        case.call_and_validate(headers=headers, checks=checks)

    try:
        run()
    except Unsatisfiable:
        # Nothing can break the schema of an operation without inputs.
        assert mode == GenerationMode.NEGATIVE, op.label
    return count[0]


def test_every_operation_answers_as_documented(running: FastAPI):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance, response_headers_conformance]
    schema = schemathesis.openapi.from_asgi("/openapi.json", without_lifespan(running))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    ran: dict[str, int] = {}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            ran[f"{op.label} {mode.value}"] = fuzz(op, mode, checks)
            running.state.builds.join(60)
    total = sum(ran.values())
    print(f"\nschemathesis: {total} cases over {len(operations)} operations")
    assert total >= len(operations) * 2 * min(EXAMPLES, 5)


def test_every_method_on_every_path_is_a_clean_4xx(running: FastAPI):
    with TestClient(running) as c:
        spec = c.get("/openapi.json").json()
        sent = 0
        for path, ops in spec["paths"].items():
            url = path.replace("{doc_id}", "0123456789abcdef")
            for method in METHODS:
                if method.lower() in ops or (method == "HEAD" and "get" in ops):
                    continue
                r = c.request(method, url)
                sent += 1
                assert r.status_code == 405, (method, path, r.status_code)
                if method != "HEAD":
                    assert r.json()["error"]["type"] == "method_not_allowed"
        assert sent > 40
