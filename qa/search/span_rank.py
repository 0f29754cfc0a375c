"""Short answers to questions of no fixed kind ("What did the city build?", "Which river…"):
a learnt ranker over the candidate phrases of the answer's sentence.

This is the feature-based baseline of the SQuAD paper, made small. The candidates are the runs
of up to MAX_WORDS words of a sentence that start and end on a content word and cross no strong
punctuation. Each is described by a few dozen features that need no tagger or parser: how long
it is, whether it is capitalised or numeric, the words just outside it (a preposition before,
a comma after: phrase edges), whether it repeats the question's words, how close it sits to
them, and the same crossed with the question's wh-word ("who" favours capitalised runs, "what
did … build" the phrase after the verb). A conditional logistic model over the candidates of
one sentence scores them; the weights (SPAN_MODEL, in qa/search/span_weights.py) were fitted by
bench/fit_spans.py on the questions of half of the SQuAD articles and are reported on the other
half. A span is given only when the model puts at least SPAN_MIN_PROBABILITY on it: otherwise
the sentence alone is the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from qa.search.span_features import BASE_FEATURES, COLUMN, QuestionWords, phrase_features
from qa.search.span_weights import SPAN_MIN_PROBABILITY, SPAN_MODEL
from qa.search.span_words import BE, FUNCTION

_WH_WORDS = frozenset("what which who whom whose when where why how".split())

WH_CLASSES = ("who", "when", "where", "why", "how_quant", "how_manner", "what_be", "what_do",
              "what_noun", "other")
_HOW_QUANT = frozenset("many much long old far large big high tall often deep wide fast "
                       "heavy small".split())

# Base features also crossed with the question's wh-class.
CROSSED = ("len1", "len2", "len3", "len5p", "cap_all", "num_any", "year", "L_prep", "L_be",
           "R_end", "maximal", "dist_log", "inq_any", "last_ing", "L_start", "anchor_L3",
           "kind_match", "anchor_R3", "anchor_L1", "anchor_R1", "win_L", "win_R", "L_verb",
           "R_verb", "qlast_L", "qfirst_R", "first_verb", "last_noun")
# Where the answer sits against the question's words depends on what the wh-phrase is: the
# subject ("Which team won the cup?": the answer comes before "won"), an object ("What did the
# city build?": after "built"), or the complement of a copula ("What is the capital?").
DIRECTIONS = ("subj", "obj", "be", "adv")
DIRECTED = ("idf_L", "idf_R", "idf_gap", "win_L", "win_R", "anchor_L1", "anchor_R1",
            "anchor_L3", "anchor_R3", "L_verb", "R_verb", "L_be", "R_be", "L_prep", "maximal",
            "qlast_L", "qfirst_R", "L_start", "R_end")
_CROSSED_COLUMNS = np.array([COLUMN[name] for name in CROSSED])
_DIRECTED_COLUMNS = np.array([COLUMN[name] for name in DIRECTED])
_DIRECTED_BASE = len(BASE_FEATURES) + len(WH_CLASSES) * len(CROSSED)
N_FEATURES = _DIRECTED_BASE + len(DIRECTIONS) * len(DIRECTED)
_AUX = frozenset("did does do can could will would should has have had may might must".split())
_COPULA = frozenset("is was are were".split())


def feature_names() -> list[str]:
    """Every feature's name, in the order of the model's weights."""
    return [*BASE_FEATURES, *(f"{w}*{c}" for w in WH_CLASSES for c in CROSSED),
            *(f"{d}*{c}" for d in DIRECTIONS for c in DIRECTED)]


def direction(question: str) -> str:
    """What the wh-phrase is in its clause: "subj", "obj", "be" or "adv" (when, where, how…)."""
    words = re.findall(r"\w+", question.lower())
    for i, w in enumerate(words):
        if w not in _WH_WORDS:
            continue
        if w in ("when", "where", "why", "how"):
            return "adv"
        k = i + 1
        # Past the wh-phrase's noun ("which NFL team"), at most three words.
        while k < len(words) and k <= i + 3 and words[k] not in FUNCTION:
            k += 1
        nxt = words[k] if k < len(words) else ""
        return "obj" if nxt in _AUX else "be" if nxt in _COPULA else "subj"
    return "subj"


@dataclass
class Question(QuestionWords):
    """What the ranker needs of a question: its content words (lower case and stems), the noun
    of "which river" (focus), the stems of its first and last content words, each stem's share
    of the question's IDF mass, its wh-class and direction."""

    wh: str = "other"
    direction: str = "subj"


