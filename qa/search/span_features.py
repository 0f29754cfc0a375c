"""The short-answer ranker's candidates and their features, for all candidates of a sentence at
once (numpy arrays over candidates; per-token facts are summed with prefix sums), so that a
sentence of 40 words and its ~80 candidates cost well under a millisecond.

See qa/search/span_rank.py for what the features mean and how they are weighted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from qa.search.span_words import (
    BE,
    DETERMINERS,
    FUNCTION,
    HARD,
    PREPOSITIONS,
    YEAR,
    shape,
)

MAX_WORDS = 7
MAX_TOKENS = 120  # a longer sentence is searched in its first MAX_TOKENS tokens only

# Words, with inner hyphens, apostrophes, dots and digit groups ("U.S.", "1,000", "Levi's");
# every other non-space character is a token of its own.
_TOKEN = re.compile(r"(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Lt|Rev|Mt|vs)\.(?=\s)|"
                    r"\w+(?:[-'’.,&/]\w+)*(?:(?<=\.\w)\.)?|[^\w\s]")
_POSSESSIVE = re.compile(r"['’]s?$")

SIDES = ("start", "comma", "prep", "of", "det", "be", "stop", "content_inq", "content", "cap",
         "verb", "adv", "end", "paren")
BASE_FEATURES = (
    "len1", "len2", "len3", "len4", "len5p",
    "cap_all", "cap_any", "num_any", "year", "num_only",
    "inq_frac", "inq_any", "inq_all",
    "inner_comma", "inner_stop", "inner_and", "inner_of", "inner_the", "inner_verb",
    *(f"L_{x}" for x in SIDES), *(f"R_{x}" for x in SIDES),
    "maximal", "dist_log", "dist1", "dist_le3", "no_anchor",
    "anchor_L1", "anchor_L3", "anchor_R1", "anchor_R3", "win_L", "win_R",
    "last_ed", "last_ing", "last_ly", "last_s",
    "first_verb", "first_adv", "first_adj", "last_verb", "last_adj", "last_noun",
    "focus_in", "focus_right", "kind_match",
    "qlast_L", "qfirst_R", "clause_frac", "possessive_R", "idf_L", "idf_R", "idf_gap",
)
COLUMN = {name: i for i, name in enumerate(BASE_FEATURES)}


@dataclass
class QuestionWords:
    """What the features need of a question (see span_rank.Question)."""

    words: frozenset[str]
    stems: frozenset[str]
    focus: str
    first: str
    last: str
    weight: dict[str, float]


def _prefix(x: np.ndarray) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(x, dtype=float)))


def _side_rows(low: list[str], toks: list[str], content: np.ndarray, cap: np.ndarray,
               inq: np.ndarray, shapes: list[str], left: bool) -> np.ndarray:
    """One row per position just outside a candidate: the token there, as SIDES flags. Row 0
    stands for the sentence's start (left) and row n+1 for its end (right)."""
    n = len(low)
    rows = np.zeros((n + 2, len(SIDES)))
    rows[0, SIDES.index("start")] = 1.0
    rows[n + 1, SIDES.index("end")] = 1.0
    for k, w in enumerate(low):
        r = rows[k + 1]
        if w == ",":
            r[SIDES.index("comma")] = 1.0
        elif toks[k] in HARD:
            r[SIDES.index("start" if left else "paren" if w in "()" else "end")] = 1.0
        elif content[k]:
            r[SIDES.index("content_inq" if inq[k] else "content")] = 1.0
            if cap[k]:
                r[SIDES.index("cap")] = 1.0
            if shapes[k] == "verb" or (left and shapes[k] == "adv"):
                r[SIDES.index(shapes[k])] = 1.0
        else:
            if w == "of":
                r[SIDES.index("of")] = 1.0
            if w in PREPOSITIONS:
                r[SIDES.index("prep")] = 1.0
            elif w in DETERMINERS and left:
                r[SIDES.index("det")] = 1.0
            elif w in BE:
                r[SIDES.index("be")] = 1.0
            elif w != "of":
                r[SIDES.index("stop")] = 1.0
    return rows


