"""Answers from passages: pick supporting sentences, cite them, or abstain."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.chunk import sentence_spans
from qa.embed import Embedder
from qa.retrieve import Candidate, query_terms, stem_set, term_idf
from qa.store import IndexVersion, StoredChunk

NOT_IN_CORPUS = "The corpus does not answer this question."

# Sentence score = weights on (cosine to the query, share of query IDF mass covered, the fused
# score of the passage holding it, normalised to the best passage). Tuned on a fixed sample of
# SQuAD dev questions and SciFact train claims; see bench/README.md.
SENTENCE_WEIGHTS = (0.5, 0.3, 0.2)
# Logistic model of "the corpus answers this": intercept, then weights on the best sentence's
# cosine, its IDF coverage, the best passage's cosine and its BM25 per unit of query IDF.
# Fitted by bench/fit_confidence.py on questions whose article is in the corpus versus
# questions whose article was held out (disjoint from the reported questions).
CONFIDENCE_MODEL = (-6.0, 9.0, 4.0, 0.0, 0.0)


@dataclass
class Citation:
    """A numbered source: a passage of a document and the sentences in it that support the answer."""

    n: int
    chunk_id: int
    document_id: str
    title: str
    path: str
    page: int | None
    section: str | None
    start: int
    end: int
    text: str
    score: float
    highlight: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class AnswerSentence:
    """One sentence of the answer, its citation number and its span in the source document."""

    text: str
    n: int
    start: int
    end: int
    score: float


@dataclass
class Answer:
    """An answer with its citations, or an abstention that still lists the closest passages."""

    question: str
    query: str
    text: str
    citations: list[Citation]
    sentences: list[AnswerSentence]
    confidence: float
    abstained: bool
    index_version: str = ""
    signals: dict[str, float] = field(default_factory=dict)


class SentenceVectors:
    """A bounded cache of sentence embeddings, keyed by index version and document span."""

    def __init__(self, max_items: int = 200_000):
        self._items: OrderedDict[tuple[str, str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.max_items = max_items

    def get(self, version: str, embedder: Embedder,
            keys: Sequence[tuple[str, int, int]], texts: Sequence[str]) -> np.ndarray:
        """Vectors for the sentences, embedding only the ones not seen before."""
        full = [(version, *k) for k in keys]
        with self._lock:
            todo = [i for i, k in enumerate(full) if k not in self._items]
        if todo:
            fresh = embedder.embed([texts[i] for i in todo])
            with self._lock:
                for i, v in zip(todo, fresh, strict=True):
                    self._items[full[i]] = v
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        with self._lock:
            out = [self._items.get(k) for k in full]
        if any(v is None for v in out):  # evicted meanwhile by another thread
            return embedder.embed(list(texts))
        return np.stack(out)  # type: ignore[arg-type]


def confidence_of(signals: dict[str, float]) -> float:
    """Probability that the corpus answers the question, from the answer's signals."""
    b0, b1, b2, b3, b4 = CONFIDENCE_MODEL
    z = (b0 + b1 * signals["sentence_cosine"] + b2 * signals["sentence_coverage"]
         + b3 * signals["passage_cosine"] + b4 * signals["passage_bm25"])
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _abstain(question: str, query: str, chunks: list[StoredChunk], candidates: list[Candidate],
             version: IndexVersion, confidence: float, signals: dict[str, float]) -> Answer:
    citations, _ = _citations(chunks, candidates, {})
    return Answer(question, query, NOT_IN_CORPUS + (" The closest passages are listed below."
                                                    if citations else ""),
                  citations, [], round(confidence, 4), True, version.name, signals)


