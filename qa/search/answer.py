"""Answers from passages: pick supporting sentences, cite them, or abstain."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qa.index.readers import looks_like_heading
from qa.index.store import IndexVersion, StoredChunk
from qa.index.terms import WORD, keyed, stemmer
from qa.search.calibrate import Baseline
from qa.search.evidence import constraints_missing, name_only
from qa.search.language import ENGLISH, question_language
from qa.search.retrieve import Candidate, query_terms, term_idf
from qa.search.span import (
    DATE,
    MONEY,
    NAME,
    NUMBER,
    PERCENT,
    PLACE,
    Span,
    answer_kind,
    find_span,
    focus_words,
    kind_present,
)
from qa.search.span_rank import best_phrase

NOT_IN_CORPUS = "The corpus does not answer this question."

# A sentence scores its share of the query's IDF mass plus this weight times the fused score of
# the passage holding it (relative to the best passage): large, so the lead sentence comes from
# the best passage (SQuAD, 1,000 questions: top sentence holds an answer 0.684 at weight 0.5,
# 0.693 at 2, 0.697 at 10). Embedding the candidate sentences as well moved the top sentence by
# under 0.5 points and cost 100+ ms a question, so sentences are chosen lexically.
PASSAGE_WEIGHT = 10.0
# Logistic model of "the corpus answers this", over the signals in CONFIDENCE_FEATURES (see
# `signals_of`): intercept first, then one weight per feature. Fitted by bench/fit_confidence.py
# on several corpora at once (SQuAD articles with half their paragraphs removed, so that some
# questions are near misses; articles of other styles), never on the questions it is reported
# on; the threshold is the highest that abstains on at most 7% of the answerable questions of
# every fit corpus, and the intercept is shifted so that it sits at 0.5, the default
# `min_confidence`.
CONFIDENCE_FEATURES = ("sentence_coverage", "chunk_coverage", "cosine_margin", "kind_missing",
                       "kind_found", "rare_missing", "number_missing", "names_missing")
CONFIDENCE_MODEL = (-0.823, 1.4731, 2.2137, 5.4009, -3.4981, 0.0649, -1.6475, -1.341, -0.7635)

@dataclass
class Citation:
    """A numbered source: a passage of a document and its sentences that support the answer."""

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
class AnswerSpan:
    """The shortest text that answers (a year, an amount, a name), inside cited sentence `n`;
    `start` and `end` are offsets into the document's clean text."""

    text: str
    n: int
    document_id: str
    start: int
    end: int


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
    answer_span: AnswerSpan | None = None
    # Why it abstained, in words a user can act on (empty when it answered).
    reason: str = ""


# A question that asks for a date, an amount, a percentage, a count or a place, answered by a
# sentence holding none, has its confidence halved: below the default threshold whatever else
# agrees. On SQuAD answerable questions this happens to 1.8%, half of which had the right sentence;
# it is what catches "where/when/how much" questions the corpus is about but never answers.
KIND_MISSING_FACTOR = 0.5


def confidence_of(signals: dict[str, float],
                  model: tuple[float, ...] = CONFIDENCE_MODEL) -> float:
    """Probability that the corpus answers the question, from the answer's signals."""
    z = model[0] + sum(w * signals[name]
                       for w, name in zip(model[1:], CONFIDENCE_FEATURES, strict=True))
    p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
    if signals.get("kind_missing") or vetoed(signals):
        return p * KIND_MISSING_FACTOR
    return p


def vetoed(signals: dict[str, float]) -> bool:
    """Whether the lead passage shares no word at all with the question: then the encoder's
    similarity alone is not evidence (on SQuAD 0.5% of answerable questions, and 9% of
    off-topic ones), and the confidence is halved like a missing kind of answer."""
    return "chunk_coverage" in signals and signals["chunk_coverage"] <= 0.0


# Without a probe baseline (see qa/calibrate.py), the probes' typical best cosine on a corpus of
# a few thousand passages.
DEFAULT_BASELINE = Baseline(0.2, 0.05)
_KIND_WORDS = {DATE: "a date", MONEY: "an amount of money", PERCENT: "a percentage",
               NUMBER: "a number", NAME: "a name", PLACE: "a place"}
NO_TERMS = "The question has no words to search for: only punctuation or very common words."
WEAK_MATCH = "No passage covers the question well enough to answer it."


def _reason(question: str, signals: dict[str, float], kind: str | None) -> str:
    """Why an abstention abstained, in words a user can act on."""
    language = question_language(question)
    if language != ENGLISH:
        return (f"The question seems to be in {language}. The documents are searched with a "
                "model that reads English, so a question in another language is answered only "
                "when its names and numbers lead to a clear passage. Try asking in English.")
    if kind and signals.get("kind_missing"):
        return (f"The closest passages are about the question but do not state "
                f"{_KIND_WORDS[kind]} that answers it.")
    return WEAK_MATCH


