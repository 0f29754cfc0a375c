"""One turn of a chat: the answer, its links anchored to the cited text, and for an
abstention the near misses, one per document with the sentence that came closest."""

from __future__ import annotations

from collections.abc import Sequence

from qa.index.chunk import sentence_spans
from qa.index.store import IndexVersion
from qa.index.terms import keyed, query_terms, stem_set
from qa.search.answer import Answer, Citation, is_heading
from qa.search.engine import Engine
from qa.search.followup import ask_in_conversation
from qa.search.retrieve import term_idf
from qa.server.schemas import MAX_HISTORY_TURNS, MAX_MESSAGE_CHARS, AskResponse
from qa.server.sources import anchored_url

MAX_NEAR_MISSES = 5


def best_sentence(c: Citation, idf: dict[str, float]) -> tuple[int, int] | None:
    """The sentence of a passage holding most of the query's weight (headings left out)."""
    keys = keyed(idf)
    best, span = 0.0, None
    for a, b in sentence_spans(c.text, c.start):
        if is_heading(c.text, a - c.start, b - c.start):
            continue
        stems = " " + " ".join(stem_set(c.text[a - c.start:b - c.start])) + " "
        share = sum(w for s, w in keys if s in stems)
        if share > best:
            best, span = share, (a, b)
    return span


def near_misses(answer: Answer, version: IndexVersion) -> None:
    """Turn an abstention's passages into near misses: the best passage of each document
    (they arrive best first), renumbered, each highlighting its closest sentence."""
    terms = query_terms(answer.query)
    idf = term_idf(version, terms) if terms else {}
    kept: dict[str, Citation] = {}
    for c in answer.citations:
        if c.document_id not in kept and len(kept) < MAX_NEAR_MISSES:
            kept[c.document_id] = c
    for n, c in enumerate(kept.values(), start=1):
        c.n = n
        span = best_sentence(c, idf) if idf else None
        c.highlight = [span] if span else []
    answer.citations = list(kept.values())


def history_of(turns: Sequence[AskResponse]) -> list[tuple[str, str]]:
    """The earlier turns as the messages a follow-up is resolved against."""
    history: list[tuple[str, str]] = []
    for t in turns:
        history += [("user", t.question[:MAX_MESSAGE_CHARS]),
                    ("assistant", t.answer[:MAX_MESSAGE_CHARS])]
    return history[-MAX_HISTORY_TURNS:]


def answer_turn(engine: Engine, question: str, earlier: Sequence[AskResponse],
                k: int | None = None, link_collection: str | None = None,
                collection: str | None = None) -> AskResponse:
    """Answer a question of a conversation, as the page shows and keeps it; links name
    `link_collection` (None for the default collection)."""
    answer = ask_in_conversation(engine, question, history_of(earlier), k)
    if answer.abstained and answer.citations:
        with engine.lease() as version:
            if version.name == answer.index_version:
                near_misses(answer, version)
    turn = AskResponse.of(answer, link_collection, collection)
    for c in turn.citations:
        c.url = anchored_url(c, turn.index_version, link_collection)
    return turn