def phrase_features(q: QuestionWords, sentence: str, stem: dict[str, str],
                    kind_spans: Iterable[tuple[int, int]] = ()
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate phrases of `sentence` as character starts, ends and a feature matrix (one row
    per candidate, one column per BASE_FEATURES name)."""
    found = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(sentence)][:MAX_TOKENS]
    n = len(found)
    empty = np.zeros(0, dtype=int)
    if not n:
        return empty, empty, np.zeros((0, len(BASE_FEATURES)))
    toks = [t for _, _, t in found]
    raw = [t.lower() for t in toks]
    low = [_POSSESSIVE.sub("", w) or w for w in raw]
    word = np.array([t[0].isalnum() or t[0] == "_" for t in toks])
    content = word & np.array([w not in FUNCTION for w in low])
    cap = np.array([bool(word[k]) and toks[k][0].isupper() and k > 0 and toks[k - 1] not in HARD
                    for k in range(n)])
    num = np.array([any(c.isdigit() for c in t) for t in toks])
    stems = [stem.get(w, w) for w in low]
    inq = content & np.array([w in q.words or s in q.stems for w, s in zip(low, stems,
                                                                             strict=True)])
    shapes = [shape(w) if content[k] and not cap[k] else "" for k, w in enumerate(low)]
    focus = stem.get(q.focus, q.focus) if q.focus else ""
    is_focus = np.array([bool(focus) and s == focus for s in stems])
    spans = list(kind_spans)
    in_kind = np.array([any(x < b and a < y for x, y in spans) for a, b, _ in found])

    # Candidates: runs of up to MAX_WORDS tokens from a content word to a content word (or a
    # "%"), crossing no strong punctuation.
    bad = np.array([t in HARD or (not t[0].isalnum() and t not in (",", "&", "%"))
                    for t in toks])
    end_ok = content | np.array([t == "%" for t in toks])
    p_bad = _prefix(bad)
    pairs_i, pairs_j = [], []
    for length in range(MAX_WORDS):
        i = np.arange(n - length)
        j = i + length
        ok = content[i] & end_ok[j] & (p_bad[j + 1] - p_bad[i] == 0)
        pairs_i.append(i[ok])
        pairs_j.append(j[ok])
    I, J = np.concatenate(pairs_i), np.concatenate(pairs_j)  # noqa: E741, N806
    m = len(I)
    X = np.zeros((m, len(BASE_FEATURES)))  # noqa: N806
    if not m:
        return empty, empty, X

    def col(name: str) -> int:
        return COLUMN[name]

    def count(flags: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """How many of flags[a..b] (inclusive) are set, per candidate."""
        p = _prefix(flags)
        return p[np.maximum(b + 1, a)] - p[a]

    length = J - I + 1
    for name, hit in (("len1", length == 1), ("len2", length == 2), ("len3", length == 3),
                      ("len4", length == 4), ("len5p", length >= 5)):
        X[:, col(name)] = hit
    words = count(content, I, J)
    initial = np.zeros(n, dtype=bool)
    initial[0] = bool(content[0]) and toks[0][:1].isupper()
    caps = count(cap & content, I, J) + (initial[I] & (length > 1))
    X[:, col("cap_all")] = caps >= words
    X[:, col("cap_any")] = caps > 0
    X[:, col("num_any")] = count(num, I, J) > 0
    X[:, col("year")] = count(np.array([bool(YEAR.match(w)) for w in low]), I, J) > 0
    X[:, col("num_only")] = count(num & content, I, J) >= words
    asked = count(inq, I, J)
    X[:, col("inq_frac")] = asked / np.maximum(words, 1)
    X[:, col("inq_any")] = asked > 0
    X[:, col("inq_all")] = asked >= words
    for name, flags in (("inner_comma", np.array([w == "," for w in low])),
                        ("inner_stop", word & ~content),
                        ("inner_and", np.array([w in ("and", "&") for w in low])),
                        ("inner_of", np.array([w == "of" for w in low])),
                        ("inner_the", np.array([w in ("the", "a", "an") for w in low])),
                        ("inner_verb", np.array([s == "verb" for s in shapes]))):
        X[:, col(name)] = count(flags, I + 1, J - 1) > 0
    first, last = np.array(shapes)[I], np.array(shapes)[J]
    for x in ("verb", "adv", "adj"):
        X[:, col(f"first_{x}")] = first == x
    for x in ("verb", "adj", "noun"):
        X[:, col(f"last_{x}")] = last == x
    left = _side_rows(low, toks, content, cap, inq, shapes, True)[I]
    right = _side_rows(low, toks, content, cap, inq, shapes, False)[J + 2]
    X[:, col("L_start"):col("L_start") + len(SIDES)] = left
    X[:, col("R_start"):col("R_start") + len(SIDES)] = right
    possessive = np.array([w != x for w, x in zip(low, raw, strict=True)])
    X[:, col("possessive_R")] = possessive[J] & (J + 1 < n)
    content_pad = np.concatenate(([False], content, [False]))
    # No content word joins it on either side: the candidate is a whole phrase, not a piece.
    X[:, col("maximal")] = ~content_pad[I] & ~content_pad[J + 2]

    # The question's words in the sentence ("anchors"), outside the candidate.
    positions = np.flatnonzero(inq)
    if not len(positions):
        X[:, col("no_anchor")] = 1.0
    else:
        big = 10 ** 6
        prev = np.full(n + 1, -big)  # prev[p]: the last anchor before position p
        nxt = np.full(n + 1, big)  # nxt[p]: the first anchor after position p
        last_seen = -big
        for p in range(n):
            prev[p] = last_seen
            if inq[p]:
                last_seen = p
        prev[n] = last_seen
        coming = big
        for p in range(n - 1, -1, -1):
            nxt[p] = coming
            if inq[p]:
                coming = p
        dl, dr = I - prev[I], nxt[J] - J
        dist = np.minimum(dl, dr)
        has = dist < big // 2
        X[:, col("no_anchor")] = ~has
        X[:, col("dist_log")] = np.where(has, np.log1p(np.minimum(dist, 1000)), 0.0)
        X[:, col("dist1")] = dist == 1
        X[:, col("dist_le3")] = dist <= 3
        X[:, col("anchor_L1")] = dl == 1
        X[:, col("anchor_L3")] = dl <= 3
        X[:, col("anchor_R1")] = dr == 1
        X[:, col("anchor_R3")] = dr <= 3
        n_stems = max(len(q.stems), 1)
        X[:, col("win_L")] = np.minimum(count(inq, np.maximum(I - 5, 0), I - 1), n_stems) / n_stems
        X[:, col("win_R")] = np.minimum(count(inq, J + 1, np.minimum(J + 5, n - 1)),
                                        n_stems) / n_stems
        # The question's last word (often its verb: "What did they build?") just before the
        # candidate, or its first word after the wh-phrase ("Which team won?") just after.
        is_last = np.array([bool(inq[k]) and stems[k] == q.last for k in range(n)] + [False])
        is_first = np.array([bool(inq[k]) and stems[k] == q.first for k in range(n)] + [False])
        X[:, col("qlast_L")] = (dl <= 3) & is_last[np.clip(prev[I], -1, n)]
        X[:, col("qfirst_R")] = (dr <= 3) & is_first[np.clip(nxt[J], -1, n)]
        clause = np.cumsum([t == "," or t in HARD for t in toks])
        per_clause = np.bincount(clause, weights=inq.astype(float))
        same = per_clause[clause[I]] + np.where(clause[J] != clause[I], per_clause[clause[J]], 0)
        X[:, col("clause_frac")] = np.clip(same - asked, 0, n_stems) / n_stems
        # The question's weight found before and after the candidate, each stem once.
        seen_l: set[str] = set()
        first_w = np.zeros(n)
        for k in positions:
            if stems[k] not in seen_l:
                seen_l.add(stems[k])
                first_w[k] = q.weight.get(stems[k], 0.0)
        seen_r: set[str] = set()
        last_w = np.zeros(n)
        for k in positions[::-1]:
            if stems[k] not in seen_r:
                seen_r.add(stems[k])
                last_w[k] = q.weight.get(stems[k], 0.0)
        X[:, col("idf_L")] = _prefix(first_w)[I]
        X[:, col("idf_R")] = _prefix(last_w)[n] - _prefix(last_w)[J + 1]
        X[:, col("idf_gap")] = (dl <= 4) & (dr <= 4)
    ends = [w if w.isalpha() and not cap[k] else "" for k, w in enumerate(low)]
    tail = np.array(ends)[J]
    X[:, col("last_ed")] = np.char.endswith(tail, "ed")
    X[:, col("last_ing")] = np.char.endswith(tail, "ing")
    X[:, col("last_ly")] = np.char.endswith(tail, "ly")
    X[:, col("last_s")] = np.char.endswith(tail, "s") & ~np.char.endswith(tail, "ss")
    X[:, col("focus_in")] = count(is_focus, I, J) > 0
    X[:, col("focus_right")] = np.concatenate((is_focus, [False]))[J + 1]
    X[:, col("kind_match")] = count(in_kind, I, J) > 0
    starts = np.array([a for a, _, _ in found])[I]
    stops = np.array([b for _, b, _ in found])[J]
    return starts, stops, X
