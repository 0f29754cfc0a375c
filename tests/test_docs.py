"""The API reference pages: served by the app itself, offline, under the strict policy."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.server.api import create_app

from .conftest import FakeEmbedder, free_port, uvicorn_thread

CHROMIUM = Path("/usr/bin/chromium")
ASSET_TYPES = {"script": "javascript", "stylesheet": "text/css", "icon": "image/"}


@pytest.fixture
def client(built: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built, FakeEmbedder)) as c:
        yield c


def referenced(html: str) -> list[tuple[str, str]]:
    """(kind, url) of every script, stylesheet and icon a page loads."""
    page = BeautifulSoup(html, "lxml")
    out = [("script", s["src"]) for s in page.find_all("script", src=True)]
    for link in page.find_all("link", href=True):
        rel = " ".join(link.get("rel", []))
        out.append(("stylesheet" if rel == "stylesheet" else "icon", link["href"]))
    return out


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_reference_pages_load_only_what_the_app_serves(client: TestClient, path: str):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = referenced(r.text)
    assert {kind for kind, _ in assets} >= ({"script", "icon"} if path == "/redoc"
                                              else {"script", "stylesheet", "icon"})
    for kind, url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert ASSET_TYPES[kind] in asset.headers["content-type"], (url, asset.headers)
        assert len(asset.content) > 1000
    assert "cdn." not in r.text and "https://" not in r.text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_reference_pages_are_under_the_strict_policy_with_a_fresh_nonce(client: TestClient,
                                                                         path: str):
    nonces = []
    for _ in range(2):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert r.headers.get_list("content-security-policy") == [csp]  # one policy, not two
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        nonce = re.search(r"script-src 'self' 'nonce-([\w-]+)'", csp)
        assert nonce, csp
        inline = BeautifulSoup(r.text, "lxml").find_all("script", src=False)
        assert len(inline) == 1 and inline[0]["nonce"] == nonce.group(1)
        nonces.append(nonce.group(1))
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 16


def test_other_pages_keep_the_plain_strict_policy(client: TestClient):
    csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "nonce" not in csp


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_reference_pages_render_offline_in_chromium(built: Settings):
    import uvicorn
    from playwright.sync_api import sync_playwright

    app = create_app(built.model_copy(update={"allowed_hosts": ["127.0.0.1"]}), FakeEmbedder)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    with uvicorn_thread(config) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            for path, selector, title in (("/docs", ".swagger-ui .info .title", "qa"),
                                          ("/redoc", "h1", "qa (0.1.0)")):
                page = browser.new_page()
                errors: list[str] = []
                origins: set[str] = set()
                page.on("console", lambda m, e=errors: m.type == "error" and e.append(m.text))
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on("response", lambda resp, o=origins: o.add(
                    "{0.scheme}://{0.netloc}".format(urlsplit(resp.url))))
                page.goto(url + path)
                page.wait_for_selector(selector, timeout=20_000)
                assert page.inner_text(selector).startswith(title)
                if path == "/docs":
                    page.locator(".opblock-summary-path", has_text="/api/ask").first.wait_for()
                time.sleep(0.5)
                # ReDoc's footer asks a CDN for its logo; the policy blocks it (nothing leaves).
                unexpected = [e for e in errors if "cdn.redoc.ly/redoc/logo-mini.svg" not in e]
                assert unexpected == [], unexpected
                assert origins - {"blob://"} == {url}, origins  # ReDoc's search worker: blob:
                page.close()
        finally:
            browser.close()


