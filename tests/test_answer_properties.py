"""Property-based tests of the answer composer: any Unicode corpus and question, exact citations."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.config import Settings
from qa.index.build import build_index
from qa.search.engine import Engine

from .conftest import FakeEmbedder

WORDS = ["harbour", "comet", "glacier", "ferry", "lantern", "orchard", "tide", "copper",
         "Reykjavík", "東京", "القاهرة", "naïve", "straße"]
# The awkward parts overrepresented: sentence ends, newlines, invisible, RTL and combining marks.
ALPHABET = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    st.sampled_from(list(".!?;:,\"'()-– \n\n\t\u200b\u200d\u202e\u2066\u0301\u00a0\ufeff")),
)
NOISE = st.text(ALPHABET, max_size=600)
SENTENCE = st.lists(st.sampled_from(WORDS), min_size=2, max_size=8).map(
    lambda ws: " ".join(ws).capitalize() + ".")
DOCUMENT = st.lists(st.one_of(NOISE, SENTENCE), min_size=1, max_size=8).map("\n".join)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(docs=st.lists(DOCUMENT, min_size=1, max_size=3), anchor=SENTENCE,
       question_words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
       question_noise=st.text(ALPHABET, max_size=40))
def test_citations_are_exact_slices_of_their_documents(docs: list[str], anchor: str,
                                                       question_words: list[str],
                                                       question_noise: str):
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i, text in enumerate(docs):
            # Every corpus has at least one readable sentence, so the build has something to index.
            (corpus / f"doc{i}.txt").write_text(f"{text}\n{anchor}\n", encoding="utf-8")
        s = Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index", min_confidence=0.0)
        build_index(s, FakeEmbedder)
        engine = Engine(s, FakeEmbedder)
        question = " ".join(question_words) + " " + question_noise + "?"
        answer = engine.ask(question)
        version = engine.version

        assert answer.text and answer.index_version == version.name
        numbers = {c.n for c in answer.citations}
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
        if not answer.abstained:
            assert answer.citations and answer.sentences
            assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)} <= numbers
        for c in answer.citations:
            doc = version.document(c.document_id)
            assert 0 <= c.start < c.end <= len(doc.text)
            assert doc.text[c.start:c.end] == c.text
            for a, b in c.highlight:
                assert c.start <= a < b <= c.end and doc.text[a:b].strip()
        by_n = {c.n: c for c in answer.citations}
        for sentence in answer.sentences:
            cited = by_n[sentence.n]
            doc = version.document(cited.document_id)
            assert doc.text[sentence.start:sentence.end] == sentence.text
            assert cited.start <= sentence.start < sentence.end <= cited.end
        version.close()
