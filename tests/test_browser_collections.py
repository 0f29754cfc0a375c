"""Switching collections in the chat page, in headless Chromium: with and without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from qa.config import Settings
from qa.server.api import create_app

from .conftest import FakeEmbedder, free_port, uvicorn_thread
from .test_browser import ARGS, CHROMIUM, record_problems
from .test_collections import two_corpora

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]
BEES_Q = "What do workers perform to tell others where flowers are?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("collections")
    settings = Settings(collections=two_corpora(root), min_confidence=0.0, reload_interval=0)
    config = uvicorn.Config(create_app(settings, FakeEmbedder), host="127.0.0.1",
                            port=free_port(), log_level="warning")
    with uvicorn_thread(config) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_switching_collections(browser: Any, server: str, javascript: bool):
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=javascript)
    page = record_problems(context.new_page())
    page.goto(server)
    picker = page.locator("select#collection")
    expect(picker).to_have_value("tea")
    expect(page.get_by_label("Collection")).to_be_visible()

    picker.select_option("bees")
    page.fill("#question", BEES_Q)
    page.click("#ask-button")
    answer = page.locator("#thread article.answer:not(.pending)").last
    answer.wait_for()
    expect(answer.locator(".sources li").first).to_contain_text("hive.txt")
    expect(picker).to_have_value("bees")  # the choice stays for the next question

    # The source opens from the bees collection: notes.txt has the same id in both.
    cite = answer.locator("a.cite").first
    assert "collection=bees" in (cite.get_attribute("href") or "")
    cite.click()
    if javascript:
        panel = page.locator("#source-panel")
        expect(panel.locator("h2")).to_have_text("Honey bees")
        expect(panel.locator("mark").first).to_contain_text("waggle dance")
    else:
        expect(page.locator("mark#hl")).to_contain_text("waggle dance")
        page.go_back()

    # Back to the default collection: a tea question is answered from tea.
    picker.select_option("tea")
    page.fill("#question", "Which company brought tea to London?")
    page.click("#ask-button")
    expect(page.locator("#thread li.turn")).to_have_count(2)
    tea = page.locator("#thread article.answer:not(.pending)").last
    expect(tea.locator(".sources li").first).to_contain_text("history/britain.txt")
    assert page.problems == []
    context.close()
