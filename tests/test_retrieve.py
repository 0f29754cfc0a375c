"""Hybrid retrieval: signals, fusion, stemming, queries with nothing to search for."""

from __future__ import annotations

import numpy as np

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
    fused = fuse_rrf([(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)])
    assert [c.chunk_id for c in fused][0] == 2


def test_every_candidate_has_every_signal(built: Settings):
    engine = Engine(built, FakeEmbedder)
    q = "Which company brought tea to London?"
    r = Retriever(engine.version, 50)
    cands = r.candidates(q, engine.embedder.embed([q])[0])
    assert cands and all(c.dense is not None and c.lexical is not None for c in cands)
    ranked = r.score(cands)
    assert ranked[0].text and "East India Company" in ranked[0].text
    assert ranked[0].best_span is not None
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_stop_word_query_retrieves_nothing(built: Settings):
    engine = Engine(built, FakeEmbedder)
    assert Retriever(engine.version).search("the of and", np.ones(64, np.float32), 5) == []


def test_score_with_single_candidate():
    r = Retriever.__new__(Retriever)
    from qa.search.retrieve import DEFAULT_WEIGHTS
    r.weights = DEFAULT_WEIGHTS
    out = r.score([Candidate(7, 0.0, dense=0.3, lexical=2.0, sentence=0.5)])
    assert out[0].chunk_id == 7 and out[0].score > 0


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
