"""Feedback on answers: kept with the answer, listed for the admin, exported for `qa eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import run_eval
from qa.index.index_dir import IndexDir
from qa.server.api import create_app
from qa.server.feedback import FILE_NAME, FeedbackStore, export

from .conftest import FakeEmbedder

TEA = "Which company brought tea to London?"
BEES = "What do workers perform to tell others where flowers are?"
NOWHERE = "Which xylophone museum opened on Mars?"
HTML = {"accept": "text/html"}
TOKEN = "feedback-token-51"


@pytest.fixture
def app(built: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built.model_copy(update={"min_confidence": 0.3}),
                               FakeEmbedder)) as c:
        yield c


def chat(client: TestClient, question: str, cid: str | None = None) -> tuple[str, int]:
    body = client.post("/api/chat", json={"question": question, "conversation_id": cid}).json()
    return body["conversation_id"], body["turn"]["n"]


def rate(client: TestClient, cid: str, n: int, rating: str, comment: str = "") -> int:
    return client.post(f"/api/conversations/{cid}/turns/{n}/feedback",
                       json={"rating": rating, "comment": comment}).status_code


def test_feedback_is_kept_with_the_answer_and_the_latest_counts(app: TestClient):
    cid, n = chat(app, TEA)
    assert rate(app, cid, n, "down", "wrong century") == 200
    assert rate(app, cid, n, "up") == 200
    shown = app.get(f"/api/conversations/{cid}").json()["turns"]
    assert shown[0]["rating"] == "up"
    entries = app.app.state.feedback.entries()
    assert len(entries) == 1
    e = entries[0]
    assert (e.rating, e.comment, e.turn.question) == ("up", "", TEA)
    assert "East India Company" in e.turn.answer and e.turn.citations
    assert e.turn.index_version == app.app.state.engine.serving_name
    # Bad input is refused clearly.
    assert rate(app, cid, 5, "up") == 404
    assert rate(app, cid, n, "meh") == 422
    assert rate(app, cid, n, "up", "x" * 2001) == 422
    assert rate(app, "A" * 22, 0, "up") == 404


def test_the_plain_form_rates_too(app: TestClient):
    r = app.post("/", data={"question": TEA}, headers=HTML)
    cid = str(r.url).split("/c/")[1].split("#")[0]
    r = app.post(f"/c/{cid}/feedback", data={"n": "0", "rating": "down", "comment": "no"},
                 headers=HTML)
    assert r.status_code == 200 and str(r.url).endswith(f"/c/{cid}#turn-0")
    form = BeautifulSoup(r.text, "lxml").select_one("#turn-0 form.feedback")
    assert form.select_one("button[value=down]")["aria-pressed"] == "true"
    assert form.select_one("button[value=up]")["aria-pressed"] == "false"
    assert "marked bad" in form.select_one(".feedback-status").text


def test_admin_lists_the_answers_marked_wrong(app: TestClient):
    cid, n = chat(app, TEA)
    chat(app, BEES, cid)
    rate(app, cid, n, "down", "it was <b>the Dutch</b>")
    rate(app, cid, 1, "up")
    page = BeautifulSoup(app.get("/admin", headers=HTML).text, "lxml")
    items = page.select("#feedback li")
    assert len(items) == 1
    assert items[0].select_one("a")["href"] == f"/c/{cid}#turn-0"
    assert items[0].select_one(".marked-question").text == TEA
    assert "it was <b>the Dutch</b>" in items[0].select_one(".marked-comment").text
    listed = app.get("/api/feedback", params={"rating": "down"}).json()
    assert [(e["turn"]["question"], e["comment"]) for e in listed] == [
        (TEA, "it was <b>the Dutch</b>")]


def test_with_a_token_the_list_needs_it(built: Settings):
    s = built.model_copy(update={"admin_token": TOKEN, "min_confidence": 0.3})
    with TestClient(create_app(s, FakeEmbedder)) as c:
        cid, n = chat(c, TEA)
        rate(c, cid, n, "down")
        page = BeautifulSoup(c.get("/admin", headers=HTML).text, "lxml")
        assert page.select("#feedback li") == [] and page.select_one("#feedback-token")
        assert c.get("/api/feedback").status_code == 403
        wrong = c.post("/admin/feedback", data={"token": "nope"}, headers=HTML)
        assert wrong.status_code == 403 and not BeautifulSoup(wrong.text, "lxml").select(
            "#feedback li")
        right = c.post("/admin/feedback", data={"token": TOKEN}, headers=HTML)
        assert len(BeautifulSoup(right.text, "lxml").select("#feedback li")) == 1
        r = c.get("/api/feedback", headers={"authorization": f"Bearer {TOKEN}"})
        assert len(r.json()) == 1


def rated(app: TestClient) -> None:
    """Three questions marked good (one of them asked twice), one bad, one abstention good."""
    cid, n = chat(app, TEA)
    rate(app, cid, n, "up")
    cid2, n2 = chat(app, BEES)
    rate(app, cid2, n2, "down", "not what I meant")
    rate(app, *chat(app, BEES), "up")  # the latest verdict on a question wins
    rate(app, *chat(app, "Where do penguins live?"), "up")
    rate(app, *chat(app, NOWHERE), "up")


def test_export_is_an_evaluation_set_that_qa_eval_runs(app: TestClient, built: Settings,
                                                       tmp_path: Path):
    rated(app)
    store = FeedbackStore(built.index_dir / FILE_NAME)
    version = IndexDir(built.index_dir).open_current()
    try:
        report = export(store, version, tmp_path / "set")
    finally:
        version.close()
    assert (report.scored, report.kept, report.skipped) == (3, 1, [])
    queries = [json.loads(line) for line in
               (tmp_path / "set" / "queries.jsonl").read_text().splitlines()]
    by_text = {q["text"]: q["metadata"] for q in queries}
    assert set(by_text) == {TEA, BEES, "Where do penguins live?", NOWHERE}
    assert by_text[TEA]["answers"] and by_text[TEA]["rating"] == "up"
    assert by_text[NOWHERE]["is_impossible"] and not by_text[NOWHERE]["needs_answer"]
    dataset = load_dataset(tmp_path / "set")
    assert dataset.kind == "squad" and len(dataset.queries) == 3
    assert len(dataset.docs) == version.manifest["counts"]["documents"]

    result = run_eval(tmp_path / "set", built, FakeEmbedder, tmp_path / "eval",
                      unanswerable=False)
    assert result["queries"] == 3
    # The answers marked good are found again: each gold paragraph is retrieved and holds it.
    assert result["metrics"]["hit@5"] == 1.0
    assert result["metrics"]["answer_sentence@1"] >= 2 / 3


def test_export_after_an_edit_finds_the_text_again_or_says_it_is_gone(
        app: TestClient, built: Settings, tmp_path: Path):
    rated(app)
    page = built.corpus_dir / "page.html"
    page.write_text(page.read_text().replace("<h1>Tea</h1>", "<h1>Tea</h1><p>A new opening "
                                             "paragraph about kettles.</p>"))
    (built.corpus_dir / "sub" / "bees.md").write_text("# Honey bees\n\nNothing about dances.\n")
    from qa.index.build import build_index

    build_index(built, FakeEmbedder)
    version = IndexDir(built.index_dir).open_current()
    try:
        report = export(FeedbackStore(built.index_dir / FILE_NAME), version, tmp_path / "set")
    finally:
        version.close()
    assert report.scored == 2
    assert len(report.skipped) == 1 and BEES in report.skipped[0]
    assert len(load_dataset(tmp_path / "set").queries) == 2


def qa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)


def test_cli_exports_and_says_what_it_wrote(app: TestClient, built: Settings, tmp_path: Path):
    empty = qa("feedback", "export", str(tmp_path / "none"), "--index", str(tmp_path / "idx"))
    assert empty.returncode == 1 and "no feedback" in empty.stderr
    assert "Traceback" not in empty.stderr
    rated(app)
    out = tmp_path / "set"
    done = qa("feedback", "export", str(out), "--index", str(built.index_dir))
    assert done.returncode == 0, done.stderr
    assert "3 questions to score" in done.stdout and f"qa eval {out}" in done.stdout
    assert {p.name for p in out.iterdir()} == {"articles.jsonl", "corpus.jsonl", "queries.jsonl"}


@pytest.mark.model
def test_qa_eval_runs_the_export_with_the_bundled_model(app: TestClient, built: Settings,
                                                        tmp_path: Path):
    rated(app)
    assert qa("feedback", "export", str(tmp_path / "set"), "--index",
              str(built.index_dir)).returncode == 0
    result = qa("eval", str(tmp_path / "set"), "--index-dir", str(tmp_path / "eval"),
                "--no-unanswerable")
    assert result.returncode == 0, result.stderr
    assert "3 questions" in result.stdout and "hit@5" in result.stdout