def compose(
    question: str,
    query: str,
    query_vector: np.ndarray,
    candidates: list[Candidate],
    version: IndexVersion,
    embedder: Embedder,
    min_confidence: float,
    max_sentences: int = 3,
    sentence_vectors: SentenceVectors | None = None,
) -> Answer:
    """Build a cited answer from ranked candidate chunks, or an abstention."""
    terms = query_terms(query)
    if not terms:
        # Nothing to search for: say so, and cite nothing rather than an arbitrary passage.
        return Answer(question, query, NOT_IN_CORPUS, [], [], 0.0, True, version.name)
    chunks = version.chunks([c.chunk_id for c in candidates])
    if not chunks:
        return _abstain(question, query, [], candidates, version, 0.0, {})
    idf = term_idf(version, terms)
    total_idf = sum(idf.values()) or 1.0
    fused = {c.chunk_id: c.score for c in candidates}
    top = max(fused.values()) or 1.0

    # Every sentence of every candidate, keyed by its document span so overlaps count once.
    sents: dict[tuple[str, int, int], tuple[int, str]] = {}
    for rank, ch in enumerate(chunks):
        for a, b in sentence_spans(ch.text, ch.start):
            key = (ch.doc_id, a, b)
            if key not in sents:
                sents[key] = (rank, ch.text[a - ch.start : b - ch.start])
    keys = list(sents)
    texts = [sents[k][1] for k in keys]
    cache = sentence_vectors or SentenceVectors(max_items=len(keys))
    vecs = cache.get(version.name, embedder, keys, texts)
    cos = vecs @ np.asarray(query_vector, dtype=np.float32).reshape(-1)
    w_cos, w_cov, w_passage = SENTENCE_WEIGHTS
    scored = []
    for key, text, c in zip(keys, texts, cos, strict=True):
        rank = sents[key][0]
        stems = stem_set(text)
        coverage = sum(w for s, w in idf.items() if s in stems) / total_idf
        passage = max(fused.get(chunks[rank].id, 0.0), 0.0) / top if top > 0 else 0.0
        score = w_cos * float(c) + w_cov * coverage + w_passage * passage
        scored.append((score, float(c), coverage, key, rank, text))
    scored.sort(key=lambda s: -s[0])
    best = scored[0]
    lead = candidates[0]
    signals = {
        "sentence_cosine": round(best[1], 4),
        "sentence_coverage": round(best[2], 4),
        "passage_cosine": round(float(lead.dense or 0.0), 4),
        "passage_bm25": round(float(lead.lexical or 0.0) / total_idf, 4),
    }
    confidence = confidence_of(signals)
    if confidence < min_confidence:
        return _abstain(question, query, chunks, candidates, version, confidence, signals)
    picked = [best]
    for s in scored[1:]:
        if len(picked) >= max_sentences or s[0] < best[0] - 0.1:
            break
        picked.append(s)

    # Number citations in order of first use; a sentence cites the best-ranked chunk holding it.
    by_rank: dict[int, list[tuple[int, int]]] = {}
    for s in picked:
        by_rank.setdefault(s[4], []).append((s[3][1], s[3][2]))
    citations, n_of_rank = _citations(chunks, candidates, by_rank)
    for cit in citations:
        if cit.highlight and cit.page is not None:
            # A passage may straddle pages: cite the page of the supporting sentence.
            cit.page = version.page_at(cit.document_id, cit.highlight[0][0])
    answer_sents = [AnswerSentence(s[5], n_of_rank[s[4]], s[3][1], s[3][2], round(s[0], 4))
                    for s in picked]
    text = " ".join(f"{s.text} [{s.n}]" for s in answer_sents)
    return Answer(question, query, text, citations, answer_sents, round(confidence, 4), False,
                  version.name, signals)


def _citations(
    chunks: list[StoredChunk], candidates: list[Candidate], used: dict[int, list[tuple[int, int]]]
) -> tuple[list[Citation], dict[int, int]]:
    """Citations for the chunks, cited ones first, overlapping chunks of a document merged;
    with the citation number of each chunk rank."""
    score = {c.chunk_id: c.score for c in candidates}
    order = sorted(range(len(chunks)), key=lambda r: (r not in used, r))
    out: list[Citation] = []
    n_of_rank: dict[int, int] = {}
    for r in order:
        ch = chunks[r]
        hl = sorted(used.get(r, []))
        merged = next((c for c in out if c.document_id == ch.doc_id
                       and ch.start < c.end and c.start < ch.end), None)
        if merged is not None:
            # The same passage again (overlapping windows): widen the first citation.
            if ch.start < merged.start:
                merged.text = ch.text[: merged.start - ch.start] + merged.text
                merged.start = ch.start
            if ch.end > merged.end:
                merged.text = merged.text + ch.text[len(ch.text) - (ch.end - merged.end):]
                merged.end = ch.end
            merged.highlight = sorted(set(merged.highlight) | set(hl))
            n_of_rank[r] = merged.n
            continue
        n_of_rank[r] = len(out) + 1
        out.append(Citation(len(out) + 1, ch.id, ch.doc_id, ch.title, ch.path, ch.page, ch.section,
                            ch.start, ch.end, ch.text, round(score.get(ch.id, 0.0), 4), hl))
    return out, n_of_rank
