"""Citation links anchored to the text they quote: found again after an edit, or said gone."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.build import build_index
from qa.server.api import create_app
from qa.server.sources import TextQuote, anchor, locate, quote_of, resolve_link

from .conftest import FakeEmbedder

HTML = {"accept": "text/html"}
SAME = "The gate opens at noon."
TEXT = f"North side. {SAME} South side. {SAME} East side."


def test_locate_prefers_the_occurrence_whose_context_agrees():
    first, second = TEXT.index(SAME), TEXT.rindex(SAME)
    south = TextQuote(SAME, prefix="South side. ", suffix=" East")
    north = TextQuote(SAME, prefix="North side. ", suffix=" South")
    assert locate(TEXT, south, hint=0) == second  # context beats nearness
    assert locate(TEXT, north, hint=len(TEXT)) == first
    assert locate(TEXT, TextQuote(SAME), hint=len(TEXT)) == second  # no context: the nearest
    assert locate(TEXT, TextQuote("The gate closes."), hint=0) is None
    assert locate(TEXT, TextQuote(""), hint=0) is None


def test_anchor_moves_every_span_by_the_same_distance():
    old = f"Intro. {SAME} Rest."
    at = old.index(SAME)
    passage, marks, span = (0, len(old)), [(at, at + len(SAME))], (at + 4, at + 8)
    _, quote = quote_of(old, 0, marks, passage)
    assert quote == TextQuote(SAME, "Intro. ", " Rest.")
    assert anchor(old, quote, passage, marks, span).status == "exact"
    new = "A new paragraph above it.\n\n" + old
    moved = anchor(new, quote, passage, marks, span)
    shift = len("A new paragraph above it.\n\n")
    assert moved.status == "moved"
    assert moved.marks == [(at + shift, at + shift + len(SAME))]
    assert new[moved.marks[0][0]:moved.marks[0][1]] == SAME
    assert moved.span == (at + 4 + shift, at + 8 + shift) and moved.passage == (shift, len(new))
    gone = anchor("Intro. The gate is gone. Rest.", quote, passage, marks, span)
    assert (gone.status, gone.marks, gone.passage, gone.span) == ("gone", [], None, None)


def test_resolve_link_checks_plain_offsets_and_tolerates_stale_ones_with_a_quote():
    with pytest.raises(ValueError):
        resolve_link("short", "0-99", None, None, None)
    stale = resolve_link(TEXT, "500-523", "480-600", None, TextQuote(SAME, "South side. "))
    assert stale.status == "moved" and TEXT[slice(*stale.marks[0])] == SAME


@pytest.fixture
def served(built: Settings) -> Iterator[tuple[TestClient, Settings]]:
    with TestClient(create_app(built.model_copy(update={"reload_interval": 0}),
                               FakeEmbedder)) as c:
        yield c, built


def cite_link(client: TestClient, question: str) -> str:
    body = client.post("/api/chat", json={"question": question}).json()
    return body["turn"]["citations"][0]["url"]


def test_a_shared_link_survives_an_edit_above_its_sentence(served):
    client, settings = served
    sentence = "The British East India Company brought tea to London in the 1660s."
    link = cite_link(client, "Which company brought tea to London?")
    query = parse_qs(urlsplit(link).query)
    assert query["quote"] == [sentence] and query["v"] == [client.app.state.engine.serving_name]
    assert "prefix" in query or "suffix" in query
    before = BeautifulSoup(client.get(link, headers=HTML).text, "lxml")
    assert before.select_one("mark#hl").text == sentence
    assert before.select_one("#link-status") is None

    page = settings.corpus_dir / "page.html"
    page.write_text(page.read_text().replace(
        "<h1>Tea</h1>", "<h1>Tea</h1><p>Long before any ship sailed, tea was pressed into "
        "bricks and traded along caravan routes for horses.</p>"))
    build_index(settings, FakeEmbedder)
    client.app.state.engine.reload_if_changed(strict=True)
    after = BeautifulSoup(client.get(link, headers=HTML).text, "lxml")
    assert after.select_one("mark#hl").text == sentence
    assert "found again" in after.select_one("#link-status").text
    # The page's source panel asks the same question as JSON.
    doc_id = urlsplit(link).path.rsplit("/", 1)[1]
    located = client.get(f"/api/documents/{doc_id}/locate?{urlsplit(link).query}").json()
    assert located["status"] == "moved"
    (a, b) = located["highlight"][0]["start"], located["highlight"][0]["end"]
    assert located["text"][a:b] == sentence

    page.write_text(page.read_text().replace("in the 1660s", "some time later"))
    build_index(settings, FakeEmbedder)
    client.app.state.engine.reload_if_changed(strict=True)
    gone = BeautifulSoup(client.get(link, headers=HTML).text, "lxml")
    assert gone.select("mark") == []
    status = gone.select_one("#link-status")
    assert "no longer in this document" in status.text and sentence in status.text

    page.unlink()
    build_index(settings, FakeEmbedder)
    client.app.state.engine.reload_if_changed(strict=True)
    missing = client.get(link, headers=HTML)
    assert missing.status_code == 404 and "no longer in the corpus" in missing.text
