"""The empty chat page: the collection's documents and example questions drawn from them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.build import build_index
from qa.index.ingest import document_id, parse_file
from qa.server.api import create_app
from qa.server.catalog import candidates

from .conftest import FakeEmbedder

HTML = {"accept": "text/html"}

LIGHTHOUSE = """# Lighthouses of the North Coast

The Brannoch Light was built in 1871 by the Northern Lighthouse Board on the cliffs above the
harbour. Its lens came from a workshop in Paris.

## How is the light kept burning

Since 1998 the lamp has been run by an electric motor and a backup generator, checked every week
by the Northern Lighthouse Board from its office in Edinburgh.

## Keepers

Three keepers lived at the station until the light was automated. The last keeper, Morag Lennie,
left in 1998 and now runs the visitor centre.

## Visitors

The visitor centre opens from April to October.
"""


def test_candidates_come_from_headings_names_and_dates():
    doc = parse_file("lighthouse.md", LIGHTHOUSE.encode())
    found = candidates(doc)
    assert found["wh"] == ["How is the light kept burning?"]
    assert "What is the Northern Lighthouse Board?" in found["name"]  # an institution: "the"
    assert "What is the Lighthouses of the North Coast?" not in found["name"]  # the title
    assert found["date"] == ["What happened in 1871?"]  # 1998 is in two sentences
    assert found["topic"] == ["What about keepers?", "What about visitors?"]


@pytest.fixture
def lighthouse(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    (corpus / "tea.txt").write_text(
        "Tea history\n\nThe British East India Company brought tea to London in the 1660s.\n",
        encoding="utf-8")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", min_confidence=0.3)
    build_index(s, FakeEmbedder)
    return s


@pytest.fixture
def client(lighthouse: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(lighthouse, FakeEmbedder)) as c:
        yield c


def collection(client: TestClient) -> dict:
    """The collection once its example questions are worked out."""
    deadline = time.monotonic() + 30
    while True:
        body = client.get("/api/collection").json()
        if body["examples"] is not None or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_examples_are_questions_the_corpus_answers(client: TestClient, lighthouse: Settings):
    body = collection(client)
    examples = body["examples"]
    assert 1 <= len(examples) <= 4 and len(set(examples)) == len(examples)
    text = " ".join(p.read_text().lower() for p in lighthouse.corpus_dir.iterdir())
    for q in examples:
        assert q.endswith("?")
        answer = client.post("/api/ask", json={"question": q}).json()
        assert not answer["abstained"], q
        # Drawn from the documents: the question's key words are in the corpus.
        words = [w.strip("?").lower() for w in q.split()[2:] if len(w) > 3]
        assert any(w in text for w in words), q
    # One question of each kind first: not four variations of one heading.
    assert len({q.split()[0:2][1] for q in examples}) > 1


def test_documents_are_listed_with_size_and_when_indexed(client: TestClient,
                                                         lighthouse: Settings):
    docs = {d["path"]: d for d in client.get("/api/collection").json()["documents"]}
    assert set(docs) == {"lighthouse.md", "tea.txt"}
    built = datetime.strptime(client.app.state.engine.version.manifest["built_at"],
                              "%Y-%m-%dT%H:%M:%S%z").timestamp()
    for path, d in docs.items():
        assert d["bytes"] == (lighthouse.corpus_dir / path).stat().st_size
        assert d["indexed_at"] == built
        assert d["url"] == f"/documents/{document_id(path)}"
    assert docs["lighthouse.md"]["title"] == "Lighthouses of the North Coast"

    # After an edit, only the edited document counts as indexed anew.
    time.sleep(1.1)  # build times are kept to the second
    (lighthouse.corpus_dir / "tea.txt").write_text("Tea history\n\nTea came by ship.\n")
    build_index(lighthouse, FakeEmbedder)
    assert client.app.state.engine.reload_if_changed(strict=True)
    again = {d["path"]: d for d in client.get("/api/collection").json()["documents"]}
    assert again["lighthouse.md"]["indexed_at"] == built
    assert again["tea.txt"]["indexed_at"] > built


def test_the_empty_page_shows_them_without_javascript(client: TestClient):
    examples = collection(client)["examples"]
    page = BeautifulSoup(client.get("/", headers=HTML).text, "lxml")
    shown = [b.text for b in page.select("#examples button.example")]
    assert shown == examples
    form = page.select_one("#examples form")
    assert form["method"] == "post" and form["action"] == "/"
    rows = page.select("#document-rows tr")
    assert [r.select_one("a").text for r in rows] == ["Lighthouses of the North Coast",
                                                      "Tea history"]
    assert "bytes" in rows[0].text or "kB" in rows[0].text
    # An example, sent as the plain form sends it, is answered.
    r = client.post("/", data={"question": examples[0]}, headers=HTML)
    assert r.status_code == 200 and "/c/" in str(r.url)
    answer = BeautifulSoup(r.text, "lxml").select_one("#thread article.answer")
    assert "abstained" not in answer["class"]
    # A conversation's page does not repeat the empty state.
    assert BeautifulSoup(r.text, "lxml").select("#examples") == []
