"""The chat pages without JavaScript: form posts, the source view, errors and escaping."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.build import build_index
from qa.index.ingest import document_id
from qa.server.api import create_app

from .conftest import FakeEmbedder

HTML = {"accept": "text/html,application/xhtml+xml"}
SCRIPT = "<script>alert('pwned')</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture
def client(built: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(built, FakeEmbedder)) as c:
        yield c


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "lxml")


def post(client: TestClient, question: str, conversation: str = ""):
    """Send the plain form; the answer shows at the conversation's URL after a redirect."""
    return client.post("/", data={"question": question, "conversation": conversation},
                       headers=HTML)


def conversation_of(response) -> str:
    """The id of the conversation a form post was redirected to."""
    m = re.fullmatch(r"http://testserver/c/([A-Za-z0-9_-]{22})(#turn-\d+)?", str(response.url))
    assert m, response.url
    return m.group(1)


def seed(client: TestClient, turns: list[dict]) -> str:
    """A conversation holding `turns` as they are (say, forged), started by another browser."""
    store = client.app.state.conversations
    cid = store.create("someone else", "seeded")
    for turn in turns:
        store.append(cid, json.dumps(turn))
    return cid


def test_chat_page_is_a_plain_form_with_external_script_only(client: TestClient):
    r = client.get("/", headers=HTML)
    assert r.status_code == 200
    page = soup(r)
    form = page.find("form", id="ask-form")
    assert form["method"] == "post" and form["action"] == "/"
    assert form.find("textarea", attrs={"name": "question"}) is not None
    assert page.find("meta", attrs={"name": "viewport"}) is not None
    scripts = page.find_all("script")
    assert scripts and all(s.get("src") and not s.string for s in scripts)
    assert not page.find_all(attrs={"onclick": True})


def test_static_urls_carry_the_content_hash(client: TestClient):
    page = soup(client.get("/"))
    urls = [page.find("script")["src"], page.find("link", rel="stylesheet")["href"]]
    for url in urls:
        name, version = re.fullmatch(r"/static/([\w.]+)\?v=(\w+)", url).groups()
        content = (Path(__file__).parent.parent / "web" / "static" / name).read_bytes()
        assert version == hashlib.sha256(content).hexdigest()[:12]
        assert client.get(url).content == content


def test_form_post_renders_a_cited_answer_whose_link_shows_the_sentence(client: TestClient):
    r = post(client, "Which company brought tea to London?")
    assert r.status_code == 200
    page = soup(r)
    answer = page.select_one("#thread article.answer")
    assert "abstained" not in answer["class"]
    cite = answer.select_one("a.cite")
    assert cite.text == "[1]" and cite["href"].startswith(f"/documents/{document_id('page.html')}?")
    source = client.get(cite["href"], headers=HTML)
    assert source.status_code == 200
    doc = soup(source)
    assert doc.find("h1").text == "Tea history"
    assert "page.html" in doc.select_one(".where").text
    mark = doc.find("mark", id="hl")
    assert "East India Company" in mark.text


def test_source_view_shows_page_and_section(client: TestClient):
    text = client.get(f"/api/documents/{document_id('report.pdf')}").json()["text"]
    at = text.index("penguins")
    page = soup(client.get(f"/documents/{document_id('report.pdf')}?highlight={at}-{at + 8}"))
    assert "page 2" in page.select_one(".where").text
    text = client.get(f"/api/documents/{document_id('sub/bees.md')}").json()["text"]
    at = text.index("waggle")
    page = soup(client.get(f"/documents/{document_id('sub/bees.md')}?highlight={at}-{at + 6}"))
    assert "section Dance" in page.select_one(".where").text
    assert page.find("mark").text == "waggle"


def test_form_follow_up_carries_the_thread_and_shows_the_search(client: TestClient):
    r = post(client, "Which company brought tea to London?")
    assert r.history[0].status_code == 303  # a reload shows the page, it does not post again
    cid = conversation_of(r)
    first = soup(r)
    assert first.find("input", attrs={"name": "conversation"})["value"] == cid
    assert first.find("input", attrs={"name": "thread"}) is None  # the server keeps it
    second = soup(post(client, "When did it do that?", cid))
    turns = second.select("#thread li.turn")
    assert [t.select_one(".question").text.replace("You asked: ", "") for t in turns] == [
        "Which company brought tea to London?", "When did it do that?"]
    searched = turns[1].select_one(".searched q").text
    assert searched.startswith("When did it do that? ") and "london" in searched
    assert "1660s" in turns[1].select_one(".text").text


@pytest.mark.parametrize("question,says", [("", "the question is empty"),
                                           ("   ", "the question is empty"),
                                           ("x" * 2001, "the limit is 2000")])
def test_bad_question_in_the_form_is_a_friendly_page(client: TestClient, question: str, says: str):
    r = post(client, question)
    assert r.status_code == 422
    page = soup(r)
    assert says in page.find(id="ask-error").text
    assert page.find("form", id="ask-form") is not None


