"""Answers from passages: pick supporting sentences, cite them, or abstain."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qa.answer_type import asked_kind, holds_kind
from qa.retrieve import Candidate, query_terms, term_idf
from qa.store import IndexVersion, StoredChunk
from qa.terms import keyed

NOT_IN_CORPUS = "The corpus does not answer this question."

# A sentence scores its share of the query's IDF mass plus this weight times the fused score of
# the passage holding it (relative to the best passage): large, so the lead sentence comes from
# the best passage (SQuAD, 1,000 questions: top sentence holds an answer 0.684 at weight 0.5,
# 0.693 at 2, 0.697 at 10). Embedding the candidate sentences as well moved the top sentence by
# under 0.5 points and cost 100+ ms a question, so sentences are chosen lexically.
PASSAGE_WEIGHT = 10.0
# Logistic model of "the corpus answers this": intercept, then weights on the best sentence's
# IDF coverage, the best passage's cosine to the query and its BM25 per unit of query IDF.
# Fitted by bench/fit_confidence.py on questions whose article is in the corpus versus
# questions whose article was held out (disjoint from the reported questions); the intercept
# is shifted so that the fitted threshold sits at 0.5, the default `min_confidence`.
CONFIDENCE_FEATURES = ("sentence_coverage", "passage_cosine", "passage_bm25")
CONFIDENCE_MODEL = (-10.5428, 7.3987, 13.7206, 1.4527)


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


def confidence_of(signals: dict[str, float]) -> float:
    """Probability that the corpus answers the question, from the answer's signals."""
    z = CONFIDENCE_MODEL[0] + sum(
        w * signals[name] for w, name in zip(CONFIDENCE_MODEL[1:], CONFIDENCE_FEATURES, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _abstain(question: str, query: str, chunks: list[StoredChunk], candidates: list[Candidate],
             version: IndexVersion, confidence: float, signals: dict[str, float]) -> Answer:
    citations, _ = _citations(chunks, candidates, {})
    return Answer(question, query, NOT_IN_CORPUS + (" The closest passages are listed below."
                                                    if citations else ""),
                  citations, [], round(confidence, 4), True, version.name, signals)


# Weight of a sentence holding what the question's wh-phrase asks for (a year for "when", a
# number for "how much", a name for "who"; see qa/answer_type.py), on the scale of keyword
# coverage (0..1).
ANSWER_TYPE_BONUS = 0.25


def answer_type_bonus(question: str, sentence: str, query_stems: frozenset[str] = frozenset()
                      ) -> float:
    """A bonus for a sentence that holds what the question's wh-phrase asks for."""
    return ANSWER_TYPE_BONUS if holds_kind(asked_kind(question), sentence, query_stems) else 0.0


def compose(
    question: str,
    query: str,
    candidates: list[Candidate],
    version: IndexVersion,
    min_confidence: float,
    max_sentences: int = 3,
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
    scored = []
    seen: set[tuple[str, int, int]] = set()
    sentences = version.sentences(chunks)
    keys = keyed(idf)
    stems_of_query = frozenset(idf)
    for rank, ch in enumerate(chunks):
        passage = max(fused.get(ch.id, 0.0), 0.0) / top if top > 0 else 0.0
        for a, b, stems in sentences.get(ch.id, []):
            key = (ch.doc_id, a, b)
            if key in seen:
                continue
            seen.add(key)
            coverage = sum(w for s, w in keys if s in stems) / total_idf
            text = ch.text[a - ch.start : b - ch.start]
            bonus = answer_type_bonus(question, text, stems_of_query) if coverage > 0 else 0.0
            score = coverage + PASSAGE_WEIGHT * passage + bonus
            scored.append((score, coverage, key, rank, text))
    # Stable sort: equal scores keep passage order, then reading order.
    scored.sort(key=lambda s: -s[0])
    best = scored[0]
    lead = candidates[0]
    signals = {
        "sentence_coverage": round(max(s[1] for s in scored), 4),
        "passage_cosine": round(float(lead.dense or 0.0), 4),
        "passage_bm25": round(float(lead.lexical or 0.0) / total_idf, 4),
    }
    confidence = confidence_of(signals)
    if confidence < min_confidence:
        return _abstain(question, query, chunks, candidates, version, confidence, signals)
    picked = [best]
    for s in scored[1:]:
        if len(picked) >= max_sentences or s[0] < best[0] - 0.1 or s[1] <= 0:
            break
        picked.append(s)

    # Number citations in order of first use; a sentence cites the best-ranked chunk holding it.
    by_rank: dict[int, list[tuple[int, int]]] = {}
    for s in picked:
        by_rank.setdefault(s[3], []).append((s[2][1], s[2][2]))
    citations, n_of_rank = _citations(chunks, candidates, by_rank)
    for cit in citations:
        if cit.highlight and cit.page is not None:
            # A passage may straddle pages: cite the page of the supporting sentence.
            cit.page = version.page_at(cit.document_id, cit.highlight[0][0])
    answer_sents = [AnswerSentence(s[4], n_of_rank[s[3]], s[2][1], s[2][2], round(s[0], 4))
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