def _abstain(question: str, query: str, chunks: list[StoredChunk], candidates: list[Candidate],
             version: IndexVersion, confidence: float, signals: dict[str, float],
             reason: str) -> Answer:
    citations, _ = _citations(chunks, candidates, {})
    return Answer(question, query, NOT_IN_CORPUS + (" The closest passages are listed below."
                                                    if citations else ""),
                  citations, [], round(confidence, 4), True, version.name, signals,
                  reason=reason)


# Weight of a sentence holding what the question's wh-phrase asks for (a year for "when", an
# amount for "how much", a name for "who"; see qa/span.py), on the scale of keyword coverage
# (0..1).
ANSWER_TYPE_BONUS = 0.25


def is_heading(chunk_text: str, a: int, b: int) -> bool:
    """Whether text[a:b] of a chunk is a heading: a line of its own that reads like one."""
    before, after = chunk_text[max(0, a - 1):a], chunk_text[b:b + 1]
    return before in ("", "\n") and after in ("", "\n") and looks_like_heading(chunk_text[a:b])


# A question in another language is judged on the words it shares with the corpus (names,
# numbers, loanwords) only when it shares at least this many.
MIN_SHARED_TERMS = 2


def evidence_weights(question: str, idf: dict[str, float], n_chunks: int
                     ) -> dict[str, float] | None:
    """The query terms a supporting sentence is expected to hold, with their IDF weights; None
    when the question cannot be judged at all.

    Left out: the words of the wh-phrase that name the kind of answer ("company" in "which
    company", "year" in "what year"; the sentence says "IBM" or "2027" instead), and, for a
    question in another language than English, the words the corpus never uses (they cannot be
    expected to match; its names and numbers can). Such a question that shares fewer than
    MIN_SHARED_TERMS words with the corpus cannot be judged: the English encoder's similarity is
    no evidence across languages, and one shared word ("6G") is too thin a thread.
    """
    drop = set(stemmer().stems(focus_words(question)).values())
    if question_language(question) != ENGLISH:
        unseen = math.log(1 + (n_chunks + 0.5) / 0.5) - 1e-6
        seen = {s for s, w in idf.items() if w < unseen}
        if len(seen) < MIN_SHARED_TERMS:
            return None
        drop |= set(idf) - seen
    kept = {s: w for s, w in idf.items() if s not in drop}
    return kept or idf


@dataclass
class _Scored:
    score: float
    coverage: float
    key: tuple[str, int, int]  # document id, start, end
    rank: int  # of the chunk holding it
    text: str
    span: Span | None


def _stem_table(texts: list[str]) -> dict[str, str]:
    words = {w for t in texts for w in WORD.findall(t.lower())}
    return stemmer().stems(words)


def compose(
    question: str,
    query: str,
    candidates: list[Candidate],
    version: IndexVersion,
    min_confidence: float,
    max_sentences: int = 3,
    baseline: Baseline | None = None,
) -> Answer:
    """Build a cited answer from ranked candidate chunks, or an abstention."""
    terms = query_terms(query)
    if not terms:
        # Nothing to search for: say so, and cite nothing rather than an arbitrary passage.
        return Answer(question, query, NOT_IN_CORPUS, [], [], 0.0, True, version.name,
                      reason=NO_TERMS)
    chunks = version.chunks([c.chunk_id for c in candidates])
    if not chunks:
        return _abstain(question, query, [], candidates, version, 0.0, {},
                        _reason(question, {}, None))
    weights = evidence_weights(question, term_idf(version, terms), version.n_chunks)
    if weights is None:
        return _abstain(question, query, chunks, candidates, version, 0.0, {},
                        _reason(question, {}, None))
    idf = weights
    total_idf = sum(idf.values()) or 1.0
    fused = {c.chunk_id: c.score for c in candidates}
    top = max(fused.values()) or 1.0
    kind = answer_kind(question)

    # Every sentence of every candidate, keyed by its document span so overlaps count once.
    # Headings are context, not answers.
    scored: list[_Scored] = []
    seen: set[tuple[str, int, int]] = set()
    sentences = version.sentences(chunks)
    keys = keyed(idf)
    stems_of_query = frozenset(idf)
    lead_stems = ""
    lead_text = ""
    for rank, ch in enumerate(chunks):
        passage = max(fused.get(ch.id, 0.0), 0.0) / top if top > 0 else 0.0
        if rank == 0:
            lead_stems = "".join(st for _, _, st in sentences.get(ch.id, []))
            lead_text = ch.text
        for a, b, stems in sentences.get(ch.id, []):
            key = (ch.doc_id, a, b)
            if key in seen or is_heading(ch.text, a - ch.start, b - ch.start):
                continue
            seen.add(key)
            coverage = sum(w for s, w in keys if s in stems) / total_idf
            text = ch.text[a - ch.start : b - ch.start]
            span = None
            if kind and coverage > 0 and rank < 3:
                span = find_span(question, text, stems_of_query, _stem_table([text]))
            bonus = ANSWER_TYPE_BONUS if span else 0.0
            score = coverage + PASSAGE_WEIGHT * passage + bonus
            scored.append(_Scored(score, coverage, key, rank, text, span))
    if not scored:
        return _abstain(question, query, chunks, candidates, version, 0.0, {},
                        _reason(question, {}, None))
    # Stable sort: equal scores keep passage order, then reading order.
    scored.sort(key=lambda s: -s.score)
    best = scored[0]
    missing = not kind_present(question, best.text, stems_of_query, _stem_table([best.text]))
    signals = signals_of(best, lead_stems, candidates[0], idf, version.n_chunks, missing,
                         baseline or DEFAULT_BASELINE,
                         (name_only(question, best.text, idf), name_only(question, lead_text, idf)))
    signals.update(constraints_missing(question, best.text))
    confidence = confidence_of(signals)
    if confidence < min_confidence:
        return _abstain(question, query, chunks, candidates, version, confidence, signals,
                        _reason(question, signals, kind))
    picked = [best]
    for s in scored[1:]:
        if len(picked) >= max_sentences or s.score < best.score - 0.1 or s.coverage <= 0:
            break
        picked.append(s)

    # Number citations in order of first use; a sentence cites the best-ranked chunk holding it.
    by_rank: dict[int, list[tuple[int, int]]] = {}
    for s in picked:
        by_rank.setdefault(s.rank, []).append((s.key[1], s.key[2]))
    citations, n_of_rank = _citations(chunks, candidates, by_rank, [s.rank for s in picked])
    for cit in citations:
        if cit.highlight and cit.page is not None:
            # A passage may straddle pages: cite the page of the supporting sentence.
            cit.page = version.page_at(cit.document_id, cit.highlight[0][0])
    answer_sents = [AnswerSentence(s.text, n_of_rank[s.rank], s.key[1], s.key[2],
                                   round(s.score, 4)) for s in picked]
    text = " ".join(f"{s.text} [{s.n}]" for s in answer_sents)
    short = None
    span = best.span if kind else _phrase(question, best.text, idf)
    if span is not None:
        a = best.key[1] + span.start
        short = AnswerSpan(span.text, n_of_rank[best.rank], best.key[0], a, a + len(span.text))
    return Answer(question, query, text, citations, answer_sents, round(confidence, 4), False,
                  version.name, signals, short)


