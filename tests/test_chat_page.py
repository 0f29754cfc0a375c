"""The chat page in headless Chromium, on a corpus of its own that the tests change: previews,
links after an edit, feedback, uploads, keyboard use and accessibility."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.config import Settings
from qa.index.index_dir import IndexDir
from qa.server.feedback import FILE_NAME, FeedbackStore, export

from .conftest import REPO
from .test_browser import ARGS, CHROMIUM, Q1, ask, record_problems, serving

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium"),
]
SENTENCE = ("In Japan, the Rapidus consortium, backed by the government and by companies such as "
            "Toyota, NTT and Sony, is working with IBM and with imec, the Belgian research "
            "centre, to mass-produce 2-nanometre logic chips.")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    root = tmp_path_factory.mktemp("chat-page")
    shutil.copytree(REPO / "corpus", root / "corpus")
    # Rebuilds and uploads are many here: no rate limit on admin calls.
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index",
                        min_confidence=0.3, reload_interval=0, admin_rate=0)
    with serving(settings) as url:
        yield url, settings


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = record_problems(context.new_page())
    yield pg
    assert pg.problems == []
    context.close()


def rebuild(url: str) -> None:
    """Start an incremental rebuild through the admin API and wait until it serves."""
    with httpx.Client(base_url=url) as c:
        assert c.post("/api/index/rebuild", json={}).status_code == 202
        deadline = time.monotonic() + 60
        while c.get("/api/index/status").json()["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.get("/api/index/status").json()["state"] == "succeeded"


def test_previews_on_hover_and_focus_and_the_answer_is_announced(page: Any,
                                                                  site: tuple[str, Settings]):
    from playwright.sync_api import expect

    url, _ = site
    page.goto(url)
    # Keyboard only: the question box has focus; Enter asks.
    page.keyboard.type(Q1)
    page.keyboard.press("Enter")
    answer = page.locator("#thread article.answer:not(.pending)").first
    answer.wait_for()
    expect(page.locator("#announce")).to_contain_text("Answer: Rapidus")
    preview = answer.locator(".preview").first
    expect(preview).to_be_hidden()

    # Focus the marker from the keyboard: the preview names the source and quotes the sentence.
    cite = answer.locator("a.cite").first
    while page.evaluate("document.activeElement.className") != "cite":
        page.keyboard.press("Shift+Tab")
    expect(preview).to_be_visible()
    expect(preview.locator(".preview-title")).to_have_text(
        "The EU and Japan Build a Digital Partnership")
    expect(preview.locator(".preview-where")).to_contain_text("Semiconductors")
    expect(preview.locator(".preview-text")).to_have_text(SENTENCE)
    assert cite.get_attribute("aria-describedby") == preview.get_attribute("id")
    page.keyboard.press("Escape")  # dismissed, and the focus stays
    expect(preview).to_be_hidden()
    assert page.evaluate("document.activeElement.className") == "cite"
    # Enter opens the panel as before.
    page.keyboard.press("Enter")
    expect(page.locator("#source-panel mark").first).to_contain_text("Rapidus consortium")
    page.keyboard.press("Escape")
    expect(page.locator("#source-panel")).to_be_hidden()

    # The mouse: hover shows it, moving away hides it; the same after a reload (server-drawn).
    page.mouse.move(5, 5)
    page.reload()
    cite = page.locator("#thread a.cite").first
    preview = page.locator("#thread .preview").first
    expect(preview).to_be_hidden()
    cite.hover()
    expect(preview).to_be_visible()
    expect(preview.locator(".preview-text")).to_have_text(SENTENCE)
    box = preview.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1280
    page.mouse.move(5, 5)
    expect(preview).to_be_hidden()


def test_a_cited_link_still_finds_its_sentence_after_an_edit_above_it(
        page: Any, site: tuple[str, Settings]):
    from playwright.sync_api import expect

    url, settings = site
    page.goto(url)
    answer = ask(page, Q1)
    href = answer.locator("a.cite").first.get_attribute("href")
    conversation = page.url
    doc = settings.corpus_dir / "eu-japan-digital-partnership.txt"
    original = doc.read_text()
    try:
        title, rest = original.split("\n\n", 1)
        doc.write_text(f"{title}\n\nA new opening paragraph, written after the answer was "
                       f"given, pushes every later sentence further down.\n\n{rest}")
        rebuild(url)

        # The shared link, opened fresh, highlights the same sentence and says the text moved.
        other = page.context.new_page()
        other.goto(url + href)
        expect(other.locator("mark#hl")).to_have_text(SENTENCE)
        expect(other.locator("mark#hl")).to_be_in_viewport()
        expect(other.locator("#link-status")).to_contain_text("found again")
        other.close()

        # So does the source panel of the conversation, reopened.
        page.goto(conversation)
        page.locator("#thread a.cite").first.click()
        panel = page.locator("#source-panel")
        expect(panel.locator(".doctext > mark").first).to_have_text(SENTENCE)
        expect(panel.locator("#source-note")).to_contain_text("found again")
        page.keyboard.press("Escape")

        # Once the sentence is gone, the link says so plainly.
        doc.write_text(doc.read_text().replace(SENTENCE, "Rapidus builds chips."))
        rebuild(url)
        gone = page.context.new_page()
        gone.goto(url + href)
        expect(gone.locator("#link-status")).to_contain_text("no longer in this document")
        expect(gone.locator("#link-status blockquote")).to_have_text(SENTENCE)
        expect(gone.locator("main mark")).to_have_count(0)
        gone.close()
    finally:
        doc.write_text(original)
        rebuild(url)


def test_feedback_is_stored_and_exported(page: Any, site: tuple[str, Settings], tmp_path: Path):
    from playwright.sync_api import expect

    url, settings = site
    page.goto(url)
    good = ask(page, Q1)
    good.locator("button.rate.up").click()
    expect(good.locator(".feedback-status")).to_have_text("Thanks: marked good.")
    expect(good.locator("button.rate.up")).to_have_attribute("aria-pressed", "true")
    bad = ask(page, "Where will the Arctic cable land?")
    bad.locator(".comment summary").click()
    bad.locator("textarea[name=comment]").fill("It should say which ports.")
    bad.locator("button.rate.down").click()
    expect(bad.locator(".feedback-status")).to_have_text("Thanks: marked bad.")
    page.reload()  # the marks are kept with the conversation
    expect(page.locator("#turn-0 button.rate.up")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#turn-1 button.rate.down")).to_have_attribute("aria-pressed", "true")

    # The admin page lists the bad one with its comment.
    page.goto(url + "/admin")
    expect(page.locator("#feedback li")).to_have_count(1)
    expect(page.locator("#feedback li .marked-comment")).to_contain_text("which ports")

    store = FeedbackStore(settings.index_dir / FILE_NAME)
    marked = {e.turn.question: (e.rating, e.comment) for e in store.entries()}
    assert marked == {Q1: ("up", ""), "Where will the Arctic cable land?":
                      ("down", "It should say which ports.")}
    version = IndexDir(settings.index_dir).open_current()
    try:
        report = export(store, version, tmp_path / "set")
    finally:
        version.close()
    assert (report.scored, report.kept) == (1, 1)
    rows = [json.loads(x) for x in (tmp_path / "set" / "queries.jsonl").read_text().splitlines()]
    scored = next(r for r in rows if r["text"] == Q1)["metadata"]
    assert scored["answers"] == ["Rapidus"] or SENTENCE in scored["answers"]


def test_upload_then_ask_cites_the_new_file_and_remove_takes_it_away(
        page: Any, site: tuple[str, Settings], tmp_path: Path):
    from playwright.sync_api import expect

    url, settings = site
    notes = tmp_path / "harbour-notes.md"
    notes.write_text("# Harbour notes\n\nThe Kelmouth ferry leaves the harbour at seven "
                     "every morning and returns at dusk.\n", encoding="utf-8")
    page.goto(url)
    # The file picker, then the button: the progress shows while the index is rebuilt.
    page.set_input_files("#upload-files", str(notes))
    page.click("#upload-button")
    expect(page.locator("#upload-progress")).to_be_visible()
    status = page.locator("#upload-status")
    expect(status).to_contain_text("Added and indexed harbour-notes.md", timeout=30_000)
    expect(page.locator("#document-rows")).to_contain_text("Harbour notes")
    answer = ask(page, "When does the Kelmouth ferry leave the harbour?")
    expect(answer).to_contain_text("seven every morning")
    expect(answer.locator(".sources li").first).to_contain_text("harbour-notes.md")
    assert (settings.corpus_dir / "harbour-notes.md").read_bytes() == notes.read_bytes()

    # Drag and drop works the same way.
    page.goto(url)
    drop = page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["# Herons\\n\\nHerons wade in the Kelmouth shallows at low "
                               + "tide to catch fish.\\n"], "herons.md", {type: "text/markdown"}));
        return dt;
    }""")
    page.dispatch_event("#upload-form", "drop", {"dataTransfer": drop})
    expect(page.locator("#upload-status")).to_contain_text("Added and indexed herons.md",
                                                           timeout=30_000)
    answer = ask(page, "Where do herons wade at low tide?")
    expect(answer.locator(".sources li").first).to_contain_text("herons.md")

    # A wrong type is refused with the reason, nothing written.
    page.goto(url)
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x90\x00")
    page.set_input_files("#upload-files", str(bad))
    page.click("#upload-button")
    expect(page.locator("#upload-status")).to_contain_text("not a supported file type")
    page.problems.clear()  # the browser logs the refused request
    assert not (settings.corpus_dir / "tool.exe").exists()

    # Removing it from its page takes it out of the corpus and the index.
    page.goto(url)
    page.locator("#document-rows a", has_text="Harbour notes").click()
    page.locator("#remove summary").click()
    page.click("#remove-button")
    page.wait_for_url("**/documents?removed=harbour-notes.md", timeout=30_000)
    expect(page.locator("#library-removed")).to_contain_text("harbour-notes.md")
    expect(page.locator("#document-rows")).not_to_contain_text("Harbour notes")
    assert not (settings.corpus_dir / "harbour-notes.md").exists()
    (settings.corpus_dir / "herons.md").unlink()
    rebuild(url)


