"""Hybrid retrieval: dense (FAISS) and lexical (FTS5 BM25) candidates, scored together.

Each candidate chunk gets three signals: its cosine to the query, its BM25 score (divided by
the query's best), and how much of the query's IDF mass its best sentence covers. The score is
a weighted sum of the three (see `Weights`); plain reciprocal-rank fusion is kept for
comparison.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.chunk import sentence_spans
from qa.store import IndexVersion, fts_query

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


class Stemmer:
    """Porter stems exactly as the index's FTS5 tokenizer makes them, cached per word."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(
            "CREATE VIRTUAL TABLE w USING fts5(x, tokenize='porter unicode61 remove_diacritics 2');"
            "CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance');")

    def stems(self, words: Iterable[str]) -> dict[str, str]:
        """word -> stem for each word (lower-case input expected)."""
        words = set(words)
        with self._lock:
            todo = [w for w in words if w not in self._cache]
            if todo:
                self._db.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)",
                                     list(enumerate(todo)))
                got = dict(self._db.execute("SELECT doc, term FROM v").fetchall())
                self._db.execute("DELETE FROM w")
                for i, w in enumerate(todo):
                    # Words the tokenizer splits (rare) keep their folded form.
                    self._cache[w] = got.get(i, _fold(w))
                if len(self._cache) > 200_000:
                    self._cache.clear()
            return {w: self._cache.get(w) or _fold(w) for w in words}


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_STEMMER: Stemmer | None = None


def stemmer() -> Stemmer:
    """The process-wide stemmer (created on first use, not at import)."""
    global _STEMMER
    if _STEMMER is None:
        _STEMMER = Stemmer()
    return _STEMMER


def stem_set(text: str) -> set[str]:
    """The distinct stems of a text's content words."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    table = stemmer().stems(words)
    return {table[w] for w in words}


@dataclass
class Weights:
    """How the three signals combine: weights on per-query normalised scores."""

    # Chosen on SciFact train and a 2,000-question SQuAD sample (bench/README.md).
    dense: float = 0.6  # on the raw cosine: min-max scaling blows up near-ties
    lexical: float = 0.1  # on BM25 divided by the best BM25 of the query
    sentence: float = 0.3
    rerank: int = 40  # chunks (best by the first two signals) that get the sentence signal


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
    sentence: float = 0.0  # share of the query's IDF mass covered by the best sentence
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


def lexical_scores(version: IndexVersion, terms: Sequence[str], ids: Sequence[int]) -> dict[int, float]:
    """BM25 (higher is better) of given chunks; chunks matching no term are left out."""
    match = fts_query(terms)
    if not match or not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = version.db.execute(
        f"SELECT rowid, bm25(chunks_fts, 0.5, 1.0) FROM chunks_fts "
        f"WHERE chunks_fts MATCH ? AND rowid IN ({marks})", [match, *ids]).fetchall()
    return {int(r[0]): -float(r[1]) for r in rows}


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


_SENTENCE_END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=["'(\[]?[A-Z0-9])|\n\s*\n""")


def rough_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans by punctuation and blank lines: about 100 times faster than the chunker's
    splitter, and good enough to score a chunk (answers cite the exact sentences)."""
    spans, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[pos : m.start()].strip():
            spans.append((pos, m.start()))
        pos = m.end()
    if text[pos:].strip():
        spans.append((pos, len(text.rstrip())))
    return spans


class SentenceCache:
    """Exact sentence spans and stems of chunks, computed once per chunk (syntok is slow)."""

    def __init__(self, max_items: int = 100_000):
        self._items: OrderedDict[tuple[str, int], list[tuple[int, int, frozenset[str]]]] = \
            OrderedDict()
        self._lock = threading.Lock()
        self.max_items = max_items

    def sentences(self, version: str, chunk_id: int, text: str,
                  offset: int) -> list[tuple[int, int, frozenset[str]]]:
        """(start, end, stems) of each sentence of a chunk, in document offsets."""
        key = (version, chunk_id)
        with self._lock:
            got = self._items.get(key)
        if got is None:
            got = [(a, b, frozenset(stem_set(text[a - offset : b - offset])))
                   for a, b in sentence_spans(text, offset)]
            with self._lock:
                self._items[key] = got
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return got


SENTENCES = SentenceCache()


def best_sentences(
    texts: Sequence[tuple[str, int]], idf: dict[str, float]
) -> list[tuple[float, tuple[int, int] | None]]:
    """For each (chunk text, offset): the share of the query's IDF mass its best sentence
    covers, and that sentence's rough span in document offsets."""
    total = sum(idf.values())
    split = [[(a, b, [w for w in _WORD.findall(text[a:b].lower()) if w not in STOPWORDS])
              for a, b in rough_sentences(text)] for text, _ in texts]
    table = stemmer().stems(w for sents in split for _, _, words in sents for w in words)
    out: list[tuple[float, tuple[int, int] | None]] = []
    for (_, offset), sents in zip(texts, split, strict=True):
        best, span = 0.0, None
        for a, b, words in sents:
            stems = {table[w] for w in words}
            share = sum(v for s, v in idf.items() if s in stems) / total if total > 0 else 0.0
            if share > best:
                best, span = share, (a + offset, b + offset)
        out.append((best, span))
    return out


def best_sentence(
    text: str, offset: int, idf: dict[str, float]
) -> tuple[float, tuple[int, int] | None]:
    """The sentence of one chunk covering most of the query's IDF mass, and that share."""
    return best_sentences([(text, offset)], idf)[0]


class Retriever:
    """Finds the chunks most likely to answer a query in one index version."""

    def __init__(self, version: IndexVersion, n_candidates: int = 100,
                 weights: Weights = DEFAULT_WEIGHTS):
        self.version = version
        self.n_candidates = n_candidates
        self.weights = weights

    def candidates(self, query: str, query_vector: np.ndarray) -> list[Candidate]:
        """The union of dense and lexical top lists, every signal filled in, unsorted."""
        terms = query_terms(query)
        if not terms:
            return []
        n = self.n_candidates
        dense = self.version.dense_search(query_vector, n)
        # One FTS query scores every match anyway; a longer list also gives the dense-only
        # candidates their BM25 without a second query.
        scored = self.version.lexical_search(terms, max(n, 1000))
        lexical, bm25 = scored[:n], dict(scored)
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
                # Past the 1000th match BM25 is a small fraction of the best: count it as 0.
                c.lexical = bm25.get(cid, 0.0)
        for ch in self.version.chunks(list(cands)):
            c = cands[ch.id]
            c.doc_id, c.start, c.end, c.text = ch.doc_id, ch.start, ch.end, ch.text
        out = list(cands.values())
        # Splitting into sentences is the costly step: only the leading chunks need it.
        first = self._first_stage(out)
        idf = term_idf(self.version, terms)
        lead = [out[int(i)] for i in np.argsort(-first, kind="stable")[: self.weights.rerank]]
        for c, (share, span) in zip(lead, best_sentences([(c.text, c.start) for c in lead], idf),
                                    strict=True):
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
        return self.score(self.candidates(query, query_vector))[:k]
