"""End to end in headless Chromium: what a person sees when asking, citing and following up."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.index.ingest import document_id
from qa.search.answer import AnswerSpan
from qa.server.api import create_app

from .conftest import REPO, FakeEmbedder, free_port, uvicorn_thread
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


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    config = uvicorn.Config(create_app(settings, FakeEmbedder), host="127.0.0.1",
                            port=free_port(), log_level="warning")
    with uvicorn_thread(config) as url:
        yield url


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
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
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
    page.route("**/api/chat", lambda route: held.append(route))
    page.fill("#question", Q1)
    page.press("#question", "Enter")
    expect(page.locator("article.pending")).to_be_visible()
    expect(page.locator("#ask-button")).to_be_disabled()
    assert page.evaluate("document.activeElement.id") == "question"
    held[0].continue_()
    answer = page.locator("#thread article.answer:not(.pending)").first
    answer.wait_for()
    page.unroute("**/api/chat")

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


# --- the thread across reloads and history; the draft; the short answer; reasons -------------

FOLLOW = "When will it produce them?"


def turns(page: Any) -> Any:
    return page.locator("#thread li.turn")


def test_thread_survives_a_reload_and_can_be_cleared(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    ask(page, Q1)
    ask(page, FOLLOW)
    # The conversation has its own address now, kept on the server.
    assert re.fullmatch(re.escape(server) + r"/c/[A-Za-z0-9_-]{22}", page.url)
    address = page.url
    page.reload()
    expect(turns(page)).to_have_count(2)
    expect(turns(page).nth(0).locator(".question")).to_contain_text(Q1)
    expect(turns(page).nth(0).locator("article.answer")).to_contain_text("Rapidus consortium")
    expect(turns(page).nth(1).locator("article.answer")).to_contain_text("2027")
    expect(page.locator("#intro")).to_be_hidden()
    expect(page.locator("#conversation-title")).to_have_text(Q1)
    # The restored turns are the conversation, not just a picture of it: a follow-up uses them.
    again = ask(page, "Who backs it?")
    expect(again.locator(".searched")).to_contain_text("Rapidus")
    expect(turns(page)).to_have_count(3)
    # The restored links still open their source.
    turns(page).nth(0).locator("a.cite").first.click()
    expect(page.locator("#source-panel mark").first).to_contain_text("Rapidus consortium")
    page.click("#source-close")

    # "New conversation" starts afresh; the sidebar leads back.
    page.click("#new-chat")
    page.wait_for_url(server + "/")
    expect(turns(page)).to_have_count(0)
    expect(page.locator("#intro")).to_be_visible()
    follow = ask(page, FOLLOW)  # no earlier turn to borrow from
    expect(follow.locator(".searched")).to_have_count(0)
    second = page.url
    assert second != address
    listed = page.locator("#conversation-list a")
    expect(listed.first).to_have_attribute("aria-current", "page")
    page.locator(f"#conversation-list a[href='{address.removeprefix(server)}']").click()
    page.wait_for_url(address)
    expect(turns(page)).to_have_count(3)

    # Deleting it removes it for good.
    page.click("#delete-conversation")
    page.wait_for_url(server + "/")
    expect(page.locator(f"#conversation-list a[href='{address.removeprefix(server)}']")
           ).to_have_count(0)
    expect(page.locator(f"#conversation-list a[href='{second.removeprefix(server)}']")
           ).to_have_count(1)
    assert page.request.get(address).status == 404


def test_a_thread_from_the_plain_form_is_kept_and_not_posted_again(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    page.fill("#question", Q1)
    with page.expect_navigation():  # as when the form is sent before the script has run
        page.evaluate("document.getElementById('ask-form').submit()")
    expect(turns(page)).to_have_count(1)
    assert page.input_value("#question") == ""  # sent, so not brought back as a draft
    methods: list[str] = []
    page.on("request", lambda r: r.is_navigation_request() and methods.append(r.method))
    page.reload()
    assert methods == ["GET"]
    expect(turns(page)).to_have_count(1)
    assert page.input_value("#question") == ""
    expect(turns(page).first.locator("article.answer")).to_contain_text("Rapidus consortium")
    follow = ask(page, FOLLOW)
    expect(follow).to_contain_text("2027")


@pytest.fixture(scope="module")
def bfcache_browser(playwright: Any) -> Iterator[Any]:
    """Chromium with its back/forward cache on (Playwright turns it off by default)."""
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                   ignore_default_args=["--disable-back-forward-cache"])
    yield b
    b.close()


@pytest.mark.parametrize("cached", [False, True], ids=["reloaded", "bfcache"])
def test_back_and_forward_keep_the_thread(browser: Any, bfcache_browser: Any, server: str,
                                          cached: bool):
    from playwright.sync_api import expect

    context = (bfcache_browser if cached else browser).new_context()
    page = record_problems(context.new_page())
    page.goto(server)
    ask(page, Q1)
    address = page.url
    page.evaluate("window.sameDocument = true")  # survives only a restore from the cache
    page.click("nav a[href='/admin']")
    page.wait_for_url("**/admin")
    # The same conversation in another page of the tab gets a second turn meanwhile.
    page.goto(address)
    expect(turns(page)).to_have_count(1)
    ask(page, FOLLOW)

    page.go_back(wait_until="commit")
    expect(page.locator("#admin-title")).to_be_visible()
    page.go_back(wait_until="commit")
    expect(page.locator("#ask-form")).to_be_visible()
    assert page.url == address
    # Back on the first page of the conversation, which must show the later turn too.
    expect(turns(page)).to_have_count(2)
    expect(turns(page).nth(1).locator("article.answer")).to_contain_text("2027")
    assert page.evaluate("window.sameDocument === true") is cached
    expect(page.locator("#intro")).to_be_hidden()

    page.go_forward(wait_until="commit")
    expect(page.locator("#admin-title")).to_be_visible()
    page.go_forward(wait_until="commit")
    expect(page.locator("#ask-form")).to_be_visible()
    expect(turns(page)).to_have_count(2)
    expect(turns(page).nth(0).locator("article.answer")).to_contain_text("Rapidus consortium")
    assert page.problems == []
    context.close()


def test_text_typed_while_waiting_is_not_erased(page: Any, server: str):
    from playwright.sync_api import expect

    page.goto(server)
    held: list[Any] = []
    page.route("**/api/chat", lambda route: held.append(route))
    page.fill("#question", Q1)
    page.press("#question", "Enter")
    expect(page.locator("article.pending")).to_be_visible()
    # The next question, typed while the answer is on its way.
    page.fill("#question", "")
    page.type("#question", "And in Europe?")
    held[0].continue_()
    expect(turns(page).first.locator("article.answer:not(.pending)")).to_contain_text("Rapidus")
    page.unroute("**/api/chat")
    assert page.input_value("#question") == "And in Europe?"

    # A draft also survives a reload, and sending it clears it.
    page.type("#question", " And Korea?")
    page.reload()
    assert page.input_value("#question") == "And in Europe? And Korea?"
    expect(turns(page)).to_have_count(1)
    page.press("#question", "Enter")
    expect(turns(page).nth(1).locator("article.answer:not(.pending)")).to_be_visible()
    assert page.input_value("#question") == ""
    page.reload()
    assert page.input_value("#question") == ""
    expect(turns(page)).to_have_count(2)


def span_of(answer: Any, text: str) -> dict[str, Any]:
    """The answer span of `text` inside the first supporting sentence that holds it."""
    for c in answer.citations:
        for a, b in c.highlight:
            sentence = c.text[a - c.start:b - c.start]
            if text in sentence:
                start = a + sentence.index(text)
                return {"text": text, "n": c.n, "document_id": c.document_id,
                        "start": start, "end": start + len(text)}
    raise AssertionError(f"{text!r} is in no supporting sentence of {answer.text!r}")


def test_short_answer_is_shown_first_and_marked_in_its_sentence(page: Any, server: str,
                                                               monkeypatch: pytest.MonkeyPatch):
    import dataclasses

    from playwright.sync_api import expect

    import qa.server.turns

    real = qa.server.turns.ask_in_conversation

    def with_span(*args: Any, **kwargs: Any) -> Any:
        # The first answer without a span, the follow-up with one, whatever the engine says.
        answer = real(*args, **kwargs)
        if answer.question != FOLLOW:
            return dataclasses.replace(answer, answer_span=None)
        s = span_of(answer, "2027")
        return dataclasses.replace(answer, answer_span=AnswerSpan(**s))

    monkeypatch.setattr(qa.server.turns, "ask_in_conversation", with_span)
    page.goto(server)
    ask(page, Q1)
    answer = ask(page, FOLLOW)

    def check(answer: Any) -> str:
        short = answer.locator(".short-answer")
        expect(short).to_have_text("Short answer: 2027")
        expect(short.locator("strong")).to_have_text("2027")
        # It comes first, before what was searched and the sentence.
        assert answer.evaluate("a => a.firstElementChild.className") == "short-answer"
        mark = answer.locator(".text mark.span")
        expect(mark).to_have_text("2027")
        before = mark.evaluate("m => m.previousSibling.textContent")
        assert before.endswith("start producing them in ")
        href = answer.locator("a.cite").first.get_attribute("href")
        assert "&span=" in href and href.endswith("#hl")
        return href

    href = check(answer)
    # The first turn had no span: no short answer there.
    expect(turns(page).first.locator(".short-answer")).to_have_count(0)
    expect(turns(page).first.locator("mark")).to_have_count(0)

    # The source panel marks it inside the highlighted sentence.
    answer.locator("a.cite").first.click()
    panel = page.locator("#source-panel")
    sentence = panel.locator(".doctext > mark").first
    expect(sentence).to_contain_text("Rapidus expects to start producing them in 2027")
    expect(sentence.locator("mark.span")).to_have_text("2027")
    page.click("#source-close")

    # So does the document page the link leads to.
    other = page.context.new_page()
    other.goto(server + href)
    expect(other.locator("mark#hl")).to_contain_text("Rapidus expects to start producing them in")
    expect(other.locator("mark#hl mark.span")).to_have_text("2027")
    other.close()

    # And the stored turn keeps its span across a reload.
    page.reload()
    check(turns(page).nth(1).locator("article.answer"))


def test_abstention_says_why(page: Any, server: str, monkeypatch: pytest.MonkeyPatch):
    import dataclasses

    from playwright.sync_api import expect

    import qa.server.turns

    reason = "The question seems to be in <b>French</b>. Try asking in English."
    real = qa.server.turns.ask_in_conversation

    def with_reason(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)
        return dataclasses.replace(answer, reason=reason) if answer.abstained else answer

    monkeypatch.setattr(qa.server.turns, "ask_in_conversation", with_reason)
    page.goto(server)
    abstained = ask(page, "???")
    badge = abstained.locator(".badge")
    expect(badge).to_have_text("Not found in the corpus")
    expect(abstained.locator(".badge + .reason")).to_have_text(reason)  # as text, not markup
    assert abstained.locator("b").count() == 0
    answered = ask(page, Q1)
    expect(answered.locator(".reason")).to_have_count(0)
    page.reload()
    expect(turns(page).first.locator(".badge + .reason")).to_have_text(reason)
