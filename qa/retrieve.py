"""Hybrid retrieval: dense (FAISS) and lexical (FTS5 BM25) candidates, fused."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qa.store import IndexVersion

_WORD = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves s t don also may might must shall us
""".split())


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, stop words removed, order kept, no repeats."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        if w not in STOPWORDS and w not in seen:
            seen[w] = None
    return list(seen)


@dataclass
class Candidate:
    chunk_id: int
    score: float
    dense: float | None = None
    lexical: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None


def fuse_rrf(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int = 60
) -> list[Candidate]:
    """Reciprocal-rank fusion of two ranked lists."""
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


class Retriever:
    """Finds the chunks most likely to answer a query in one index version."""

    def __init__(self, version: IndexVersion, n_candidates: int = 100):
        self.version = version
        self.n_candidates = n_candidates

    def search(self, query: str, query_vector: np.ndarray, k: int) -> list[Candidate]:
        terms = query_terms(query)
        dense = self.version.dense_search(query_vector, self.n_candidates)
        lexical = self.version.lexical_search(terms, self.n_candidates) if terms else []
        return fuse_rrf(dense, lexical)[:k]
