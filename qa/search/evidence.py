"""Evidence that looks like a match but is not: a question's ordinary word found only inside a
name, and the numbers and names that pin a question down but are missing from its answer."""

from __future__ import annotations

import re

from qa.index.terms import STOPWORDS, WORD, stemmer

# A run of two or more capitalised words, with the small words that live inside names.
_NAME_RUN = re.compile(r"(?<![\w'’-])[A-Z][\w'’.&-]*(?:\s+(?:(?:of|the|de|du|la|von|van|and|for|"
                       r"upon|on)\s+)*[A-Z][\w'’.&-]*)+")


def name_only(question: str, text: str, idf: dict[str, float]) -> set[str]:
    """The query stems that `text` holds only inside multi-word names ("sea" in "South China
    Sea") while the question uses them as ordinary words ("at sea level"): such a match says
    nothing about whether the text is on the question's topic."""
    generic = {w.lower() for i, w in enumerate(WORD.findall(question))
               if w.islower() or (i == 0 and w[:1].isupper() and w[1:].islower())}
    if not generic:
        return set()
    inside = [m.span() for m in _NAME_RUN.finditer(text)]
    if not inside:
        return set()
    named: set[str] = set()
    plain: set[str] = set()
    at = 0
    for a, b in inside:
        plain.update(WORD.findall(text[at:a].lower()))
        named.update(WORD.findall(text[a:b].lower()))
        at = b
    plain.update(WORD.findall(text[at:].lower()))
    stems = stemmer().stems(named | plain | generic)
    asked_generically = {stems[w] for w in generic}
    in_plain = {stems[w] for w in plain}
    return {stems[w] for w in named if stems[w] in idf and stems[w] in asked_generically
            and stems[w] not in in_plain}


_NUMBER_TOKEN = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*")


def constraints_missing(question: str, sentence: str) -> dict[str, float]:
    """How much of what pins a question down the supporting sentence leaves out: whether it
    lacks a number or year the question names ("in 1974" against a sentence about 1973), and
    the share of the question's capitalised names it lacks ("Egypt" against "Israel"). An
    answer to a question built to look answerable often fails exactly there."""
    numbers = set(_NUMBER_TOKEN.findall(question))
    held = set(_NUMBER_TOKEN.findall(sentence))
    words = [m.group() for m in _CAPITALISED.finditer(question) if m.start() > 0]
    names = {w.lower().rstrip("'’s") for w in words if w.lower() not in STOPWORDS}
    text = sentence.lower()
    lacking = [n for n in names if n and n not in text]
    return {"number_missing": float(bool(numbers - held)),
            "names_missing": round(len(lacking) / len(names), 4) if names else 0.0}
