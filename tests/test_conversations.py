"""Conversations kept on the server: ids, owners, copies, limits, deletion, export, rebuilds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import qa.server.conversations as conversations
from qa.config import Settings
from qa.index.build import build_index
from qa.server.api import create_app
from qa.server.conversations import ConversationStore, owner_key, title_of

from .conftest import FakeEmbedder

TEA = "Which company brought tea to London?"
EVIL = "https://evil.example"


@pytest.fixture
def app(built: Settings) -> Iterator[TestClient]:
    # A threshold at which an unrelated question abstains and the tea question does not.
    with TestClient(create_app(built.model_copy(update={"min_confidence": 0.3}),
                               FakeEmbedder)) as c:
        yield c


def stranger(client: TestClient) -> TestClient:
    """Another browser on the same server: no cookie of its own yet."""
    other = TestClient(client.app)
    assert not other.cookies
    return other


def chat(client: TestClient, question: str, cid: str | None = None) -> dict:
    r = client.post("/api/chat", json={"question": question, "conversation_id": cid})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_conversation_has_an_unguessable_id_and_belongs_to_its_browser(app: TestClient):
    first = chat(app, TEA)
    cid = first["conversation_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid) and first["url"] == f"/c/{cid}"
    assert first["turn"]["n"] == 0 and not first["forked"] and first["title"] == TEA
    cookie = app.cookies.get("qa_client")
    assert cookie and len(cookie) >= 20
    second = chat(app, "When did it do that?", cid)
    assert second["conversation_id"] == cid and second["turn"]["n"] == 1
    assert "1660s" in second["turn"]["answer"]  # the follow-up used the first turn
    listed = app.get("/api/conversations").json()
    assert [(c["id"], c["turns"]) for c in listed] == [(cid, 2)]
    # The cookie is the key; the file holds only its hash.
    files = Path(app.app.state.settings.index_dir).glob("conversations.sqlite3*")  # with WAL
    data = b"".join(f.read_bytes() for f in files)
    assert cookie.encode() not in data and owner_key(cookie).encode() in data

    # Another browser sees none of it in its list, but may open the conversation by its id...
    other = stranger(app)
    assert other.get("/api/conversations").json() == []
    shown = other.get(f"/api/conversations/{cid}").json()
    assert not shown["owned"] and [t["n"] for t in shown["turns"]] == [0, 1]
    # ...may not delete it or mark its answers...
    assert other.delete(f"/api/conversations/{cid}").status_code == 403
    r = other.post(f"/api/conversations/{cid}/turns/0/feedback", json={"rating": "down"})
    assert r.status_code == 403
    # ...and continues it as a copy of its own.
    copy = chat(other, "Where do penguins live?", cid)
    assert copy["forked"] and copy["conversation_id"] != cid and copy["turn"]["n"] == 2
    assert [c["id"] for c in other.get("/api/conversations").json()] == [copy["conversation_id"]]
    assert len(app.get(f"/api/conversations/{cid}").json()["turns"]) == 2  # original untouched


@pytest.mark.parametrize("cid", ["nope", "A" * 22, "../../../etc/passwd", "%00" * 8, "x" * 300])
def test_unknown_ids_are_404(app: TestClient, cid: str):
    assert app.get(f"/api/conversations/{cid}").status_code == 404
    assert app.delete(f"/api/conversations/{cid}").status_code == 404
    assert app.get(f"/c/{cid}/export").status_code == 404
    r = app.post("/api/chat", json={"question": TEA, "conversation_id": cid[:64]})
    assert r.status_code in (404, 422)


def test_delete_removes_the_conversation_and_refuses_other_sites(app: TestClient):
    cid = chat(app, TEA)["conversation_id"]
    r = app.delete(f"/api/conversations/{cid}", headers={"origin": EVIL})
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    assert app.get(f"/api/conversations/{cid}").status_code == 200
    r = app.post(f"/c/{cid}/delete", headers={"origin": EVIL})
    assert r.status_code == 403
    assert app.delete(f"/api/conversations/{cid}").status_code == 204
    assert app.get(f"/api/conversations/{cid}").status_code == 404
    assert app.get("/api/conversations").json() == []


def test_the_plain_form_deletes_too(app: TestClient):
    r = app.post("/", data={"question": TEA}, headers={"accept": "text/html"})
    cid = str(r.url).split("/c/")[1].split("#")[0]
    r = app.post(f"/c/{cid}/delete", headers={"accept": "text/html"})
    assert r.status_code == 200 and str(r.url) == "http://testserver/"
    assert app.get(f"/c/{cid}", headers={"accept": "text/html"}).status_code == 404


def test_sizes_are_capped(app: TestClient, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(conversations, "MAX_TURNS", 2)
    cid = chat(app, "x" * 500 + " tea?")["conversation_id"]
    assert len(app.get(f"/api/conversations/{cid}").json()["title"]) == conversations.TITLE_CHARS
    chat(app, TEA, cid)
    r = app.post("/api/chat", json={"question": TEA, "conversation_id": cid})
    assert r.status_code == 400 and "at most 2 turns" in r.json()["error"]["message"]
    assert len(app.get(f"/api/conversations/{cid}").json()["turns"]) == 2
    r = app.post("/api/chat", json={"question": "q" * 2001})
    assert r.status_code == 422 and app.get("/api/conversations").json()[0]["id"] == cid


def test_store_keeps_each_owner_below_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(conversations, "MAX_PER_OWNER", 3)
    store = ConversationStore(tmp_path / "c.sqlite3")
    made = [store.create("me", f"question {i}") for i in range(5)]
    other = store.create("you", "theirs")
    assert [s.id for s in store.list("me")] == made[:1:-1]  # the newest three
    assert [s.id for s in store.list("you")] == [other]
    with pytest.raises(conversations.NotFoundError):
        store.get(made[0])
    assert store.list(None) == []
    assert title_of("  a\n\tb  ") == "a b"


def test_conversations_survive_a_rebuild(app: TestClient, built: Settings):
    cid = chat(app, TEA)["conversation_id"]
    (built.corpus_dir / "moon.txt").write_text("The Moon orbits the Earth every 27 days.\n")
    build_index(built, FakeEmbedder, full=True)
    assert app.app.state.engine.reload_if_changed(strict=True)
    shown = app.get(f"/api/conversations/{cid}").json()
    assert shown["turns"][0]["question"] == TEA
    assert chat(app, "How long does the Moon take to orbit the Earth?", cid)["turn"]["n"] == 1


def test_export_is_markdown_with_footnotes(app: TestClient):
    cid = chat(app, TEA)["conversation_id"]
    chat(app, "Where is the *best* <b>xylophone</b> [1] museum?", cid)
    r = app.get(f"/c/{cid}/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert "attachment" in r.headers["content-disposition"]
    md = r.text
    assert md.startswith(f"# {TEA}\n")
    answer = md.split("## ", 2)[1]
    assert "East India Company" in answer and "[^1-1]" in answer
    note = re.search(r"^\[\^1-1\]: \*\*Tea history\*\* \(page\.html, .*\): “(.+)” <(.+)>$", md,
                     re.MULTILINE)
    assert note and "East India Company" in note.group(1)
    assert note.group(2).startswith("http://testserver/documents/") and "quote=" in note.group(2)
    # The second question's markup is shown as written, and its abstention says so.
    assert r"\*best\* \<b\>xylophone\</b\> \[1\]" in md
    assert "*Not found in the corpus.*" in md


def test_an_abstention_lists_one_near_miss_per_document_with_its_best_sentence(
        app: TestClient):
    turn = chat(app, "Which river flows past volcanoes and geothermal tea bees?")["turn"]
    assert turn["abstained"]
    docs = [c["document_id"] for c in turn["citations"]]
    assert docs and len(docs) == len(set(docs))
    assert [c["n"] for c in turn["citations"]] == list(range(1, len(docs) + 1))
    for c in turn["citations"]:
        assert len(c["highlight"]) <= 1
    with_sentence = [c for c in turn["citations"] if c["highlight"]]
    assert with_sentence
    for c in with_sentence:
        (a, b), = c["highlight"]
        sentence = c["text"][a - c["start"]:b - c["start"]]
        assert any(w in sentence.lower() for w in ("river", "flows", "volcano", "geothermal", "tea",
                                                   "bees")), sentence