AXE = REPO / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2.1 A and AA,
    contrast included), one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: "tag",
            values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}});
        return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "));
    }""")
    return list(found)


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (scripts/test.sh does it)")
def test_pages_pass_axe_and_work_by_keyboard(browser: Any, site: tuple[str, Settings]):
    from playwright.sync_api import expect

    url, _ = site
    # axe is injected as a script of its own: the pages' policy allows only their own files.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = record_problems(context.new_page())
    page.goto(url)
    expect(page.locator("#examples button.example").first).to_be_visible(timeout=30_000)
    assert violations(page) == [], "empty chat page"

    # Keyboard only: an example question is a button; Tab reaches it, Enter asks it.
    page.locator("a.skip").focus()  # from the top of the page
    expect(page.locator("a.skip")).to_be_in_viewport()  # shown while it has focus
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.className || "
                                     "document.activeElement.id"))
        if reached[-1] == "example":
            break
    assert "new-chat" in reached and reached[-1] == "example"
    page.keyboard.press("Enter")
    answer = page.locator("#thread article.answer:not(.pending)").first
    answer.wait_for()
    expect(page.locator("#announce")).to_contain_text("Answer")
    ask(page, "Which xylophone museum opened on the Moon?")  # an abstention, with near misses
    page.locator("#thread a.cite").first.focus()  # its preview open
    assert violations(page) == [], "conversation"
    page.keyboard.press("Enter")
    expect(page.locator("#source-panel")).to_be_visible()
    assert violations(page) == [], "source panel"
    page.keyboard.press("Escape")

    # The feedback buttons answer to the keyboard too.
    page.locator("#turn-0 button.rate.up").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#turn-0 .feedback-status")).to_have_text("Thanks: marked good.")

    for path in ("/documents", "/admin"):
        page.goto(url + path)
        assert violations(page) == [], path
    page.goto(url + "/documents")
    page.goto(url + page.locator("#document-rows a").first.get_attribute("href"))
    assert violations(page) == [], "document page"
    assert page.problems == []
    context.close()
