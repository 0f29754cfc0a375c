"""Hybrid retrieval: signals, fusion, stemming, queries with nothing to search for."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import Settings
from qa.search.engine import Engine
from qa.search.retrieve import Candidate, Retriever, best_sentence, fuse_rrf, query_terms, stemmer

from .conftest import FakeEmbedder


def test_query_terms_drop_stop_words_and_repeats():
    assert query_terms("What is the capital of the Capital?") == ["capital"]
    assert query_terms("??? !!") == []


def test_stems_match_the_index_tokenizer():
    stems = stemmer().stems(["running", "runs", "erupted", "café"])
    assert stems["running"] == stems["runs"] == "run"
    assert stems["erupted"] == "erupt"
    assert stems["café"] == "cafe"


def test_best_sentence_prefers_the_one_covering_rare_terms():
    text = "Bees live in hives. Hekla erupted in 2000 and again later."
    share, span = best_sentence(text, 100, {"hekla": 3.0, "erupt": 1.0, "bee": 1.0})
    assert span == (120, 100 + len(text))
    assert share == 0.8


def test_rrf_counts_both_lists():
    fused = fuse_rrf([(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)], k=60)
    # 2 is second in one list and first in the other, so it beats 1 (first in one list only).
    assert [c.chunk_id for c in fused] == [2, 1, 3]
    by_id = {c.chunk_id: c for c in fused}
    assert by_id[2].score == pytest.approx(1 / 62 + 1 / 61)
    assert by_id[1].score == pytest.approx(1 / 61) and by_id[3].score == pytest.approx(1 / 62)
    assert (by_id[2].dense_rank, by_id[2].lexical_rank) == (1, 0)
    assert (by_id[1].lexical, by_id[3].dense) == (None, None)


def test_every_candidate_has_every_signal(built: Settings):
    engine = Engine(built, FakeEmbedder)
    q = "Which company brought tea to London?"
    r = Retriever(engine.version, 2)  # short lists
    # A vector about something else, so the dense and lexical lists hold different chunks.
    elsewhere = engine.embedder.embed(["penguins in Antarctica and glaciers in the Alps"])[0]
    cands = r.candidates(q, elsewhere)
    dense_ids = {cid for cid, _ in engine.version.dense_search(elsewhere, 2)}
    lexical, bm25 = engine.version.lexical(query_terms(q), 2)
    lexical_ids = {cid for cid, _ in lexical}
    assert {c.chunk_id for c in cands} == dense_ids | lexical_ids
    assert dense_ids - lexical_ids and lexical_ids - dense_ids
    # A signal missing from one list is filled in from the index, not left empty or zero.
    stored = engine.version.vectors([c.chunk_id for c in cands]) @ elsewhere
    for c, cosine in zip(cands, stored, strict=True):
        assert c.dense == pytest.approx(float(cosine), abs=2e-3)  # vectors stored as float16
        assert c.lexical == pytest.approx(bm25(c.chunk_id))
    assert all(c.lexical > 0 for c in cands if c.chunk_id in lexical_ids)
    qv = engine.embedder.embed([q])[0]
    wide = Retriever(engine.version, 50)
    ranked = wide.score(wide.candidates(q, qv))
    assert ranked[0].text and "East India Company" in ranked[0].text
    assert ranked[0].best_span is not None
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_stop_word_query_retrieves_nothing(built: Settings):
    engine = Engine(built, FakeEmbedder)
    vector = np.ones(64, np.float32) / 8
    assert Retriever(engine.version).search("the of and", vector, 5) == []
    # The same vector with one content word finds chunks: the stop words made the difference.
    assert len(Retriever(engine.version).search("the volcano of", vector, 5)) == 5


def test_score_with_single_candidate():
    from qa.search.retrieve import DEFAULT_WEIGHTS as W

    r = Retriever.__new__(Retriever)
    r.weights = W
    # BM25 is divided by the query's best, so a lone candidate's lexical signal is 1.
    out = r.score([Candidate(7, 0.0, dense=0.3, lexical=2.0, sentence=0.5)])
    assert out[0].chunk_id == 7
    assert out[0].score == pytest.approx(W.dense * 0.3 + W.lexical * 1.0 + W.sentence * 0.5)
    # No BM25 at all: no division by zero, the lexical part is just absent.
    none = r.score([Candidate(8, 0.0, dense=0.3, lexical=0.0, sentence=0.5)])
    assert none[0].score == pytest.approx(W.dense * 0.3 + W.sentence * 0.5)
    # Two candidates: each BM25 relative to the best of the two.
    pair = r.score([Candidate(1, 0.0, dense=0.2, lexical=1.0), Candidate(2, 0.0, dense=0.2,
                                                                         lexical=4.0)])
    assert [c.chunk_id for c in pair] == [2, 1]
    assert pair[0].score - pair[1].score == pytest.approx(W.lexical * 0.75)


def test_search_fills_every_result_even_past_the_rerank_depth(built: Settings):
    from qa.search.retrieve import Weights

    engine = Engine(built, FakeEmbedder)
    q = "tea London company volcano"
    qv = engine.embedder.embed([q])[0]
    shallow = Retriever(engine.version, 50, Weights(rerank=2)).search(q, qv, 6)
    assert len(shallow) > 2
    assert all(c.doc_id and c.text and c.end > c.start for c in shallow)
    full = Retriever(engine.version, 50, Weights(rerank=2))
    ranked = full.score(full.candidates(q, qv))[:6]
    assert [c.chunk_id for c in ranked] == [c.chunk_id for c in shallow]


def test_stemmer_stays_right_when_its_cache_fills():
    from qa.index.terms import Stemmer

    s = Stemmer(max_cache=3)
    first = s.stems(["running", "erupted", "bees", "volcanoes"])
    again = s.stems(["running", "erupted", "bees", "volcanoes", "cafés"])
    assert first == {k: again[k] for k in first}
    assert again["running"] == "run" and again["cafés"] == "cafe"
