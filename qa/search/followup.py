"""Follow-up questions: rewrite a short or anaphoric question into a self-contained search query.

"When will it produce them?" means little to a retriever. Two deterministic rules, so the chat can
show exactly what was searched:

* A question with no content words of its own, or one that continues the last ("and in Europe?",
  "what about cables?"), or with a single content word and no pronoun ("Funding?"), is searched
  together with the content words of the previous (resolved) query.
* A question with a pronoun that points back (it, they, them, this, there...) gets the names the
  conversation was about: capitalised words of the previous question, then names the previous
  answer introduced, at most two. Borrowing the whole previous question would pull the previous
  answer back; the name alone lets the question's own words choose the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.index.terms import STOPWORDS as INDEX_STOPWORDS

if TYPE_CHECKING:
    from qa.search.answer import Answer
    from qa.search.engine import Engine
    from qa.search.filters import Filter

# Words that point back at something said before.
ANAPHORA = frozenset("""
it its itself they them their theirs themselves this that these those there then he him his she
her hers one ones such same former latter above
""".split())

# Openings that continue the previous question ("and in Japan?", "what about cables?").
CONTINUATIONS = ("and ", "also ", "what about ", "how about ", "and what ", "but ", "so ")

# The index's stop words, the words of asking ("tell", "please") and the pronouns.
STOPWORDS = INDEX_STOPWORDS | frozenset(
    "tell please know many much done others another".split()) | ANAPHORA

MIN_OWN_TERMS = 2  # a question with fewer content words (and no pronoun) borrows the last query
MAX_BORROWED = 8  # words taken from the previous query, at most
MAX_NAMES = 2  # names taken for a pronoun, at most

_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
_MARKER = re.compile(r"\[\d+\]")


@dataclass
class _Resolved:
    query: str
    names: list[str]  # what the turn was about, for the next pronoun


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning, in order, without repeats."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        if (w not in STOPWORDS and len(w) > 1) or w.isdigit():
            seen.setdefault(w, None)
    return list(seen)


def kind(question: str) -> str:
    """'broad' (borrow the last query), 'pronoun' (borrow names) or 'standalone'."""
    text = question.strip().lower()
    own = len(content_words(question))
    if own == 0 or text.startswith(CONTINUATIONS):
        return "broad"
    if any(w in ANAPHORA for w in _WORD.findall(text)):
        return "pronoun"
    return "broad" if own < MIN_OWN_TERMS else "standalone"


# Pronouns that stand for something named earlier; "that", "which" and "one" are left out, as
# they more often start a clause or count.
POINTERS = frozenset("it its they them their theirs he him his she her hers this these those "
                     "there".split())
_OPENERS = frozenset("what when where which who whom whose why how is are was were do does did "
                     "will would can could should has have had and but so then also".split())


def leans_on_context(question: str) -> bool:
    """Whether the question's first pronoun has nothing before it to point at ("When will it
    open?"), unlike "What does a client get when it is over its limit?"."""
    for w in _WORD.findall(question.lower()):
        if w in POINTERS:
            return True
        if w not in _OPENERS and w not in STOPWORDS:
            return False
    return False


def is_followup(question: str) -> bool:
    """Whether a question depends on earlier turns to be understood."""
    return kind(question) != "standalone"


def names(text: str) -> list[str]:
    """Capitalised words inside sentences (likely names), in order, without repeats."""
    text = text.split("\nSources:", 1)[0]  # answers relayed by OpenAI clients carry a source list
    text = _MARKER.sub(" ", text)
    seen: dict[str, None] = {}
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", text):
        for w in _WORD.findall(sentence)[1:]:  # a sentence's first word is capitalised anyway
            if w[0].isupper() and not any(c.isdigit() for c in w) and w.lower() not in STOPWORDS:
                seen.setdefault(w, None)
    return list(seen)


def resolve(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The query to search for `question`, given earlier (role, content) turns, oldest first."""
    previous: _Resolved | None = None
    answer = ""
    for role, content in history:
        if role == "user" and content.strip():
            previous = _resolve_turn(content.strip(), previous, answer)
            answer = ""
        elif role == "assistant":
            answer = content
    return _resolve_turn(question.strip(), previous, answer).query


def _resolve_turn(question: str, previous: _Resolved | None, answer: str) -> _Resolved:
    own_names = names(question)
    how = kind(question)
    if previous is None or how == "standalone":
        return _Resolved(question, own_names)
    own = set(content_words(question))
    borrowed = [w for w in content_words(previous.query) if w not in own][:MAX_BORROWED]
    if how == "broad":
        extra, about = borrowed, previous.names
    else:
        candidates = previous.names + [n for n in names(answer) if n not in previous.names]
        extra = [n for n in candidates if n.lower() not in own][:MAX_NAMES] or borrowed
        about = [n for n in extra if n in candidates]
    query = f"{question} {' '.join(extra)}" if extra else question
    return _Resolved(query, own_names + [n for n in about if n not in own_names])


def ask_in_conversation(
    engine: Engine, question: str, history: Sequence[tuple[str, str]], k: int | None = None,
    where: Filter | None = None,
) -> Answer:
    """Answer `question` in the context of `history`: the question as written and its resolved
    follow-up are both searched, and the rewrite is kept only when it wins on evidence. `where`
    limits the search to some documents."""
    from qa.search.engine import check_question

    question = check_question(question, engine.settings.max_question_chars)
    if engine.settings.reload_interval > 0:  # 0 turns reload checks off
        engine.reload_if_changed()
    query = resolve(question, history)
    return engine.ask(question, k=k, query=query, leans_on_context=leans_on_context(question),
                      where=where)
