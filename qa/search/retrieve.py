"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, scored together.

Each candidate chunk gets three signals: its cosine to the query, its BM25 score (divided by
the query's best), and, for the leading chunks, a sentence signal: how much of the query's term
weight its best sentence and the whole chunk cover, and whether a sentence holds the kind of
answer the question asks for. The score is a weighted sum (see `Weights`); plain
reciprocal-rank fusion is kept for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.index.store import ChunkSpan, IndexVersion, Sentence, parse_sentences
from qa.index.terms import STOPWORDS, Stemmer, keyed, query_terms, stem_set, stemmer
from qa.search.answer_type import asked_kind, holds_kind
from qa.search.filters import Filter, dense_within, lexical_within

__all__ = ["STOPWORDS", "Stemmer", "query_terms", "stem_set", "stemmer", "Retriever", "Candidate",
           "Weights", "DEFAULT_WEIGHTS", "fuse_rrf", "term_idf", "best_sentences", "best_sentence"]


@dataclass
class Weights:
    """How the signals combine: weights on per-query normalised scores.

    Chosen on SciFact train and a 2,000-question SQuAD sample (bench/README.md, bench/ideas.py).
    """

    dense: float = 0.6  # on the raw cosine: min-max scaling blows up near-ties
    lexical: float = 0.1  # on BM25 divided by the best BM25 of the query
    sentence: float = 0.3  # on the sentence signal below
    rerank: int = 40  # chunks (best by the first two signals) that get the sentence signal
    # The sentence signal of a chunk: the best over its sentences of (best_sentence x the share
    # of the query's term weight the sentence covers + answer_type if it holds the kind of
    # token the question asks for), plus whole_chunk x the share the whole chunk covers.
    best_sentence: float = 0.8
    answer_type: float = 0.3
    whole_chunk: float = 0.2
    # Term weights are IDF x log((rerank + 1) / (reranked chunks holding the term + 0.5)) to
    # this power: a term nearly every leading chunk holds no longer tells them apart.
    local_idf: float = 0.5


DEFAULT_WEIGHTS = Weights()


@dataclass
class Candidate:
    """A retrieved chunk with every signal that ranked it."""

    chunk_id: int
    score: float
    dense: float | None = None
    lexical: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None
    sentence: float = 0.0  # the sentence signal (see Weights), 0 outside the reranked lead
    best_span: tuple[int, int] | None = None  # that sentence, in document offsets
    doc_id: str = ""
    start: int = 0
    end: int = 0
    text: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def fuse_rrf(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int = 60
) -> list[Candidate]:
    """Reciprocal-rank fusion of two ranked lists (the baseline)."""
    cands: dict[int, Candidate] = {}
    for rank, (cid, s) in enumerate(dense):
        c = cands.setdefault(cid, Candidate(cid, 0.0))
        c.dense, c.dense_rank = s, rank
        c.score += 1.0 / (k + rank + 1)
    for rank, (cid, s) in enumerate(lexical):
        c = cands.setdefault(cid, Candidate(cid, 0.0))
        c.lexical, c.lexical_rank = s, rank
        c.score += 1.0 / (k + rank + 1)
    return sorted(cands.values(), key=lambda c: -c.score)


def term_idf(version: IndexVersion, terms: Sequence[str]) -> dict[str, float]:
    """Stem -> BM25-style IDF over the index's chunks, for the query's content words."""
    n = max(version.n_chunks, 1)
    freqs = version.doc_freqs(list(terms))
    stems = stemmer().stems(terms)
    out: dict[str, float] = {}
    for t in terms:
        df = freqs.get(t, 0)
        out[stems[t]] = max(out.get(stems[t], 0.0), math.log(1 + (n - df + 0.5) / (df + 0.5)))
    return out


def best_sentences(
    chunks: Sequence[list[Sentence]], idf: dict[str, float]
) -> list[tuple[float, tuple[int, int] | None]]:
    """For each chunk's sentences: the share of the query's IDF mass its best sentence covers,
    and that sentence's span in document offsets."""
    total = sum(idf.values())
    keys = keyed(idf)
    out: list[tuple[float, tuple[int, int] | None]] = []
    for sentences in chunks:
        best, span = 0.0, None
        if total > 0:
            for a, b, stems in sentences:
                share = sum(v for s, v in keys if s in stems) / total
                if share > best:
                    best, span = share, (a, b)
        out.append((best, span))
    return out


def sentence_signals(
    spans: Sequence[ChunkSpan], idf: dict[str, float], question: str, weights: Weights
) -> list[tuple[float, tuple[int, int] | None]]:
    """The sentence signal of each chunk (see `Weights`) and its best sentence's span."""
    sentences = parse_sentences(spans)
    # Padded stem strings joined stay padded: " a b  c " still holds " a " and " c ".
    whole = ["".join(st for _, _, st in sents) for sents in sentences]
    keys = keyed(idf)
    if weights.local_idf and keys:
        n = len(sentences)
        held = [sum(k in chunk for chunk in whole) for k, _ in keys]
        keys = [(k, v * math.log((n + 1) / (h + 0.5)) ** weights.local_idf)
                for (k, v), h in zip(keys, held, strict=True)]
    total = sum(v for _, v in keys)
    if total <= 0:
        return [(0.0, None)] * len(spans)
    keys = [(k, v / total) for k, v in keys]
    kind = asked_kind(question) if weights.answer_type else None
    query_stems = set(idf)
    out: list[tuple[float, tuple[int, int] | None]] = []
    for span, sents, chunk in zip(spans, sentences, whole, strict=True):
        best, best_span = 0.0, None
        for a, b, st in sents:
            score = weights.best_sentence * sum(v for k, v in keys if k in st)
            if kind and holds_kind(kind, span.text[a - span.start:b - span.start], query_stems):
                score += weights.answer_type
            if score > best:
                best, best_span = score, (a, b)
        covered = sum(v for k, v in keys if k in chunk)
        out.append((best + weights.whole_chunk * covered, best_span))
    return out


def best_sentence(
    text: str, offset: int, idf: dict[str, float]
) -> tuple[float, tuple[int, int] | None]:
    """The sentence of one text covering most of the query's IDF mass, and that share."""
    return best_sentences(parse_sentences([ChunkSpan(0, "", offset, offset + len(text), text, "")]),
                          idf)[0]


class Retriever:
    """Finds the chunks most likely to answer a query in one index version, among the chunks
    of the documents `where` allows (all when it is None)."""

    def __init__(self, version: IndexVersion, n_candidates: int = 100,
                 weights: Weights = DEFAULT_WEIGHTS, where: Filter | None = None):
        self.version = version
        self.n_candidates = n_candidates
        self.weights = weights
        self.where = where
        # Resolved now, so a filter naming an unknown document fails before any search.
        self.allowed = where.chunk_ids(version) if where is not None else None

    def candidates(self, query: str, query_vector: np.ndarray,
                   all_details: bool = True) -> list[Candidate]:
        """The union of dense and lexical top lists, every signal filled in, unsorted.

        With `all_details` off, only the chunks that get the sentence signal (the only ones
        that can reach the top `rerank`) have their document, offsets and text filled in."""
        terms = query_terms(query)
        if not terms:
            return []
        n = self.n_candidates
        if self.where is not None and self.allowed is not None:
            # Both searches rank only the allowed chunks, so a filter costs no candidates.
            dense = dense_within(self.version, query_vector, n, self.allowed)
            lexical, bm25 = lexical_within(self.version, terms, n, self.where, self.allowed)
        else:
            dense = self.version.dense_search(query_vector, n)
            lexical, bm25 = self.version.lexical(terms, n)
        cands: dict[int, Candidate] = {}
        for rank, (cid, s) in enumerate(dense):
            cands[cid] = Candidate(cid, 0.0, dense=s, dense_rank=rank)
        for rank, (cid, s) in enumerate(lexical):
            c = cands.setdefault(cid, Candidate(cid, 0.0))
            c.lexical, c.lexical_rank = s, rank
        missing_dense = [cid for cid, c in cands.items() if c.dense is None]
        if missing_dense:
            cos = self.version.vectors(missing_dense) @ query_vector.reshape(-1)
            for cid, s in zip(missing_dense, cos, strict=True):
                cands[cid].dense = float(s)
        for cid, c in cands.items():
            if c.lexical is None:
                c.lexical = bm25(cid)
        out = list(cands.values())
        # The sentence signal only reorders the leading chunks.
        first = self._first_stage(out)
        lead = [out[int(i)] for i in np.argsort(-first, kind="stable")[: self.weights.rerank]]
        stored = self.version.spans([c.chunk_id for c in (out if all_details else lead)])
        for cid, ch in stored.items():
            c = cands[cid]
            c.doc_id, c.start, c.end, c.text = ch.doc_id, ch.start, ch.end, ch.text
        idf = term_idf(self.version, terms)
        shares = sentence_signals([stored[c.chunk_id] for c in lead], idf, query, self.weights)
        for c, (share, span) in zip(lead, shares, strict=True):
            c.sentence, c.best_span = share, span
        return out

    def _first_stage(self, cands: list[Candidate]) -> np.ndarray:
        dense = np.array([c.dense or 0.0 for c in cands])
        lex = np.array([c.lexical or 0.0 for c in cands])
        lex = lex / lex.max() if lex.size and lex.max() > 0 else lex
        return self.weights.dense * dense + self.weights.lexical * lex

    def score(self, cands: list[Candidate]) -> list[Candidate]:
        """Set each candidate's fused score; return them best first."""
        if not cands:
            return []
        first = self._first_stage(cands)
        for c, f in zip(cands, first, strict=True):
            c.score = float(f + self.weights.sentence * c.sentence)
        return sorted(cands, key=lambda c: -c.score)

    def search(self, query: str, query_vector: np.ndarray, k: int) -> list[Candidate]:
        """The `k` best chunks for a query (none for a query with no content words)."""
        best = self.score(self.candidates(query, query_vector, all_details=False))[:k]
        missing = [c.chunk_id for c in best if not c.doc_id]
        for cid, ch in self.version.spans(missing).items():  # only when k > rerank
            c = next(c for c in best if c.chunk_id == cid)
            c.doc_id, c.start, c.end, c.text = ch.doc_id, ch.start, ch.end, ch.text
        return best
