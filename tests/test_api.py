"""The JSON API and the OpenAI-compatible routes, through TestClient so the lifespan runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.ingest import document_id
from qa.server.api import create_app
from qa.server.schemas import MAX_BODY_BYTES

from .conftest import FakeEmbedder

TEA = "Which company brought tea to London?"


@pytest.fixture
def client(built: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built, FakeEmbedder)) as c:
        yield c


def assert_error(response, status: int, kind: str | None = None, says: str = "") -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"] and says in body["message"]
    if kind:
        assert body["type"] == kind
    return body


def test_ask_returns_cited_answer_with_exact_offsets(client: TestClient):
    r = client.post("/api/ask", json={"question": "Which company brought tea to London?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["abstained"] and "[1]" in body["answer"]
    assert body["query"] == body["question"]
    first = body["citations"][0]
    assert first["title"] == "Tea history" and first["path"] == "page.html"
    doc = client.get(f"/api/documents/{first['document_id']}").json()
    assert doc["text"][first["start"]:first["end"]] == first["text"]
    a, b = first["highlight"][0]
    assert "East India Company" in doc["text"][a:b]
    assert first["url"].startswith(f"/documents/{first['document_id']}?")


def test_start_up_builds_a_missing_index(settings: Settings):
    factory_calls = []

    def factory() -> FakeEmbedder:
        factory_calls.append(1)
        return FakeEmbedder()

    assert not (settings.index_dir / "CURRENT").exists()
    with TestClient(create_app(settings, factory)) as c:
        index = c.get("/api/index").json()
        assert index["documents"] == 6 and index["chunks"] > 0
        assert index["version"].startswith("v000001")
        for _ in range(3):
            r = c.post("/api/ask", json={"question": "Where do penguins live?"})
            assert r.status_code == 200
    assert len(factory_calls) == 1  # one model for the build and every request


def test_documents_and_health(client: TestClient):
    docs = client.get("/api/documents").json()
    assert {d["path"] for d in docs} >= {"page.html", "report.pdf", "sub/bees.md"}
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == len(docs)


def test_document_highlight_reports_page_and_section(client: TestClient):
    pdf = client.get(f"/api/documents/{document_id('report.pdf')}").json()
    at = pdf["text"].index("penguins")
    r = client.get(f"/api/documents/{pdf['id']}", params={"highlight": f"{at}-{at + 8}"})
    span = r.json()["highlight"][0]
    assert span["text"] == "penguins" and span["page"] == 2
    bees = client.get(f"/api/documents/{document_id('sub/bees.md')}").json()
    at = bees["text"].index("waggle")
    span = client.get(f"/api/documents/{bees['id']}?highlight={at}-{at + 6}").json()["highlight"][0]
    assert span["section"] == "Dance"


def test_follow_up_is_resolved_and_shown(client: TestClient):
    first = client.post("/api/ask", json={"question": TEA}).json()
    r = client.post("/api/ask", json={"question": "When did it do that?", "history": [
        {"role": "user", "content": first["question"]},
        {"role": "assistant", "content": first["answer"]}]})
    body = r.json()
    assert body["question"] == "When did it do that?"
    assert body["query"] != body["question"] and "london" in body["query"].lower()
    assert "1660s" in body["answer"]


def test_abstention_is_flagged(built: Settings):
    strict = built.model_copy(update={"min_confidence": 1.0})
    with TestClient(create_app(strict, FakeEmbedder)) as c:
        body = c.post("/api/ask", json={"question": "Where do penguins live?"}).json()
    assert body["abstained"] is True and "does not answer" in body["answer"]


@pytest.mark.parametrize("payload,status,kind,says", [
    ({}, 422, "invalid_request", "question"),
    ({"question": 42}, 422, "invalid_request", "question"),
    ({"question": None}, 422, "invalid_request", "question"),
    ({"question": ""}, 422, "bad_question", "empty"),
    ({"question": " \n\t "}, 422, "bad_question", "empty"),
    ({"question": "x" * 2001}, 422, "bad_question", "the limit is 2000"),
    ({"question": "tea?", "k": 0}, 422, "invalid_request", "k"),
    ({"question": "tea?", "k": 21}, 422, "invalid_request", "k"),
    ({"question": "tea?", "k": "5"}, 422, "invalid_request", "k"),
    ({"question": "tea?", "k": 2.5}, 422, "invalid_request", "k"),
    ({"question": "tea?", "history": "hello"}, 422, "invalid_request", "history"),
    ({"question": "tea?", "history": [{"role": "system", "content": "x"}]}, 422, None, "role"),
    ({"question": "tea?", "history": [{"role": "user"}]}, 422, None, "content"),
    ({"question": "tea?", "history": [{"role": "user", "content": "x" * 4001}]}, 422, None,
     "4000"),
    ({"question": "tea?", "history": [{"role": "user", "content": "x"}] * 21}, 422, None, "20"),
    ({"question": "tea?", "colour": "red"}, 422, None, "colour"),
    ([1, 2], 422, "invalid_request", ""),
])
def test_bad_ask_requests_are_clear_4xx(client: TestClient, payload, status, kind, says):
    assert_error(client.post("/api/ask", json=payload), status, kind, says)


@pytest.mark.parametrize("raw,status,says", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"question": "tea?"', 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"", 422, "empty"),
])
def test_invalid_json_is_4xx(client: TestClient, raw: bytes, status: int, says: str):
    r = client.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert_error(r, status, says=says)


def test_oversized_body_is_413(client: TestClient):
    r = client.post("/api/ask", content=b"x" * (MAX_BODY_BYTES + 1),
                    headers={"content-type": "application/json"})
    assert_error(r, 413, "too_large")


@pytest.mark.parametrize("doc_id", [
    "0123456789abcdef", "nope", "..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "0123456789ABCDEF", "0123456789abcdef0", "'; DROP TABLE documents; --",
])
def test_unknown_or_path_like_document_ids_are_404(client: TestClient, doc_id: str):
    r = client.get(f"/api/documents/{doc_id}")
    assert r.status_code == 404, r.text
    assert "root:" not in r.text and r.json()["error"]["message"]


def test_dot_dot_paths_never_leave_the_app(client: TestClient):
    for url in ["/api/documents/../../etc/passwd", "/api/documents/..%2f..%2fetc%2fpasswd",
                "/static/../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd"]:
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code)
        assert "root:" not in r.text


@pytest.mark.parametrize("highlight", ["5", "a-b", "10-5", "0-999999", "1-2,", "-1-3",
                                       ",".join(["1-2"] * 21)])
def test_bad_highlight_is_422(client: TestClient, highlight: str):
    r = client.get(f"/api/documents/{document_id('page.html')}", params={"highlight": highlight})
    assert_error(r, 422, says="highlight")


def test_unknown_route_and_method(client: TestClient):
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.get("/api/ask"), 405, "method_not_allowed")


def test_index_gone_after_start_keeps_the_old_version(client: TestClient, built: Settings):
    before = client.get("/healthz").json()["index_version"]
    (built.index_dir / "CURRENT").write_text("v999999-missing\n")
    r = client.post("/api/ask", json={"question": "tea?"})
    assert r.status_code == 200 and r.json()["index_version"] == before
    assert client.get("/healthz").json()["index_version"] == before


def test_rebuild_through_the_admin_routes_switches_the_served_version(built: Settings):
    with TestClient(create_app(built, FakeEmbedder)) as c:
        before = c.get("/healthz").json()["index_version"]
        (built.corpus_dir / "moon.txt").write_text("The Moon orbits the Earth every 27 days.\n")
        r = c.post("/api/index/rebuild", json={"full": False})
        assert r.status_code == 202, r.text
        c.app.state.builds.join(timeout=60)
        assert c.get("/api/index/status").json()["state"] == "succeeded"
        assert c.get("/healthz").json()["index_version"] != before
        body = c.post("/api/ask", json={"question": "How often does the Moon orbit the Earth?"})
        assert body.json()["citations"][0]["path"] == "moon.txt"


def test_admin_routes_need_the_token(built: Settings):
    guarded = built.model_copy(update={"admin_token": "s3cret"})
    with TestClient(create_app(guarded, FakeEmbedder)) as c:
        assert_error(c.post("/api/index/rebuild"), 403, "forbidden")
        r = c.post("/api/index/rebuild", headers={"authorization": "Bearer s3cret"})
        assert r.status_code == 202
        c.app.state.builds.join(timeout=60)


def test_openapi_page_lists_the_routes(client: TestClient):
    spec = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/documents", "/api/documents/{doc_id}", "/api/index", "/healthz",
            "/v1/chat/completions", "/v1/models"} <= set(spec["paths"])
    assert "AskRequest" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


# --- OpenAI-compatible routes (the real client is in test_openai_client.py) -------------------


def chat(client: TestClient, content: str, **more) -> dict:
    messages = [{"role": "user", "content": content}]
    r = client.post("/v1/chat/completions", json={"model": "qa", "messages": messages, **more})
    assert r.status_code == 200, r.text
    return r.json()


def test_chat_completion_carries_citations(client: TestClient):
    body = chat(client, "Where do penguins live?")
    assert body["object"] == "chat.completion" and body["model"] == "qa"
    content = body["choices"][0]["message"]["content"]
    assert "[1]" in content and "\nSources:\n[1] " in content and "report.pdf" in content
    assert body["citations"][0]["path"] == "report.pdf" and body["citations"][0]["page"] == 2
    assert body["qa"]["abstained"] is False


def test_chat_completion_stream_ends_with_citations(client: TestClient):
    messages = [{"role": "user", "content": "Where do penguins live?"}]
    r = client.post("/v1/chat/completions",
                    json={"model": "qa", "stream": True, "messages": messages})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: "):] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "[1]" in content and "Sources:" in content
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["citations"][0]["path"] == "report.pdf"


def test_chat_uses_earlier_messages_as_history(client: TestClient):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": TEA},
        {"role": "assistant", "content": "The East India Company brought tea to London [1]."},
        {"role": "user", "content": [{"type": "text", "text": "When did it do that?"}]},
    ]
    body = client.post("/v1/chat/completions",
                       json={"model": "qa", "temperature": 0.2, "messages": messages}).json()
    assert "london" in body["qa"]["query"].lower()
    assert "1660s" in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("payload,status,says", [
    ({"model": "gpt-4", "messages": [{"role": "user", "content": "tea?"}]}, 404, "qa"),
    ({"model": "qa", "messages": []}, 422, "messages"),
    ({"model": "qa"}, 422, "messages"),
    ({"model": "qa", "messages": [{"role": "user", "content": ""}]}, 422, "empty"),
    ({"model": "qa", "messages": [{"role": "assistant", "content": "hi"}]}, 422, "last message"),
    ({"model": "qa", "messages": [{"role": "wizard", "content": "hi"}]}, 422, "role"),
    ({"model": "qa", "messages": [{"role": "user", "content": "tea?"}], "k": 99}, 422, "k"),
])
def test_bad_chat_requests(client: TestClient, payload, status, says):
    assert_error(client.post("/v1/chat/completions", json=payload), status, says=says)


def test_models(client: TestClient):
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["qa"]


def test_security_headers(client: TestClient):
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_no_index_and_no_corpus_fails_start_up(tmp_path: Path):
    s = Settings(corpus_dir=tmp_path / "missing", index_dir=tmp_path / "idx")
    with pytest.raises(Exception, match="corpus folder not found"):
        with TestClient(create_app(s, FakeEmbedder)):
            pass
