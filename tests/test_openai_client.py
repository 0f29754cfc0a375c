"""The real `openai` client against a real `qa serve` process on the bundled corpus and model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import REPO, free_port

pytestmark = pytest.mark.model

Q1 = "Which consortium will mass-produce 2-nanometre chips in Japan?"


def start_server(index_dir: Path, port: int, log: Path) -> subprocess.Popen:
    """`qa serve` on the bundled corpus; returns once /healthz answers."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--corpus", str(REPO / "corpus"),
         "--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=index_dir.parent)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"qa serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise AssertionError(f"qa serve did not become ready:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    proc = start_server(root / "index", port, root / "serve.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = (root / "serve.log").read_text()
    assert "building one from" in log  # the missing index was built at start-up, and logged
    assert "Traceback" not in log


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


def test_models(client: openai.OpenAI):
    assert [m.id for m in client.models.list()] == ["qa"]


def test_completion_has_markers_sources_and_citations(client: openai.OpenAI):
    done = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": Q1}])
    content = done.choices[0].message.content
    assert "Rapidus" in content and "[1]" in content
    assert "\nSources:\n[1] The EU and Japan Build a Digital Partnership" in content
    citations = done.model_extra["citations"]
    assert citations[0]["n"] == 1 and citations[0]["path"] == "eu-japan-digital-partnership.txt"
    assert citations[0]["highlight"] and done.model_extra["qa"]["abstained"] is False


def test_stream_never_loses_the_citations(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="qa", stream=True, messages=[{"role": "user", "content": Q1}])
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Rapidus" in content and "[1]" in content and "Sources:" in content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["n"] == 1


def test_follow_up_resolves_the_pronoun(client: openai.OpenAI):
    first = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": Q1}])
    messages = [
        {"role": "user", "content": Q1},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "When will it produce them?"},
    ]
    stream = client.chat.completions.create(model="qa", stream=True, messages=messages)
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "2027" in content
    searched = chunks[-1].model_extra["qa"]["query"]
    assert searched.startswith("When will it produce them? ") and "Rapidus" in searched


def test_errors_reach_the_client_as_api_errors(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError, match="serves 'qa'"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q1}])
    with pytest.raises(openai.UnprocessableEntityError, match="empty"):
        client.chat.completions.create(model="qa", messages=[{"role": "user", "content": " "}])
    with pytest.raises(openai.UnprocessableEntityError, match="limit"):
        client.chat.completions.create(model="qa",
                                       messages=[{"role": "user", "content": "x" * 5000}])