@pytest.mark.parametrize("conversation", ["garbage", "../../etc/passwd", "A" * 22, "[" * 60])
def test_unknown_conversation_is_a_friendly_404(client: TestClient, conversation: str):
    r = post(client, "Where do penguins live?", conversation)
    assert r.status_code == 404
    assert "no conversation" in soup(r).select_one(".error").text
    assert client.get(f"/c/{conversation}", headers=HTML).status_code == 404


@pytest.mark.parametrize("url,status,says", [
    ("/documents/0123456789abcdef", 404, "no document"),
    ("/documents/..%2F..%2Fetc%2Fpasswd", 404, ""),
    ("/documents/etc", 404, "no document"),
    (f"/documents/{document_id('page.html')}?highlight=9-1", 422, "Cannot highlight"),
    (f"/documents/{document_id('page.html')}?passage=x", 422, "Cannot highlight"),
    ("/no/such/page", 404, "nothing at"),
])
def test_page_errors_are_friendly_pages(client: TestClient, url: str, status: int, says: str):
    r = client.get(url, headers=HTML)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    page = soup(r)
    assert says in page.select_one(".error").text and page.find("a", href="/") is not None
    assert "root:" not in r.text


def test_errors_are_json_for_api_clients(client: TestClient):
    r = client.get("/documents/0123456789abcdef")
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["type"] == "not_found"


# --- escaping ------------------------------------------------------------------------------------


@pytest.fixture
def evil(tmp_path: Path) -> Iterator[TestClient]:
    corpus = tmp_path / "evil"
    corpus.mkdir()
    (corpus / "evil.txt").write_text(
        f"Hostile markup {SCRIPT}\n\nThe attacker hid {SCRIPT} inside the report about comets. "
        f"Then the attacker tried {IMG} on the comets page as well.\n", encoding="utf-8")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", min_confidence=0.0)
    build_index(s, FakeEmbedder)
    with TestClient(create_app(s, FakeEmbedder)) as c:
        yield c


