"""The admin page in headless Chromium: start a rebuild by keyboard, watch it finish live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings

from .test_browser import ARGS, CHROMIUM, record_problems, serving

TOKEN = "page-token-7d2e"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


@pytest.fixture
def admin_server(built: Settings) -> Iterator[tuple[str, Settings]]:
    settings = built.model_copy(update={"admin_token": TOKEN})
    with serving(settings) as url:
        yield url, settings


@pytest.fixture
def page() -> Iterator[Any]:
    """A page that records script errors and dialogs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = record_problems(browser.new_page())
        yield pg
        assert pg.problems == []
        browser.close()


def test_rebuild_from_the_page_shows_live_progress(page: Any,
                                                   admin_server: tuple[str, Settings]):
    from playwright.sync_api import expect

    url, settings = admin_server
    page.goto(url)
    page.get_by_role("link", name="Admin").click()
    expect(page.locator("h1")).to_have_text("Index")
    before = page.locator("#serving-version").inner_text()
    (Path(settings.corpus_dir) / "moon.txt").write_text("The Moon orbits the Earth.\n")

    # A wrong token: the page says why, and nothing starts.
    page.fill("#admin-token", "wrong")
    page.locator("#admin-token").press("Enter")
    expect(page.locator("#admin-error")).to_contain_text("Bearer")
    page.problems.clear()  # the browser logs the refused request as a console error

    # Keyboard only: the token, then Tab to the checkbox, Space, Tab to the button, Enter.
    page.fill("#admin-token", TOKEN)
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(page.locator("#full")).to_be_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "rebuild-button"
    page.keyboard.press("Enter")

    state = page.locator("#build-state")
    expect(state).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(page.locator("#build-progress")).to_have_js_property("value", 100)
    expect(page.locator("#admin-error")).to_be_hidden()
    after = page.locator("#serving-version").inner_text()
    assert after != before and state.inner_text() == f"Done: version {after}."
    assert page.evaluate("sessionStorage.getItem('qa-admin-token')") == TOKEN
    expect(page.locator("#rebuild-button")).to_be_enabled()

    # The status it saw came from the event stream, and the server agrees.
    status = page.request.get(f"{url}/api/index/status").json()
    assert status["state"] == "succeeded" and status["serving_version"] == after
    assert status["full"] is True

    # Reloaded, the page keeps the token for this tab and shows the last report.
    page.reload()
    assert page.input_value("#admin-token") == TOKEN
    expect(page.locator("#build-report")).to_contain_text("documents")
