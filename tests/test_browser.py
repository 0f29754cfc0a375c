"""End to end in headless Chromium: what a person sees when asking, citing and following up."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qa.api import create_app
from qa.config import Settings
from qa.ingest import document_id

from .conftest import REPO, FakeEmbedder
from .test_hostile_corpus import HOSTILE_HTML

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
Q1 = "Which consortium will mass-produce 2-nanometre chips in Japan?"
HOSTILE = ("The attacker hid <script>alert('pwned')</script> inside the comet report. "
           "Then the attacker tried \"><img src=x onerror=alert(1)> on the comet page too.\n")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(create_app(settings, FakeEmbedder), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled corpus plus hostile documents."""
    root = tmp_path_factory.mktemp("browser")
    corpus = root / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    (corpus / "hostile.txt").write_text("Hostile comet notes\n\n" + HOSTILE, encoding="utf-8")
    (corpus / "hostile.html").write_text(HOSTILE_HTML, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", min_confidence=0.3)
    with serving(settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def record_problems(pg: Any) -> Any:
    """Collect script errors and dialogs in `pg.problems` (an executed script would open one)."""
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("dialog", lambda d: (pg.problems.append("dialog: " + d.message), d.dismiss()))
    return pg


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that records console errors and dialogs (an executed script would open one)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = record_problems(context.new_page())
    yield pg
    assert pg.problems == []
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, and return the answer that appears."""
    n = page.locator("#thread li.turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator("#thread li.turn").nth(n).locator("article.answer:not(.pending)")
    answer.wait_for()
    return answer


def test_ask_click_citation_and_follow_up(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    expect(page.locator("h1")).to_have_text("Ask the corpus")

    # The pending state: hold the request while looking at the page.
    held: list[Any] = []
    page.route("**/api/ask", lambda route: held.append(route))
    page.fill("#question", Q1)
    page.press("#question", "Enter")
    expect(page.locator("article.pending")).to_be_visible()
    expect(page.locator("#ask-button")).to_be_disabled()
    assert page.evaluate("document.activeElement.id") == "question"
    held[0].continue_()
    answer = page.locator("#thread article.answer:not(.pending)").first
    answer.wait_for()
    page.unroute("**/api/ask")

    expect(answer).to_contain_text("Rapidus consortium")
    expect(page.locator("#ask-button")).to_be_enabled()
    assert page.input_value("#question") == ""
    assert page.evaluate("document.activeElement.id") == "question"
    expect(answer.locator(".sources li").first).to_contain_text("eu-japan-digital-partnership.txt")

    # Clicking [1] opens the passage inside its document, the sentence highlighted.
    cite = answer.locator("a.cite").first
    expect(cite).to_have_text("[1]")
    cite.click()
    panel = page.locator("#source-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_have_text("The EU and Japan Build a Digital Partnership")
    expect(panel.locator(".where")).to_contain_text("eu-japan-digital-partnership.txt")
    expect(panel.locator(".where")).to_contain_text("Semiconductors")
    mark = panel.locator("mark").first
    expect(mark).to_contain_text("Rapidus consortium")
    expect(mark).to_be_in_viewport()
    expect(panel.locator(".doctext")).to_contain_text("Brussels and Tokyo")  # the whole document

    # Escape closes it and gives focus back to the marker; Enter on the marker opens it again.
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.className").startswith("cite")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()

    # The link to the source can be copied and reopened: it shows the same sentence.
    href = panel.locator("#source-link").get_attribute("href")
    assert href.startswith(f"{server}/documents/{document_id('eu-japan-digital-partnership.txt')}?")
    other = page.context.new_page()
    other.goto(href)
    expect(other.locator("mark#hl")).to_contain_text("Rapidus consortium")
    expect(other.locator(".where")).to_contain_text("section Semiconductors")
    other.close()
    page.click("#source-close")

    # A follow-up with a pronoun is resolved against the conversation, and says what it searched.
    follow = ask(page, "When will it produce them?")
    expect(follow).to_contain_text("2027")
    expect(follow.locator(".searched")).to_contain_text("When will it produce them? Japan Rapidus")
    expect(page.locator("#thread li.turn")).to_have_count(2)


def test_abstention_looks_different(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    abstained = ask(page, "???")  # nothing to search for, and no earlier turn to borrow from
    answered = ask(page, Q1)
    expect(abstained).to_have_class("bubble answer abstained")
    expect(abstained.locator(".badge")).to_have_text("Not found in the corpus")
    style = "e => getComputedStyle(e).backgroundColor + getComputedStyle(e).borderStyle"
    assert answered.evaluate(style) != abstained.evaluate(style)


def test_bad_question_shows_an_error_and_keeps_the_thread(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    # The textarea's maxlength stops this in a browser; the server must refuse it all the same.
    page.evaluate("document.getElementById('question').removeAttribute('maxlength')")
    page.fill("#question", "x" * 2001)
    page.press("#question", "Enter")
    expect(page.locator("#ask-error")).to_contain_text("the limit is 2000")
    page.problems.remove("Failed to load resource: the server responded with a status of 422 "
                         "(Unprocessable Entity)")
    expect(page.locator("#thread li.turn")).to_have_count(0)
    page.fill("#question", "   ")
    page.click("#ask-button")
    expect(page.locator("#ask-error")).to_contain_text("Type a question first")


def test_hostile_text_is_shown_as_text(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    hostile_question = "What did the attacker hide in the comet report <img src=y onerror=f()>?"
    answer = ask(page, hostile_question)
    expect(page.locator("#thread .question").first).to_contain_text(hostile_question)
    expect(answer).to_contain_text('"><img src=x onerror=alert(1)>')
    answer.locator("a.cite").first.click()
    expect(page.locator("#source-panel h2")).to_have_text("Hostile comet notes")
    panel_text = page.locator("#source-panel .doctext")
    expect(panel_text).to_contain_text("<script>alert('pwned')</script>")
    assert page.locator("img").count() == 0
    page.goto(f"{server}/documents/{document_id('hostile.txt')}")
    expect(page.locator(".doctext")).to_contain_text("<script>alert('pwned')</script>")
    assert page.locator("main img, main script").count() == 0


def test_hostile_html_document_stays_inert(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    answer = ask(page, "How many ships did the harbour handle?")
    expect(answer).to_contain_text("nine")
    answer.locator("a.cite").first.click()
    panel = page.locator("#source-panel")
    expect(panel.locator("h2")).to_contain_text("Hostile <script>alert(1)</script>")
    expect(panel.locator(".doctext")).to_contain_text('"><img src=x onerror=alert(5)>')
    doc_url = f"{server}/documents/{document_id('hostile.html')}"
    page.goto(doc_url)
    expect(page.locator("main h1")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator(".doctext")).to_contain_text("onerror=alert(5)")
    for where in (server, doc_url):
        page.goto(where)
        inert = ("document.querySelectorAll('main script, main img, main iframe, "
                 "a[href^=\"javascript:\"], [onclick], [onerror]').length")
        assert page.evaluate(inert) == 0
    assert "Hostile <script>" in page.title()  # the title is text, not markup
    # The page fixture fails the test if any dialog opened or any script error was logged.


def test_works_without_javascript(browser: Any, server: str):
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server)
    page.fill("#question", Q1)
    page.click("#ask-button")
    answer = page.locator("#thread article.answer")
    expect(answer).to_contain_text("Rapidus consortium")
    page.fill("#question", "When will it produce them?")
    page.click("#ask-button")
    expect(page.locator("#thread li.turn")).to_have_count(2)
    expect(answer.nth(1)).to_contain_text("2027")
    answer.nth(1).locator("a.cite").first.click()
    expect(page.locator("mark#hl")).to_be_visible()
    assert "/documents/" in page.url
    context.close()


def test_phone_width(browser: Any, server: str, tmp_path: Path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(server)
    answer = ask(page, Q1)
    expect(answer).to_contain_text("Rapidus")
    no_overflow = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_overflow)
    field = page.locator("#question").bounding_box()
    button = page.locator("#ask-button").bounding_box()
    assert field["width"] > 250 and field["x"] + field["width"] <= button["x"]
    assert button["x"] + button["width"] <= 375
    page.screenshot(path=str(tmp_path / "phone.png"))
    answer.locator("a.cite").first.tap()
    panel = page.locator("#source-panel")
    expect(panel.locator("mark").first).to_be_in_viewport()
    assert panel.bounding_box()["width"] == 375
    assert page.evaluate(no_overflow)
    context.close()
