"""Filters by document id and path prefix, applied inside retrieval (before the top-k cut)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa import Index
from qa.config import Settings
from qa.errors import BadFilterError
from qa.index.ingest import document_id
from qa.search import filters
from qa.search.engine import Engine
from qa.search.filters import Filter, normalise_prefix
from qa.search.retrieve import Retriever

from .conftest import FakeEmbedder

QUESTION = "How fast do glaciers melt in spring?"
FAR = "archive/2001/minor-note.txt"


def crowded_corpus(root: Path, n: int = 40) -> Path:
    """`n` documents all about glaciers melting, and one, far down any ranking, that mentions
    glaciers only in passing among other matters."""
    (root / "glaciers").mkdir(parents=True)
    for i in range(n):
        (root / "glaciers" / f"g{i:02d}.txt").write_text(
            f"Glacier report {i}\n\nGlaciers melt fast in spring; glacier melt in spring is "
            f"fast. Spring melt of glaciers number {i} was fast.\n", encoding="utf-8")
    (root / "archive" / "2001").mkdir(parents=True)
    (root / FAR).write_text(
        "Minor note\n\nThe committee discussed budgets, parking, catering, printers, the "
        "annual picnic and, briefly, a glacier. Lunch was served at noon in the hall.\n",
        encoding="utf-8")
    (root / "archived.txt").write_text("Archived\n\nNothing about ice here at all.\n",
                                       encoding="utf-8")
    return root


@pytest.fixture
def crowded(tmp_path: Path) -> Settings:
    settings = Settings(corpus_dir=crowded_corpus(tmp_path / "corpus"),
                        index_dir=tmp_path / "index", min_confidence=0.0, candidates=10,
                        reload_interval=0)
    Index.build(settings=settings, embedder=FakeEmbedder).close()
    return settings


def doc_of(engine: Engine, chunk_id: int) -> str:
    return engine.version.spans([chunk_id])[chunk_id].doc_id


def test_the_allowed_document_is_below_the_cut_unfiltered(crowded: Settings):
    engine = Engine(crowded, FakeEmbedder)
    qvec = engine.embedder.embed([QUESTION])[0]
    far = document_id(FAR)
    unfiltered = Retriever(engine.version, crowded.candidates).candidates(QUESTION, qvec)
    # Neither search brings it up: dropping results after the search would leave nothing.
    assert far not in {doc_of(engine, c.chunk_id) for c in unfiltered}
    where = Filter.of(documents=[far])
    found = Retriever(engine.version, crowded.candidates, where=where).search(QUESTION, qvec, 3)
    assert found and {c.doc_id for c in found} == {far}
    assert found[0].dense is not None and found[0].lexical and found[0].lexical > 0
    engine.close()


def test_filtered_answer_cites_only_allowed_documents(crowded: Settings):
    with Index.open(settings=crowded, embedder=FakeEmbedder) as index:
        plain = index.ask(QUESTION)
        assert plain.citations and all(c.path.startswith("glaciers/") for c in plain.citations)
        by_id = index.ask(QUESTION, documents=[document_id(FAR)])
        assert by_id.citations and {c.path for c in by_id.citations} == {FAR}
        assert "glacier" in by_id.citations[0].text
        by_path = index.ask(QUESTION, paths=["archive/"])
        assert {c.path for c in by_path.citations} == {FAR}
        # Both kinds together: a document must satisfy both.
        both = index.ask(QUESTION, documents=[document_id("glaciers/g03.txt"),
                                              document_id(FAR)], paths=["glaciers"])
        assert {c.path for c in both.citations} == {"glaciers/g03.txt"}


def test_string_prefix_and_folder_prefix(crowded: Settings):
    with Index.open(settings=crowded, embedder=FakeEmbedder) as index:
        # "archive" as a string prefix also takes "archived.txt"; "archive/" is the folder only.
        loose = Filter.of(paths=["archive"])
        strict = Filter.of(paths=["archive/"])
        assert loose is not None and strict is not None
        with index.engine.lease() as version:
            docs_loose = {version.spans([int(i)])[int(i)].doc_id
                          for i in loose.chunk_ids(version)}
            docs_strict = {version.spans([int(i)])[int(i)].doc_id
                           for i in strict.chunk_ids(version)}
        assert docs_loose == {document_id(FAR), document_id("archived.txt")}
        assert docs_strict == {document_id(FAR)}


@pytest.mark.parametrize("kind", ["flat", "hnsw-exact", "hnsw-selector", "ivf-exact",
                                  "ivf-selector", "fts"])
def test_every_search_path_keeps_k_candidates(tmp_path: Path, kind: str,
                                              monkeypatch: pytest.MonkeyPatch):
    """Flat FAISS with an ID selector, an HNSW graph or IVF lists scored exactly or searched
    through the selector, and the FTS5 search of indexes without postings all rank among the
    allowed chunks only."""
    graph = kind.startswith(("hnsw", "ivf"))
    settings = Settings(corpus_dir=crowded_corpus(tmp_path / "corpus", n=30),
                        index_dir=tmp_path / "index", min_confidence=0.0, candidates=10,
                        graph_threshold=1 if graph else 20_000,
                        ann_threshold=1 if kind.startswith("ivf") else 200_000)
    Index.build(settings=settings, embedder=FakeEmbedder).close()
    if kind.endswith("selector"):
        monkeypatch.setattr(filters, "EXACT_LIMIT", 0)
        monkeypatch.setattr(filters, "GRAPH_SHARE", 0.0)
    engine = Engine(settings, FakeEmbedder)
    version = engine.version
    expected = kind.split("-")[0].replace("ivf", "ivf_sq8").replace("fts", "flat")
    assert version.manifest["vector_index"]["type"] == expected
    if kind == "fts":
        version.postings = None  # what an index of format 2 has
    qvec = engine.embedder.embed([QUESTION])[0]
    allowed_docs = {document_id(FAR), document_id("glaciers/g07.txt"),
                    document_id("glaciers/g21.txt")}
    where = Filter.of(documents=sorted(allowed_docs))
    assert where is not None
    allowed = where.chunk_ids(version)
    dense = filters.dense_within(version, qvec, 10, allowed)
    assert len(dense) == len(allowed)  # every allowed chunk, however far from the query
    assert {doc_of(engine, c) for c, _ in dense} == allowed_docs
    assert [s for _, s in dense] == sorted((s for _, s in dense), reverse=True)
    exact = version.vectors(allowed) @ qvec
    # 8-bit codes (IVF) move a cosine by up to a few hundredths.
    assert dense[0][1] == pytest.approx(float(exact.max()),
                                        abs=3e-2 if kind == "ivf-selector" else 1e-3)
    lexical, bm25 = filters.lexical_within(version, ["glacier", "melt"], 10, where, allowed)
    assert lexical and {doc_of(engine, c) for c, _ in lexical} <= allowed_docs
    assert bm25(lexical[0][0]) == pytest.approx(lexical[0][1])
    found = Retriever(version, 10, where=where).search(QUESTION, qvec, 3)
    assert len(found) == 3 and {c.doc_id for c in found} <= allowed_docs
    engine.close()


@pytest.mark.parametrize("raw,expected", [
    ("sub", "sub"), ("./sub/", "sub/"), ("/sub//x.md", "sub/x.md"), ("sub\\bees", "sub/bees"),
    ("  a/./b/ ", "a/b/"),
])
def test_prefixes_are_normalised(raw: str, expected: str):
    assert normalise_prefix(raw) == expected


@pytest.mark.parametrize("raw,says", [
    ("../etc", "'..'"), ("a/../../b", "'..'"), ("", "empty"), ("/", "empty"), ("./", "empty"),
    ("a\x00b", "NUL"), ("x" * 600, "at most"),
])
def test_bad_prefixes_are_refused(raw: str, says: str):
    with pytest.raises(BadFilterError, match=says):
        normalise_prefix(raw)


def test_unknown_document_and_empty_match_are_refused(crowded: Settings):
    with Index.open(settings=crowded, embedder=FakeEmbedder) as index:
        with pytest.raises(BadFilterError, match="no indexed document has the id 'nope'"):
            index.ask(QUESTION, documents=["nope"])
        with pytest.raises(BadFilterError, match="matches the filter"):
            index.ask(QUESTION, paths=["no-such-folder/"])
        with pytest.raises(BadFilterError, match="matches the filter"):
            index.ask(QUESTION, documents=[document_id(FAR)], paths=["glaciers/"])
        # Checked even when the question has nothing to search for.
        with pytest.raises(BadFilterError, match="nope"):
            index.ask("the of and", documents=["nope"])
    assert Filter.of() is None and Filter.of([], []) is None
    with pytest.raises(BadFilterError, match="lists"):
        Filter.of(documents="abc")
    with pytest.raises(BadFilterError, match="at most"):
        Filter.of(documents=[f"d{i}" for i in range(500)])


def test_allowed_chunks_are_cached_per_version(crowded: Settings):
    engine = Engine(crowded, FakeEmbedder)
    where = Filter.of(paths=["glaciers/"])
    assert where is not None
    first = where.chunk_ids(engine.version)
    assert where.chunk_ids(engine.version) is first
    assert not first.flags.writeable and np.all(np.diff(first) > 0)
    engine.close()
