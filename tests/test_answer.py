"""Answers: cited sentences with exact spans, merged overlapping passages, abstention."""

from __future__ import annotations

from qa.config import Settings
from qa.index.store import StoredChunk
from qa.search.answer import CONFIDENCE_FEATURES, Citation, _citations, confidence_of
from qa.search.engine import Engine
from qa.search.retrieve import Candidate

from .conftest import FakeEmbedder


def test_every_sentence_cites_an_exact_span(built: Settings):
    engine = Engine(built, FakeEmbedder)
    answer = engine.ask("Where do penguins live?")
    assert not answer.abstained and answer.sentences
    for s in answer.sentences:
        cit = next(c for c in answer.citations if c.n == s.n)
        doc = engine.version.document(cit.document_id)
        assert doc.text[s.start:s.end] == s.text
        assert cit.start <= s.start and s.end <= cit.end
        assert (s.start, s.end) in cit.highlight
        assert f"{s.text} [{s.n}]" in answer.text
    assert set(answer.signals) == set(CONFIDENCE_FEATURES)


def test_low_confidence_abstains_but_lists_passages(built: Settings):
    strict = built.model_copy(update={"min_confidence": 1.0})
    answer = Engine(strict, FakeEmbedder).ask("Which company brought tea to London?")
    assert answer.abstained and answer.sentences == []
    assert "does not answer" in answer.text and "closest passages" in answer.text
    assert answer.citations and all(not c.highlight for c in answer.citations)


def test_stop_words_only_abstains_without_citing(built: Settings):
    answer = Engine(built, FakeEmbedder).ask("What is it?")
    assert answer.abstained and answer.citations == [] and answer.confidence == 0.0


def test_overlapping_chunks_are_cited_once():
    def chunk(i: int, start: int, text: str) -> StoredChunk:
        return StoredChunk(i, "doc", i, start, start + len(text), text, None, None, "T", "t.txt")

    text = "One two. Three four. Five six."
    a = chunk(1, 0, text[:20])  # "One two. Three four."
    b = chunk(2, 9, text[9:])  # "Three four. Five six."
    c = StoredChunk(3, "other", 0, 0, 5, "Other", None, None, "O", "o.txt")
    cands = [Candidate(1, 0.9), Candidate(2, 0.8), Candidate(3, 0.1)]
    cits, n_of_rank = _citations([a, b, c], cands, {1: [(21, 30)]})
    assert len(cits) == 2
    merged: Citation = cits[0]
    assert (merged.start, merged.end, merged.text) == (0, len(text), text)
    assert merged.highlight == [(21, 30)] and n_of_rank == {0: 1, 1: 1, 2: 2}


def test_confidence_rises_with_evidence():
    weak = {"sentence_coverage": 0.1, "chunk_coverage": 0.1, "cosine_margin": 0.05,
            "kind_missing": 0.0, "kind_found": 0.0, "rare_missing": 0.5, "number_missing": 0.0,
            "names_missing": 0.0}
    strong = {**weak, "sentence_coverage": 1.0, "chunk_coverage": 1.0, "cosine_margin": 0.5,
              "rare_missing": 0.0}
    assert 0.0 <= confidence_of(weak) < 0.5 < confidence_of(strong) <= 1.0
    # A question that asks for a date, on a passage with no date in it, is less sure.
    assert confidence_of({**strong, "kind_missing": 1.0}) < confidence_of(strong)
