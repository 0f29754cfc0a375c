"""BM25 from precomputed impacts must rank and score exactly as SQLite's FTS5 bm25() does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.config import Settings
from qa.index.index_dir import IndexDir
from qa.index.terms import query_terms

QUESTIONS = [
    "Which company brought tea to London?",
    "volcano eruption Iceland ash",
    "tea tea tea",
    "running runs ran",
    "a question about nothing in the corpus xyzzy",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_postings_agree_with_fts5(built: Settings, question: str):
    version = IndexDir(built.index_dir).open_current()
    assert version.postings is not None
    terms = query_terms(question)
    fast, score_of = version.lexical(terms, 50)
    slow = version._fts_search(terms, 50)
    assert [cid for cid, _ in fast] == [cid for cid, _ in slow]
    assert np.allclose([s for _, s in fast], [s for _, s in slow], rtol=1e-5)
    for cid, s in slow:
        assert score_of(cid) == pytest.approx(s, rel=1e-5)
    version.close()


def test_doc_freqs_agree_with_fts5(built: Settings):
    version = IndexDir(built.index_dir).open_current()
    terms = query_terms("tea London company volcano xyzzy")
    fast = version.doc_freqs(terms)
    postings, version.postings = version.postings, None
    slow = version.doc_freqs(terms)
    version.postings = postings
    assert fast == slow and fast["xyzzy"] == 0 and fast["tea"] > 0
    version.close()


@pytest.mark.parametrize("incremental", [False, True])
def test_stored_sentences_cover_each_chunk(built: Settings, incremental: bool):
    if incremental:  # unchanged files keep the sentences their previous version stored
        from qa.index.build import build_index

        from .conftest import FakeEmbedder

        first = next(p for p in sorted(built.corpus_dir.iterdir()) if p.suffix == ".txt")
        first.write_text(first.read_text() + "\n\nA new closing line about harbours.\n")
        report = build_index(built, FakeEmbedder)
        assert not report.full and report.unchanged
    version = IndexDir(built.index_dir).open_current()
    rows = version.db.execute("SELECT id, start, end, text, sentences FROM chunks").fetchall()
    assert rows
    for cid, start, end, text, raw in rows:
        sentences = json.loads(raw)
        assert sentences, cid
        for a, b, stems in sentences:
            assert start <= a < b <= end
            assert isinstance(stems, str)
        # Nothing but white space falls between or around the stored sentences.
        covered = "".join(text[a - start:b - start] for a, b, _ in sentences)
        assert "".join(covered.split()) == "".join(text.split())
    version.close()


@pytest.mark.parametrize("damage", ["short", "out of range"])
def test_damaged_postings_are_reported(built: Settings, damage: str):
    from qa.errors import IndexCorruptError
    from qa.index.store import IndexVersion

    folder = IndexDir(built.index_dir).versions / IndexDir(built.index_dir).current_name()
    ids = np.load(folder / "postings_chunks.npy")
    if damage == "short":
        ids = ids[:3]
    else:
        ids[-1] = 10**6
    np.save(folder / "postings_chunks.npy", ids)
    with pytest.raises(IndexCorruptError, match="postings"):
        IndexVersion(folder)


def test_an_index_of_the_previous_format_still_answers(built: Settings):
    from qa.search.engine import Engine

    from .conftest import FakeEmbedder

    question = "Which company brought tea to London?"
    now = Engine(built, FakeEmbedder).ask(question)
    index = IndexDir(built.index_dir)
    folder = index.versions / index.current_name()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    for name in ("postings_offsets.npy", "postings_chunks.npy", "postings_impacts.npy"):
        (folder / name).unlink()
    engine = Engine(built, FakeEmbedder)
    assert engine.version.postings is None
    before = engine.ask(question)
    assert not before.abstained and before.text == now.text
    assert [c.chunk_id for c in before.citations] == [c.chunk_id for c in now.citations]
