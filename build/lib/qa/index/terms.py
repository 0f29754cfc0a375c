"""Words and stems: content words of a query and porter stems exactly as the FTS5 index makes them.

The index stores, for every sentence, the stems of its content words; queries are reduced the
same way, so a sentence covers a query term exactly when the lexical index would match it.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable

WORD = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me
more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they
this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves s t don also may might must shall us
""".split())

# The tokenizer of the chunks' full-text table; stems must agree with it.
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


def content_words(text: str) -> list[str]:
    """Lower-cased words of a text that are not stop words, in order, repeats kept."""
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


# A change of script inside a word: "Rapidusはいつ" holds the name "Rapidus".
# Scripts written without spaces between words: a Latin-script name inside such text
# ("Rapidusはいつ") is a word of its own. Kana, CJK ideographs, Hangul, full-width forms.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_SCRIPT_CHANGE = re.compile(rf"(?<=[A-Za-z0-9])(?=[{_UNSPACED}])|(?<=[{_UNSPACED}])(?=[A-Za-z0-9])")


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, stop words removed, order kept, no repeats; a
    Latin-script name written inside Japanese, Chinese or Korean counts as a word of its own."""
    words = content_words(text)
    if not text.isascii():
        words = [p for w in words for p in _SCRIPT_CHANGE.split(w) if p and p not in STOPWORDS]
    return list(dict.fromkeys(words))


class Stemmer:
    """Porter stems exactly as the index's FTS5 tokenizer makes them, cached per word."""

    def __init__(self, max_cache: int = 500_000) -> None:
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._max = max_cache
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(
            f"CREATE VIRTUAL TABLE w USING fts5(x, tokenize='{FTS_TOKENIZER}');"
            "CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance');")

    def stems(self, words: Iterable[str]) -> dict[str, str]:
        """word -> stem for each word (lower-case input expected)."""
        out: dict[str, str] = {}
        todo = []
        for w in set(words):
            stem = self._cache.get(w)
            if stem is None:
                todo.append(w)
            else:
                out[w] = stem
        if todo:
            with self._lock:
                self._db.executemany("INSERT INTO w(rowid, x) VALUES (?, ?)",
                                     list(enumerate(todo)))
                got = dict(self._db.execute("SELECT doc, term FROM v").fetchall())
                self._db.execute("DELETE FROM w")
                if len(self._cache) + len(todo) > self._max:
                    self._cache = {}  # readers holding the old dict keep a consistent one
                for i, w in enumerate(todo):
                    # Words the tokenizer splits (rare) keep their folded form.
                    out[w] = self._cache[w] = got.get(i, _fold(w))
        return out


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


_STEMMER: Stemmer | None = None


def stemmer() -> Stemmer:
    """The process-wide stemmer (created on first use, not at import)."""
    global _STEMMER
    if _STEMMER is None:
        _STEMMER = Stemmer()
    return _STEMMER


def keyed(idf: dict[str, float]) -> list[tuple[str, float]]:
    """Stem weights keyed as " stem ", to test against a sentence's padded stem string."""
    return [(f" {s} ", w) for s, w in idf.items()]


def stem_set(text: str) -> set[str]:
    """The distinct stems of a text's content words."""
    words = content_words(text)
    table = stemmer().stems(words)
    return {table[w] for w in words}