def _phrase(question: str, sentence: str, idf: dict[str, float]) -> Span | None:
    """The short answer to a question of no fixed kind, when the learnt ranker is sure of one."""
    if len(sentence) > 5000:
        return None
    found = best_phrase(question, sentence, _stem_table([question, sentence]), idf=idf)
    if found is None:
        return None
    a, b, probability = found
    return Span(a, b, sentence[a:b], probability)


def signals_of(best: _Scored, lead_stems: str, lead: Candidate, idf: dict[str, float],
               n_chunks: int, kind_missing: bool, baseline: Baseline,
               name_only_stems: tuple[set[str], set[str]] = (set(), set())) -> dict[str, float]:
    """The confidence model's inputs, each on a scale that does not depend on corpus size.
    Query stems matched only inside names (`name_only_stems`, of the best sentence and of the
    lead passage) do not count as covered."""
    total = sum(idf.values()) or 1.0
    in_sentence, in_passage = name_only_stems
    sentence_cov = best.coverage - sum(idf[s] for s in in_sentence) / total
    chunk_cov = sum(w for s, w in idf.items()
                    if f" {s} " in lead_stems and s not in in_passage) / total
    # The rarest query term the best passage lacks that the corpus holds elsewhere, against
    # the IDF of a term seen nowhere.
    ceiling = math.log(1 + (n_chunks + 0.5) / 0.5) or 1.0
    # Terms found nowhere in the corpus are left out: a paraphrase has those too.
    missing = max((w for s, w in idf.items()
                   if (f" {s} " not in lead_stems or s in in_passage) and w < ceiling - 1e-6),
                  default=0.0)
    return {
        "sentence_coverage": round(max(sentence_cov, 0.0), 4),
        "chunk_coverage": round(chunk_cov, 4),
        "cosine_margin": round(float(lead.dense or 0.0) - baseline.mean, 4),
        "kind_missing": float(kind_missing),
        "kind_found": float(best.span is not None),
        "rare_missing": round(missing / ceiling, 4),
    }


def _citations(
    chunks: list[StoredChunk], candidates: list[Candidate], used: dict[int, list[tuple[int, int]]],
    first_use: list[int] | None = None,
) -> tuple[list[Citation], dict[int, int]]:
    """Citations for the chunks, cited ones first in order of first use (`first_use`: the chunk
    rank of each answer sentence, in answer order), then the rest by rank, overlapping chunks of
    a document merged; with the citation number of each chunk rank."""
    score = {c.chunk_id: c.score for c in candidates}
    use_order = {r: i for i, r in reversed(list(enumerate(first_use or [])))}
    order = sorted(range(len(chunks)),
                   key=lambda r: (r not in used, use_order.get(r, len(use_order)), r))
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