def wh_class(question: str) -> tuple[str, str]:
    """The question's wh-class (one of WH_CLASSES) and, for "what/which + noun", the noun."""
    words = re.findall(r"\w+", question.lower())
    for i, w in enumerate(words):
        if w not in _WH_WORDS:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("who", "whom", "whose"):
            return "who", ""
        if w in ("when", "where", "why"):
            return w, ""
        if w == "how":
            return ("how_quant" if nxt in _HOW_QUANT else "how_manner"), ""
        if nxt in ("is", "was", "are", "were", "be"):
            return "what_be", ""
        if nxt in BE or nxt in FUNCTION or not nxt:
            return "what_do", ""
        return "what_noun", nxt
    return "other", ""


def read_question(question: str, stem: dict[str, str],
                  idf: dict[str, float] | None = None) -> Question:
    """The ranker's view of a question; `stem` maps lower-cased words to index stems, `idf`
    stems to their weight in the index (all equal when not given)."""
    wh, focus = wh_class(question)
    seq = [w for w in re.findall(r"\w+", question.lower())
           if w not in FUNCTION and w not in _WH_WORDS and w != focus]
    words = frozenset(seq)
    first = stem.get(seq[0], seq[0]) if seq else ""
    last = stem.get(seq[-1], seq[-1]) if seq else ""
    stems = frozenset(stem.get(w, w) for w in words)
    raw = {x: (idf or {}).get(x, 1.0 if not idf else 0.0) for x in stems}
    total = sum(raw.values()) or 1.0
    return Question(words, stems, focus, first, last, {x: v / total for x, v in raw.items()},
                    wh, direction(question))


def expand(q: Question, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """The full feature rows of a question's candidates: the base features, then the ones
    crossed with its wh-class and with its direction, each in its own block."""
    full = np.zeros((X.shape[0], N_FEATURES))
    full[:, :len(BASE_FEATURES)] = X
    at = len(BASE_FEATURES) + WH_CLASSES.index(q.wh) * len(CROSSED)
    full[:, at:at + len(CROSSED)] = X[:, _CROSSED_COLUMNS]
    at = _DIRECTED_BASE + DIRECTIONS.index(q.direction) * len(DIRECTED)
    full[:, at:at + len(DIRECTED)] = X[:, _DIRECTED_COLUMNS]
    return full


def effective_weights(q: Question, weights: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """One weight per base feature for this question: its own plus those of its crossings."""
    w = np.asarray(weights, dtype=float)
    out = w[:len(BASE_FEATURES)].copy()
    at = len(BASE_FEATURES) + WH_CLASSES.index(q.wh) * len(CROSSED)
    out[_CROSSED_COLUMNS] += w[at:at + len(CROSSED)]
    at = _DIRECTED_BASE + DIRECTIONS.index(q.direction) * len(DIRECTED)
    out[_DIRECTED_COLUMNS] += w[at:at + len(DIRECTED)]
    return out


def best_phrase(question: str, sentence: str, stem: dict[str, str],
                kind_spans: Iterable[tuple[int, int]] = (), idf: dict[str, float] | None = None,
                weights: tuple[float, ...] = SPAN_MODEL,
                min_probability: float = SPAN_MIN_PROBABILITY) -> tuple[int, int, float] | None:
    """The most probable candidate phrase of the sentence as (start, end, probability), or
    None when there is none or it is below `min_probability`."""
    q = read_question(question, stem, idf)
    starts, ends, X = phrase_features(q, sentence, stem, kind_spans)  # noqa: N806
    if not len(starts) or len(weights) != N_FEATURES:
        return None
    scores = X @ effective_weights(q, weights)
    p = np.exp(scores - scores.max())
    best = int(np.argmax(p))
    probability = float(p[best] / p.sum())
    if probability < min_probability:
        return None
    return int(starts[best]), int(ends[best]), probability
