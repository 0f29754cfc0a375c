"""What kind of answer a question's wh-phrase asks for, and whether a sentence holds one.

"How many …" wants a number, "when …" a year or a month, "who …" a name. A sentence that holds
such a token, one that is not itself a word of the question, is more likely to answer it. Both
the retriever (to rank passages) and the composer (to pick the lead sentence) use this.
"""

from __future__ import annotations

import re

from qa.index.terms import STOPWORDS, WORD, stemmer

NUMBER, DATE, NAME = "number", "date", "name"

_ASKS_NUMBER = re.compile(
    r"\bhow (many|much|long|old|far|large|big|high|tall|often|deep|wide|fast)\b|"
    r"\bwhat (percentage|percent|number|amount)\b")
_ASKS_DATE = re.compile(r"\bwhen\b|\b(what|which|in what) (year|decade|century|month|date)\b")
_ASKS_NAME = re.compile(r"\bwho(m|se)?\b")
MONTHS = frozenset("january february march april june july august september october november "
                   "december".split())
# "one" is left out: it is far more often a pronoun than a count.
NUMBER_WORDS = frozenset("two three four five six seven eight nine ten eleven twelve twenty thirty "
                         "forty fifty hundred thousand million billion trillion dozen half "
                         "percent".split())


def asked_kind(question: str) -> str | None:
    """NUMBER, DATE or NAME when the question asks for one, else None."""
    q = question.lower()
    if _ASKS_NUMBER.search(q):
        return NUMBER
    if _ASKS_DATE.search(q):
        return DATE
    if _ASKS_NAME.search(q):
        return NAME
    return None


def _is_kind(kind: str, word: str, low: str, position: int) -> bool:
    if kind == NUMBER:
        return low.isdigit() or low in NUMBER_WORDS
    if kind == DATE:
        return (len(low) == 4 and low.isdigit() and 1000 <= int(low) <= 2099) or low in MONTHS
    # A capitalised word inside the sentence (the first word is capitalised anyway).
    return position > 0 and word[0].isupper()


def holds_kind(kind: str | None, sentence: str, query_stems: set[str] | frozenset[str]) -> bool:
    """Whether the sentence has a token of the asked kind that the question does not contain."""
    if kind is None:
        return False
    for position, word in enumerate(WORD.findall(sentence)):
        low = word.lower()
        if low in STOPWORDS or not _is_kind(kind, word, low, position):
            continue
        if stemmer().stems([low])[low] not in query_stems:
            return True
    return False
