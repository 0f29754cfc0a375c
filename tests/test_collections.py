"""Several named corpora behind one server: the JSON API, /v1 model names, the page, admin."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.index.ingest import document_id
from qa.server.api import create_app
from qa.server.collections import collection_settings, parse_collection

from .conftest import FakeEmbedder
from .test_cli import ENV

NOTES = document_id("notes.txt")  # the same path, so the same id, in both collections


def two_corpora(root: Path) -> dict[str, Path]:
    tea, bees = root / "tea", root / "bees"
    (tea / "history").mkdir(parents=True)
    bees.mkdir()
    (tea / "history" / "britain.txt").write_text(
        "Tea in Britain\n\nThe East India Company brought tea to London in the 1660s.\n",
        encoding="utf-8")
    (tea / "notes.txt").write_text("Tea notes\n\nGreen tea is steamed or pan-fired.\n",
                                   encoding="utf-8")
    (bees / "hive.txt").write_text(
        "Honey bees\n\nA colony has one queen and thousands of workers. Workers perform a "
        "waggle dance to tell others where flowers are.\n", encoding="utf-8")
    (bees / "notes.txt").write_text("Bee notes\n\nDrones do not sting.\n", encoding="utf-8")
    (bees / "wax.txt").write_text("Wax\n\nWorkers make wax from glands under the abdomen.\n",
                                  encoding="utf-8")
    return {"tea": tea, "bees": bees}


@pytest.fixture
def served(tmp_path: Path) -> Settings:
    return Settings(collections=two_corpora(tmp_path), min_confidence=0.0,
                    index_dir=tmp_path / "unused-index")


@pytest.fixture
def client(served: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(served, FakeEmbedder)) as c:
        yield c


def ask(client: TestClient, question: str, **more) -> dict:
    r = client.post("/api/ask", json={"question": question, **more})
    assert r.status_code == 200, r.text
    return r.json()


def test_each_collection_has_its_own_index_inside_its_corpus(client: TestClient,
                                                             served: Settings):
    listed = client.get("/api/collections").json()
    assert [(c["name"], c["default"], c["documents"]) for c in listed] == [
        ("tea", True, 2), ("bees", False, 3)]
    assert all(c["index_version"] and c["chunks"] >= c["documents"] for c in listed)
    for name, corpus in served.collections.items():
        assert (corpus / ".qa-index" / "CURRENT").is_file(), name
    assert not served.index_dir.exists()  # the single-corpus folder is not used
    state = client.app.state
    assert state.engine is state.collections.default.engine  # older code sees the default
    assert state.builds is state.collections.default.builds


def test_index_root_puts_indexes_elsewhere(tmp_path: Path):
    s = Settings(collections=two_corpora(tmp_path / "c"), collection_index_root=tmp_path / "ix")
    assert [(n, o.corpus_dir.name, o.index_dir) for n, o in collection_settings(s)] == [
        ("tea", "tea", tmp_path / "ix" / "tea"), ("bees", "bees", tmp_path / "ix" / "bees")]
    single = Settings(corpus_dir=tmp_path / "c" / "tea", index_dir=tmp_path / "one")
    assert [(n, o) for n, o in collection_settings(single)] == [("qa", single)]


def test_ask_picks_the_collection(client: TestClient):
    default = ask(client, "Which company brought tea to London?")
    assert default["collection"] == "tea" and default["citations"][0]["path"] == (
        "history/britain.txt")
    assert "collection=" not in default["citations"][0]["url"]  # default links as before
    bees = ask(client, "What do workers perform to tell others where flowers are?",
               collection="bees")
    assert bees["collection"] == "bees" and not bees["abstained"]
    first = bees["citations"][0]
    assert first["path"] == "hive.txt" and "waggle dance" in first["text"]
    assert first["url"].startswith(f"/documents/{first['document_id']}?collection=bees&")
    # "qa" names the default collection here too.
    assert ask(client, "Which company brought tea to London?", collection="qa")[
        "collection"] == "tea"


def test_unknown_collection_is_404_everywhere(client: TestClient):
    says = "no collection named 'honey'; this server serves 'tea', 'bees'"
    responses = [
        client.post("/api/ask", json={"question": "Who?", "collection": "honey"}),
        client.get("/api/documents", params={"collection": "honey"}),
        client.get(f"/api/documents/{NOTES}", params={"collection": "honey"}),
        client.get("/api/index", params={"collection": "honey"}),
        client.get("/api/index/status", params={"collection": "honey"}),
    ]
    for r in responses:
        assert r.status_code == 404, r.text
        assert r.json()["error"]["message"] == says
    page = client.post("/", data={"question": "Who?", "collection": "honey"},
                       headers={"accept": "text/html"})
    assert page.status_code == 404 and "no collection named" in page.text


def test_documents_are_read_from_the_named_collection(client: TestClient):
    assert {d["path"] for d in client.get("/api/documents").json()} == {
        "history/britain.txt", "notes.txt"}
    bees = client.get("/api/documents", params={"collection": "bees"}).json()
    assert {d["path"] for d in bees} == {"hive.txt", "notes.txt", "wax.txt"}
    assert "Green tea" in client.get(f"/api/documents/{NOTES}").json()["text"]
    assert "Drones" in client.get(f"/api/documents/{NOTES}",
                                  params={"collection": "bees"}).json()["text"]
    page = client.get(f"/documents/{NOTES}", params={"collection": "bees", "passage": "0-9"})
    assert page.status_code == 200 and "Drones do not sting" in page.text
    tea = client.get("/api/index").json()
    bees_index = client.get("/api/index", params={"collection": "bees"}).json()
    assert (tea["documents"], bees_index["documents"]) == (2, 3)


def test_filters_work_within_a_collection(client: TestClient):
    q = "What do workers do?"
    only_wax = ask(client, q, collection="bees", filters={"documents": [document_id("wax.txt")]})
    assert {c["path"] for c in only_wax["citations"]} == {"wax.txt"}
    by_path = ask(client, "Who brought tea?", filters={"paths": ["history/"]})
    assert {c["path"] for c in by_path["citations"]} == {"history/britain.txt"}
    # wax.txt exists in bees only: asking the default collection for it is an unknown id.
    r = client.post("/api/ask", json={"question": q, "filters": {
        "documents": [document_id("wax.txt")]}})
    assert r.status_code == 422 and r.json()["error"]["type"] == "bad_filter"
    assert "no indexed document has the id" in r.json()["error"]["message"]


@pytest.mark.parametrize("filters,says", [
    ({"paths": ["../bees"]}, "'..'"),
    ({"paths": ["/"]}, "empty"),
    ({"paths": ["nowhere/"]}, "no indexed document matches the filter"),
    ({"documents": ["0123456789abcdef"]}, "no indexed document has the id '0123456789abcdef'"),
    ({"documents": "abc"}, "filters.documents"),
    ({"tags": ["x"]}, "filters.tags"),
])
def test_bad_filters_are_422(client: TestClient, filters: dict, says: str):
    r = client.post("/api/ask", json={"question": "What do workers do?", "filters": filters})
    assert r.status_code == 422, r.text
    assert says in r.json()["error"]["message"]


def test_v1_model_names_are_collections(client: TestClient):
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["qa", "tea", "bees"]
    for name in ("qa", "tea", "bees"):
        card = client.get(f"/v1/models/{name}")
        assert card.status_code == 200 and card.json()["id"] == name
    missing = client.get("/v1/models/gpt-4o")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == (
        "no model named 'gpt-4o'; this server serves 'qa', 'tea', 'bees'")
    body = client.post("/v1/chat/completions", json={"model": "bees", "messages": [
        {"role": "user", "content": "What do workers perform?"}]}).json()
    assert body["model"] == "bees" and body["qa"]["collection"] == "bees"
    assert body["citations"][0]["path"] == "hive.txt"
    assert "/documents/" in body["choices"][0]["message"]["content"]
    assert "collection=bees" in body["choices"][0]["message"]["content"]


def test_the_page_offers_a_choice_and_keeps_it_without_javascript(client: TestClient):
    page = client.get("/")
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page.text)
    assert options == [("tea", " selected"), ("bees", "")]
    assert '<select id="collection" name="collection">' in page.text
    answered = client.post("/", data={"question": "What do workers perform?",
                                      "collection": "bees"})
    assert answered.status_code == 200
    assert "hive.txt" in answered.text and "collection=bees" in answered.text
    assert re.findall(r'<option value="([^"]+)"( selected)?>', answered.text) == [
        ("tea", ""), ("bees", " selected")]


def test_admin_acts_on_the_named_collection(client: TestClient, served: Settings):
    before = client.get("/api/index", params={"collection": "bees"}).json()["version"]
    tea_before = client.get("/api/index").json()["version"]
    (served.collections["bees"] / "comb.txt").write_text(
        "Comb\n\nCells of the comb are hexagons.\n", encoding="utf-8")
    r = client.post("/api/index/rebuild", params={"collection": "bees"})
    assert r.status_code == 202, r.text
    assert r.json()["status_url"] == "/api/index/status?collection=bees"
    client.app.state.collections.get("bees").builds.join(timeout=60)
    status = client.get("/api/index/status", params={"collection": "bees"}).json()
    assert status["state"] == "succeeded" and status["serving_version"] != before
    assert client.get("/api/index/status").json()["state"] == "idle"  # the default's builds
    assert client.get("/api/index").json()["version"] == tea_before
    docs = client.get("/api/documents", params={"collection": "bees"}).json()
    assert "comb.txt" in {d["path"] for d in docs}


def test_one_corpus_is_the_collection_qa_without_a_picker(built: Settings):
    with TestClient(create_app(built, FakeEmbedder)) as c:
        assert [(x["name"], x["default"]) for x in c.get("/api/collections").json()] == [
            ("qa", True)]
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["qa"]
        assert '<select id="collection"' not in c.get("/").text


@pytest.mark.parametrize("text,says", [
    ("tea", "not name=path"), ("=x", "not name=path"), ("a/b=x", "must be 1 to 64"),
    ("-x=y", "must be 1 to 64"),
])
def test_collection_option_is_checked(text: str, says: str):
    with pytest.raises(ValueError, match=says):
        parse_collection(text)
    assert parse_collection(" docs = ./corpus ") == ("docs", Path("corpus"))


def test_bad_collection_names_in_settings_are_refused():
    with pytest.raises(ValueError, match="must be 1 to 64"):
        Settings(collections={"bad name": Path(".")})


@pytest.mark.parametrize("args,says", [
    (["--collection", "tea"], "not name=path"),
    (["--collection", "a=x", "--collection", "a=y"], "given twice"),
    (["--collection", "a=x", "--corpus", "y"], "not both"),
])
def test_serve_refuses_bad_collections(args: list[str], says: str):
    result = subprocess.run([sys.executable, "-m", "qa.cli", "serve", *args],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
