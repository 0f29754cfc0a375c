"""Answers from passages: pick supporting sentences, cite them, or abstain."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qa.chunk import sentence_spans
from qa.embed import Embedder
from qa.retrieve import Candidate, query_terms
from qa.store import IndexVersion, StoredChunk

NOT_IN_CORPUS = "The corpus does not answer this question."


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
    text: str
    n: int
    start: int
    end: int
    score: float


@dataclass
class Answer:
    question: str
    query: str
    text: str
    citations: list[Citation]
    sentences: list[AnswerSentence]
    confidence: float
    abstained: bool
    index_version: str = ""


def _lexical_overlap(terms: list[str], text: str, idf: dict[str, float]) -> float:
    """Share of the query's IDF mass whose terms appear in `text`."""
    if not terms:
        return 0.0
    words = set(query_terms(text))
    total = sum(idf.get(t, 1.0) for t in terms)
    hit = sum(idf.get(t, 1.0) for t in terms if t in words)
    return hit / total if total else 0.0


def compose(
    question: str,
    query: str,
    query_vector: np.ndarray,
    candidates: list[Candidate],
    version: IndexVersion,
    embedder: Embedder,
    min_confidence: float,
    max_sentences: int = 3,
) -> Answer:
    """Build a cited answer from ranked candidate chunks, or an abstention."""
    terms = query_terms(query)
    chunks = version.chunks([c.chunk_id for c in candidates])
    if not terms or not chunks:
        return Answer(question, query, NOT_IN_CORPUS, _citations(chunks, candidates, {})[0], [],
                      0.0, True, version.name)
    n_total = max(version.n_chunks, 1)
    idf = {t: math.log(1 + n_total / (1 + df)) for t, df in version.doc_freqs(terms).items()}

    # Every sentence of every candidate, keyed by its document span so overlaps count once.
    sents: dict[tuple[str, int, int], tuple[int, str]] = {}
    for rank, ch in enumerate(chunks):
        for a, b in sentence_spans(ch.text, ch.start):
            key = (ch.doc_id, a, b)
            if key not in sents:
                sents[key] = (rank, ch.text[a - ch.start : b - ch.start])
    keys = list(sents)
    vecs = embedder.embed([sents[k][1] for k in keys])
    cos = vecs @ query_vector.reshape(-1)
    scored = []
    for key, c in zip(keys, cos, strict=True):
        rank, text = sents[key]
        lex = _lexical_overlap(terms, text, idf)
        score = 0.6 * float(c) + 0.4 * lex - 0.02 * rank
        scored.append((score, float(c), lex, key, rank, text))
    scored.sort(key=lambda s: -s[0])
    best = scored[0]
    confidence = _confidence(best[1], best[2])
    picked = [best]
    for s in scored[1:]:
        if len(picked) >= max_sentences or s[0] < best[0] - 0.12:
            break
        picked.append(s)

    # Number citations in order of first use; a sentence cites the best-ranked chunk holding it.
    by_rank: dict[int, list[tuple[int, int]]] = {}
    for s in picked:
        by_rank.setdefault(s[4], []).append((s[3][1], s[3][2]))
    citations, n_of_rank = _citations(chunks, candidates, by_rank)
    for c in citations:
        if c.highlight and c.page is not None:
            # A passage may straddle pages: cite the page of the supporting sentence.
            c.page = version.page_at(c.document_id, c.highlight[0][0])
    abstained = confidence < min_confidence
    answer_sents = [AnswerSentence(s[5], n_of_rank[s[4]], s[3][1], s[3][2], round(s[0], 4))
                    for s in picked]
    if abstained:
        text = NOT_IN_CORPUS + " The closest passages are listed below."
    else:
        text = " ".join(f"{s.text} [{s.n}]" for s in answer_sents)
    return Answer(question, query, text, citations, answer_sents, round(confidence, 4), abstained,
                  version.name)


def _confidence(cosine: float, overlap: float) -> float:
    """Map the best sentence's similarity and term coverage to 0..1."""
    z = 9.0 * cosine + 4.0 * overlap - 6.0
    return 1.0 / (1.0 + math.exp(-z))


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
