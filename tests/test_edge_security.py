"""The app's edge: cross-site posts, Host names, forwarded client addresses, unencodable text and
server paths in error messages; against TestClient and against the app as `qa serve` runs it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qa.config import Settings
from qa.server.api import create_app

from .conftest import FakeEmbedder, free_port, uvicorn_thread

ASK = {"question": "Which company brought tea to London?"}
CHAT = {"model": "qa", "messages": [{"role": "user", "content": ASK["question"]}]}
EVIL = "https://evil.example"
ABSOLUTE_PATH = re.compile(r"(^|[\s'\"(=:])/[\w.-]+/")


def app_client(settings: Settings, **update: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=update), FakeEmbedder))


# --- cross-site requests --------------------------------------------------------------------

# (method, path, keyword arguments of the request, whether a browser form posts it)
STATE_CHANGING = [
    ("/api/index/rebuild", {"json": {}}, False),
    ("/api/index/reload", {}, False),
    ("/api/ask", {"json": ASK}, False),
    ("/v1/chat/completions", {"json": CHAT}, False),
    ("/", {"data": {"question": ASK["question"],
                    "thread": json.dumps([{"question": "q", "answer": "see [1]"}])}}, True),
    ("/admin", {"data": {"full": "1"}}, True),
]


@pytest.mark.parametrize("path,kwargs,form", STATE_CHANGING)
@pytest.mark.parametrize("headers", [
    {"origin": EVIL},
    {"origin": "null"},
    {"origin": "http://testserver.evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},  # another port of localhost is another origin
], ids=["origin", "null-origin", "lookalike-origin", "fetch-cross-site", "fetch-same-site"])
def test_cross_site_posts_are_refused(built: Settings, path: str, kwargs: dict[str, Any],
                                      form: bool, headers: dict[str, str]):
    with app_client(built) as c:
        r = c.post(path, headers={**headers, "accept": "text/html" if form else "*/*"}, **kwargs)
        assert r.status_code == 403, r.text
        if form:  # the error page, not a chat thread or the admin page
            assert r.headers["content-type"].startswith("text/html")
            assert "this site" in r.text and "Which company" not in r.text
            assert 'class="turn' not in r.text
        else:
            assert r.json()["error"]["type"] == "forbidden"
            assert "this site" in r.json()["error"]["message"]
        assert c.get("/api/index/status").json()["state"] == "idle"  # no build started


@pytest.mark.parametrize("headers", [
    {},
    {"origin": "http://testserver"},
    {"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"},
    {"origin": "http://localhost:8000", "host": "localhost:8000"},
    {"origin": "http://[::1]:8000", "host": "[::1]:8000"},
    {"origin": "http://localhost", "host": "localhost:80"},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},
], ids=["no-headers", "testserver", "127.0.0.1", "localhost", "ipv6", "default-port",
        "fetch-same-origin", "fetch-none"])
def test_same_origin_and_header_less_posts_still_work(built: Settings, headers: dict[str, str]):
    with app_client(built) as c:
        assert c.post("/api/ask", json=ASK, headers=headers).status_code == 200
        assert c.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        page = c.post("/", data={"question": ASK["question"]}, headers=headers)
        assert page.status_code == 200 and "East India" in page.text
        assert c.post("/api/index/rebuild", json={}, headers=headers).status_code == 202
        c.app.state.builds.join(timeout=60)


def test_a_loopback_origin_on_another_port_is_cross_site(built: Settings):
    with app_client(built) as c:
        r = c.post("/api/ask", json=ASK, headers={"origin": "http://localhost:3000",
                                                  "host": "localhost:8000"})
        assert r.status_code == 403


def test_origins_listed_for_cors_may_post(built: Settings):
    with app_client(built, cors_origins=["https://app.example"]) as c:
        r = c.post("/api/ask", json=ASK, headers={"origin": "https://app.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert c.post("/api/ask", json=ASK, headers={"origin": EVIL}).status_code == 403


def test_admin_token_is_still_required_off_loopback(built: Settings):
    with app_client(built, host="0.0.0.0") as c:
        r = c.post("/api/index/rebuild", json={})
        assert r.status_code == 403 and "QA_ADMIN_TOKEN" in r.json()["error"]["message"]
    with app_client(built, host="0.0.0.0", admin_token="t0ken-edge") as c:
        assert c.post("/api/index/rebuild", json={}).status_code == 403
        same_site = {"origin": "http://testserver", "authorization": "Bearer t0ken-edge"}
        assert c.post("/api/index/rebuild", json={}, headers=same_site).status_code == 202
        c.app.state.builds.join(timeout=60)
        # The token does not make a cross-site request acceptable either.
        cross = {"origin": EVIL, "authorization": "Bearer t0ken-edge"}
        assert c.post("/api/index/rebuild", json={}, headers=cross).status_code == 403


# --- Host names -----------------------------------------------------------------------------


@pytest.mark.parametrize("host,status", [
    ("localhost:8000", 200), ("LOCALHOST", 200), ("127.0.0.1:1234", 200), ("[::1]:8000", 200),
    ("[::1]", 200), ("evil.example", 400), ("evil.example:8000", 400),
    ("localhost.evil.example", 400), ("127.0.0.1.evil.example", 400), ("[::2]:8000", 400),
    ("", 400),
])
def test_loopback_server_answers_only_to_loopback_names(built: Settings, host: str, status: int):
    with app_client(built, allowed_hosts=None) as c:
        r = c.get("/healthz", headers={"host": host})
        assert r.status_code == status, r.text
        if status == 400:
            assert r.json()["error"]["type"] == "bad_host"
            assert "QA_ALLOWED_HOSTS" in r.json()["error"]["message"]
            assert c.post("/api/ask", json=ASK, headers={"host": host}).status_code == 400


def test_allowed_hosts_are_configurable(built: Settings):
    with app_client(built, allowed_hosts=["qa.example", "::1"]) as c:
        assert c.get("/healthz", headers={"host": "qa.example:443"}).status_code == 200
        assert c.get("/healthz", headers={"host": "[::1]:80"}).status_code == 200
        assert c.get("/healthz", headers={"host": "localhost"}).status_code == 400
    with app_client(built, allowed_hosts=["*"]) as c:
        assert c.get("/healthz", headers={"host": "anything.example"}).status_code == 200
    with app_client(built, allowed_hosts=None, host="0.0.0.0") as c:  # off loopback: any host
        assert c.get("/healthz", headers={"host": "anything.example"}).status_code == 200


def test_allowed_hosts_and_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("QA_ALLOWED_HOSTS", '["qa.example"]')
    monkeypatch.setenv("QA_TRUSTED_PROXIES", '["10.0.0.0/8", "::1"]')
    s = Settings()
    assert s.allowed_hosts == ["qa.example"] and s.trusted_proxies == ["10.0.0.0/8", "::1"]
    monkeypatch.setenv("QA_TRUSTED_PROXIES", '["not-an-address"]')
    with pytest.raises(ValueError, match="not-an-address"):
        Settings()


# --- unencodable text -----------------------------------------------------------------------


def post_raw(c: TestClient, path: str, body: str) -> httpx.Response:
    return c.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("path,body,field", [
    ("/api/ask", '{"question": "tea \\ud800?"}', "question"),
    ("/api/ask", '{"question": "tea?", "history": [{"role": "user", "content": "\\udc00"}]}',
     "history.0.content"),
    ("/v1/chat/completions", '{"model": "qa", "messages": [{"role": "user", "content": '
     '"tea \\ud800?"}]}', "messages.0.content"),
    ("/v1/chat/completions", '{"model": "qa", "messages": [{"role": "user", "content": '
     '[{"type": "text", "text": "\\ud83d"}]}]}', "messages.0.content"),
    ("/v1/chat/completions", '{"model": "\\ud800", "messages": [{"role": "user", "content": '
     '"tea?"}]}', "model"),
    ("/v1/chat/completions", '{"model": "qa", "user": "\\ud800", "messages": [{"role": "user",'
     ' "content": "tea?"}]}', "user"),
])
def test_lone_surrogates_are_422_naming_the_field(built: Settings, path: str, body: str,
                                                  field: str):
    with app_client(built) as c:
        r = post_raw(c, path, body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request" and field in error["message"]


def test_a_surrogate_pair_is_fine(built: Settings):
    with app_client(built) as c:
        r = post_raw(c, "/api/ask", '{"question": "Which company brought tea \\ud83c\\udf75?"}')
        assert r.status_code == 200 and "\U0001f375" in r.json()["question"]


def test_unencodable_text_in_the_chat_form_is_no_crash(built: Settings):
    with app_client(built) as c:
        turn = c.post("/api/ask", json=ASK).json()
        turn["question"] = "tea \ud800?"
        r = c.post("/", data={"question": ASK["question"], "thread": json.dumps([turn])})
        assert r.status_code == 200 and "East India" in r.text  # the forged turn is dropped
        r = c.post("/", content=b"question=tea%ED%A0%80%3F",
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code in (200, 422)


# --- server paths in errors -----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["gone", "damaged"])
def test_index_errors_name_no_server_path(built: Settings, damage: str,
                                          caplog: pytest.LogCaptureFixture):
    # Damaged before start: nothing loadable, so every ask is a 503 (a version damaged after
    # start is never switched to; tests/test_index_integrity.py covers that).
    current = built.index_dir / "CURRENT"
    current.write_text("v999999-missing\n" if damage == "gone" else "../../etc\n")
    with app_client(built, reload_interval=0) as c:
        for r in (c.post("/api/ask", json=ASK), c.post("/v1/chat/completions", json=CHAT),
                  c.post("/", data={"question": ASK["question"]},
                         headers={"accept": "text/html"})):
            assert r.status_code == 503, r.text
            assert str(built.index_dir) not in r.text and str(built.corpus_dir) not in r.text
            if r.headers["content-type"].startswith("application/json"):
                message = r.json()["error"]["message"]
                assert r.json()["error"]["type"] == "index_unavailable"
                assert not ABSOLUTE_PATH.search(message), message
        assert str(built.index_dir) in caplog.text  # the detail is in the server log


def test_a_locked_index_names_no_server_path(built: Settings):
    from qa.index.build import build_lock

    with app_client(built) as c, build_lock(built.index_dir):
        r = c.post("/api/index/rebuild", json={})
        c.app.state.builds.join(timeout=60)
        status = c.get("/api/index/status").json()
        text = r.text + json.dumps(status)
        assert r.status_code in (202, 409) and str(built.index_dir) not in text
        if r.status_code == 202:
            assert status["state"] == "failed" and "another build" in status["error"]


# --- as `qa serve` runs it: real uvicorn, real sockets --------------------------------------


@contextmanager
def qa_serve(settings: Settings, monkeypatch: pytest.MonkeyPatch,
             **env: str) -> Iterator[str]:
    """The app and uvicorn options `qa serve` uses, on a free loopback port; yields its URL."""
    import uvicorn

    from qa import cli
    from qa.index import embed

    captured: dict[str, Any] = {}
    monkeypatch.setattr(embed, "load_embedder", lambda s: FakeEmbedder())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, options=kw))
    monkeypatch.delenv("QA_ALLOWED_HOSTS", raising=False)
    for name, value in {"QA_MIN_CONFIDENCE": "0", **env}.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    result = CliRunner().invoke(cli.app, ["serve", "--corpus", str(settings.corpus_dir),
                                          "--index", str(settings.index_dir), "--port", str(port)])
    assert result.exit_code == 0, result.output
    options = {**captured["options"], "log_level": "warning"}
    with uvicorn_thread(uvicorn.Config(captured["app"], **options)) as url:
        yield url


def test_served_app_refuses_rebinding_and_cross_site_posts(built: Settings,
                                                           monkeypatch: pytest.MonkeyPatch):
    with qa_serve(built, monkeypatch) as url, httpx.Client(base_url=url) as c:
        port = url.rsplit(":", 1)[1]
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": f"localhost:{port}"}).status_code == 200
        r = c.get("/healthz", headers={"host": f"rebind.evil.example:{port}"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "bad_host"
        r = c.post("/api/index/rebuild", json={}, headers={"origin": EVIL})
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
        assert c.get("/api/index/status").json()["state"] == "idle"
        form = c.post("/", data={"question": ASK["question"]},
                      headers={"origin": EVIL, "accept": "text/html"})
        assert form.status_code == 403 and "East India" not in form.text
        # What a browser sends from the chat page itself, under either loopback name.
        for name in ("127.0.0.1", "localhost"):
            same = {"origin": f"http://{name}:{port}", "host": f"{name}:{port}"}
            assert c.post("/api/ask", json=ASK, headers=same).status_code == 200
            sent = c.post("/", data={"question": ASK["question"]}, headers=same)
            assert sent.status_code == 303  # to the conversation's own page
            page = c.get(sent.headers["location"], headers=same)
            assert page.status_code == 200 and "East India" in page.text


def asks(c: httpx.Client, forwarded: list[str]) -> list[int]:
    return [c.post("/api/ask", json=ASK, headers={"x-forwarded-for": f}).status_code
            for f in forwarded]


def test_forwarded_for_is_ignored_from_an_untrusted_peer(built: Settings,
                                                         monkeypatch: pytest.MonkeyPatch):
    env = {"QA_ASK_RATE": "0.001", "QA_ASK_BURST": "2"}
    with qa_serve(built, monkeypatch, **env) as url, httpx.Client(base_url=url) as c:
        # Rotating the header does not buy a fresh budget: the budget is the peer's.
        assert asks(c, ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]) == [200, 200, 429, 429]


def test_forwarded_for_is_honoured_from_a_trusted_proxy(built: Settings,
                                                        monkeypatch: pytest.MonkeyPatch):
    env = {"QA_ASK_RATE": "0.001", "QA_ASK_BURST": "2", "QA_TRUSTED_PROXIES": '["127.0.0.0/8"]'}
    with qa_serve(built, monkeypatch, **env) as url, httpx.Client(base_url=url) as c:
        # Each client behind the proxy has its own budget...
        assert asks(c, ["1.1.1.1", "1.1.1.1", "1.1.1.1"]) == [200, 200, 429]
        assert asks(c, ["2.2.2.2", "2.2.2.2"]) == [200, 200]
        # ...kept for the right-most address the trusted proxy did not add itself, so a client
        # cannot pick another by prepending to the header.
        assert asks(c, ["9.9.9.9, 1.1.1.1", "8.8.8.8, 1.1.1.1, 127.0.0.1"]) == [429, 429]
        assert asks(c, ["1.1.1.1, 3.3.3.3"]) == [200]