def assert_shown_as_text(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    page = BeautifulSoup(html, "lxml")
    assert all(s.get("src") for s in page.find_all("script"))
    assert not page.find_all("img")
    assert not page.find_all(attrs={"onerror": True})


def test_hostile_document_is_shown_as_text(evil: TestClient):
    doc_id = document_id("evil.txt")
    r = evil.get(f"/documents/{doc_id}", headers=HTML)
    assert_shown_as_text(r.text)
    text = soup(r).select_one(".doctext").text
    assert SCRIPT in text and IMG in text
    assert SCRIPT in soup(r).find("h1").text  # the title is the first line
    assert SCRIPT in evil.get(f"/api/documents/{doc_id}").json()["text"]


def test_hostile_answer_and_question_are_shown_as_text(evil: TestClient):
    question = f"What did the attacker hide in the comets report {IMG}?"
    r = post(evil, question)
    assert r.status_code == 200
    assert_shown_as_text(r.text)
    page = soup(r)
    assert IMG in page.select_one(".question").text
    assert "attacker" in page.select_one("article.answer .text").text
    stored = evil.get(f"/api/conversations/{conversation_of(r)}").json()["turns"]
    assert stored[0]["question"] == question
    # And a forged stored turn cannot inject markup either.
    forged = {**stored[0], "answer": f"{IMG} [1]", "query": SCRIPT}
    again = post(evil, "comets?", seed(evil, [forged]))
    assert_shown_as_text(again.text)
    assert IMG in soup(again).select_one("article.answer .text").text


# --- the short answer and the reason of an abstention, without JavaScript ------------------------

TEA = "When did the East India Company bring tea to London?"


def span_in(citations: list, text: str) -> tuple[int, str, int]:
    """(n, document id, start) of `text` inside the first supporting sentence holding it."""
    for c in citations:
        for a, b in c.highlight:
            sentence = c.text[a - c.start:b - c.start]
            if text in sentence:
                return c.n, c.document_id, a + sentence.index(text)
    raise AssertionError(f"{text!r} is in no supporting sentence")


@pytest.fixture
def spanned(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The form's engine, answering with the short answer "1660s" (or none, if not found)."""
    import dataclasses

    import qa.server.turns
    from qa.search.answer import AnswerSpan

    real = qa.server.turns.ask_in_conversation

    def ask(*args, **kwargs):
        answer = real(*args, **kwargs)
        n, doc_id, start = span_in(answer.citations, "1660s")
        return dataclasses.replace(
            answer, answer_span=AnswerSpan("1660s", n, doc_id, start, start + len("1660s")))

    monkeypatch.setattr(qa.server.turns, "ask_in_conversation", ask)
    return client


def test_form_post_shows_the_short_answer_first_and_marks_it(spanned: TestClient):
    r = post(spanned, TEA)
    page = soup(r)
    answer = page.select_one("#thread article.answer")
    first = answer.find(["p", "div"])
    assert "short-answer" in first["class"] and first.find("strong").text == "1660s"
    text = answer.select_one(".text")
    previews = [p.extract() for p in text.select(".preview")]  # shown on hover, not inline
    assert [p.select_one(".preview-text").text for p in previews] == [
        "The British East India Company brought tea to London in the 1660s."]
    marks = text.select("mark.span")
    assert [m.text for m in marks] == ["1660s"]
    assert "brought tea to London in the 1660s" in text.text and text.text.count("1660s") == 1
    assert marks[0].previous_sibling.endswith("London in the ")
    # The link to the source carries the span, and the document page marks it in the sentence.
    href = text.select_one("a.cite")["href"]
    assert re.search(r"&span=\d+-\d+#hl$", href)
    assert answer.select_one(".sources a.source")["href"] == href
    doc = soup(spanned.get(href, headers=HTML))
    sentence = doc.find("mark", id="hl")
    assert "East India Company brought tea" in sentence.text
    assert [m.text for m in sentence.select("mark.span")] == ["1660s"]
    # The span is kept with the conversation.
    stored = spanned.get(f"/api/conversations/{conversation_of(r)}").json()["turns"]
    assert stored[0]["answer_span"]["text"] == "1660s"


def crafted(client: TestClient, question: str, **changes) -> dict:
    """A real API answer with some fields changed, as a stored turn might hold it."""
    turn = client.post("/api/ask", json={"question": question}).json()
    return {**turn, **changes}


def test_thread_renders_span_and_reason_and_escapes_them(client: TestClient):
    answered = crafted(client, "Which company brought tea to London?")
    cite = answered["citations"][0]
    # A span whose text is not in the sentence: shown as the short answer, nothing marked.
    answered["answer_span"] = {"text": IMG, "n": cite["n"], "document_id": cite["document_id"],
                               "start": cite["start"], "end": cite["start"] + 3}
    reason = f"The question seems to be in French {SCRIPT}. Try asking in English."
    abstained = crafted(client, "???", reason=reason)
    assert abstained["abstained"]
    r = post(client, "Where do penguins live?", seed(client, [answered, abstained]))
    assert r.status_code == 200
    assert_shown_as_text(r.text)
    turns = soup(r).select("#thread li.turn")
    assert len(turns) == 3
    assert turns[0].select_one(".short-answer strong").text == IMG
    assert turns[0].select("mark") == []
    badge = turns[1].select_one(".badge")
    assert badge.text == "Not found in the corpus"
    assert badge.find_next_sibling("p")["class"] == ["reason"]
    assert badge.find_next_sibling("p").text == reason
    assert turns[1].select_one(".short-answer") is None
    assert turns[0].select_one(".reason") is None  # only abstentions say why


def test_abstention_without_a_reason_shows_only_the_badge(client: TestClient):
    abstained = crafted(client, "???", reason="")
    page = soup(post(client, "Where do penguins live?", seed(client, [abstained])))
    first = page.select("#thread li.turn")[0]
    assert first.select_one(".badge") is not None and first.select_one(".reason") is None


@pytest.mark.parametrize("span", ["x", "5-2", "0-99999999", "1-2,3-4", "-1-4", "9" * 60, "",
                                  "outside"])
def test_document_page_ignores_a_bad_span(client: TestClient, span: str):
    doc_id = document_id("page.html")
    text = client.get(f"/api/documents/{doc_id}").json()["text"]
    a = text.index("The British East India Company")
    b = text.index("1660s.") + len("1660s.")
    if span == "outside":
        span = "0-3"  # well formed, but not inside the highlighted sentence
    r = client.get(f"/documents/{doc_id}?highlight={a}-{b}&span={span}", headers=HTML)
    assert r.status_code == 200
    mark = soup(r).find("mark", id="hl")
    assert mark.text == text[a:b] and mark.select("mark") == []
    # And a good one is marked inside the sentence.
    at = text.index("1660s")
    good = soup(client.get(f"/documents/{doc_id}?highlight={a}-{b}&span={at}-{at + 5}"))
    assert [m.text for m in good.select("mark#hl mark.span")] == ["1660s"]
    assert good.find("mark", id="hl").text == text[a:b]


def test_the_span_is_marked_where_the_offsets_say_not_just_where_its_text_first_is(
        client: TestClient):
    turn = crafted(client, "Which company brought tea to London?")
    cite = turn["citations"][0]
    a, b, sentence = next((a, b, cite["text"][a - cite["start"]:b - cite["start"]])
                          for a, b in cite["highlight"]
                          if "London" in cite["text"][a - cite["start"]:b - cite["start"]])
    assert sentence.count("on") >= 2
    at = a + sentence.index("London") + 4  # the second "on" of "London"
    turn["answer_span"] = {"text": "on", "n": cite["n"], "document_id": cite["document_id"],
                           "start": at, "end": at + 2}
    page = soup(post(client, "Where do penguins live?", seed(client, [turn])))
    mark = page.select_one("#thread li.turn .text mark.span")
    assert mark.text == "on" and mark.previous_sibling.endswith("to Lond")
    assert f"&span={at}-{at + 2}#hl" in page.select_one("#thread li.turn a.cite")["href"]
