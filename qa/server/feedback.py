"""Feedback on answers: thumbs up or down with a comment, kept beside the index with the
question, the answer, its citations and the index version; exported as an evaluation set."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import NotFoundError, QAError
from qa.index.store import IndexVersion
from qa.server.schemas import AskResponse
from qa.server.sources import TextQuote, answer_parts, locate
from qa.server.storage import SQLiteFile

FILE_NAME = "feedback.sqlite3"
MAX_COMMENT = 2000
RATINGS = {"up": 1, "down": -1}

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    conversation TEXT NOT NULL,
    n INTEGER NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    index_version TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    turn TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (conversation, n)
);
CREATE INDEX IF NOT EXISTS feedback_rating ON feedback (rating, updated);
"""


@dataclass
class Entry:
    """One answer's feedback, with the answer as it was given."""

    conversation: str
    n: int
    rating: str  # "up" or "down"
    comment: str
    turn: AskResponse
    updated: float


class FeedbackStore:
    """Feedback in one SQLite file: one record per answer, the latest rating wins."""

    def __init__(self, path: Path):
        self.file = SQLiteFile(path, SCHEMA)

    def record(self, conversation: str, n: int, rating: str, comment: str,
               turn: AskResponse) -> None:
        """Keep (or replace) the feedback on turn `n` of a conversation."""
        if rating not in RATINGS:
            raise QAError("rating must be 'up' or 'down'")
        now = time.time()
        citations = json.dumps([c.model_dump(mode="json") for c in turn.citations])
        with self.file.write() as db:
            db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (conversation, n) DO UPDATE SET rating = excluded.rating, "
                "comment = excluded.comment, updated = excluded.updated",
                (conversation, n, RATINGS[rating], comment[:MAX_COMMENT], turn.question,
                 turn.answer, citations, turn.index_version, int(turn.abstained),
                 turn.model_dump_json(), now, now))

    def ratings(self, conversation: str) -> dict[int, str]:
        """The rating of each rated turn of a conversation."""
        names = {v: k for k, v in RATINGS.items()}
        with self.file.db() as db:
            rows = db.execute("SELECT n, rating FROM feedback WHERE conversation = ?",
                              (conversation,)).fetchall()
        return {n: names[r] for n, r in rows}

    def entries(self, rating: str | None = None, limit: int = 10_000) -> list[Entry]:
        """Feedback, newest first; only `rating` ("up" or "down") if given."""
        query = "SELECT conversation, n, rating, comment, turn, updated FROM feedback"
        args: tuple[Any, ...] = ()
        if rating is not None:
            query += " WHERE rating = ?"
            args = (RATINGS[rating],)
        with self.file.db() as db:
            rows = db.execute(query + " ORDER BY updated DESC LIMIT ?", (*args, limit)).fetchall()
        return [Entry(c, n, "up" if r > 0 else "down", comment,
                      AskResponse.model_validate_json(turn), updated)
                for c, n, r, comment, turn, updated in rows]


# --- export as an evaluation set --------------------------------------------------------------


@dataclass
class ExportReport:
    """What an export wrote, and what it left out and why."""

    scored: int = 0  # thumbs-up answers: questions `qa eval` scores
    kept: int = 0  # thumbs-down answers and confirmed abstentions: written, not scored
    skipped: list[str] = field(default_factory=list)
    documents: int = 0


def _paragraph(text: str, at: int) -> tuple[int, int]:
    """The blank-line-separated paragraph of `text` holding offset `at`."""
    start = text.rfind("\n\n", 0, at)
    end = text.find("\n\n", at)
    return (0 if start < 0 else start + 2), (len(text) if end < 0 else end)


def _lead(turn: AskResponse) -> tuple[str, str, TextQuote, int] | None:
    """The answer's key sentence: (answer string, document id, quote, offset). The short answer
    when there is one, in its sentence; else the first cited sentence, which is the answer."""
    by_n = {c.n: c for c in turn.citations}
    order = [n for _, n in answer_parts(turn.answer, set(by_n)) if n is not None]
    span = turn.answer_span
    if span is not None and span.n in by_n:
        order = [span.n] + order
    for n in order:
        c = by_n[n]
        for a, b in c.highlight:
            if not c.start <= a < b <= c.end:
                continue
            if span is not None and span.n == n and not a <= span.start < span.end <= b:
                continue
            i, j = a - c.start, b - c.start
            quote = TextQuote(c.text[i:j], c.text[max(i - 32, 0):i], c.text[j:j + 32])
            answer = span.text if span is not None and span.n == n else quote.exact
            return answer, c.document_id, quote, a
    return None


def export(store: FeedbackStore, version: IndexVersion, out: Path) -> ExportReport:
    """Write the rated questions as a SQuAD-style folder that `qa eval` reads: the index's
    documents as articles, and for each thumbs-up answer its question, the answer and the
    paragraph holding it, found again in the documents as they are now. Thumbs-down answers
    and confirmed abstentions are written too, marked `is_impossible` (which `qa eval` skips)
    with `needs_answer` on the thumbs-down ones: fill in `answers` and `gold_doc` to score them.
    """
    report = ExportReport()
    entries = store.entries()
    if not entries:
        raise QAError("no feedback has been given yet")
    texts: dict[str, str] = {}
    titles: dict[str, str] = {}
    for row in version.documents():
        doc = version.document(row["id"])
        texts[doc.id], titles[doc.id] = doc.text, doc.title
    report.documents = len(texts)
    paragraphs: dict[str, dict[str, Any]] = {}

    def paragraph_id(doc_id: str, at: int) -> str:
        a, b = _paragraph(texts[doc_id], at)
        pid = f"{doc_id}-{a}"
        paragraphs.setdefault(pid, {"_id": pid, "title": titles[doc_id],
                                    "text": texts[doc_id][a:b]})
        return pid

    queries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in entries:  # newest first: the latest verdict on a question wins
        key = " ".join(e.turn.question.lower().split())
        if key in seen:
            continue
        seen.add(key)
        meta: dict[str, Any] = {"rating": e.rating, "comment": e.comment,
                                "index_version": e.turn.index_version, "answer": e.turn.answer}
        lead = None if e.turn.abstained else _lead(e.turn)
        if e.rating == "up" and lead is not None:
            answer, doc_id, quote, hint = lead
            at = locate(texts[doc_id], quote, hint) if doc_id in texts else None
            if at is None:
                report.skipped.append(f"{e.turn.question!r}: the cited text is no longer in "
                                      "the documents")
                continue
            meta |= {"answers": [answer], "gold_doc": paragraph_id(doc_id, at)}
            report.scored += 1
        else:
            near = next((c for c in e.turn.citations if c.document_id in texts), None)
            if near is not None:
                gold = paragraph_id(near.document_id, near.start)
            elif texts:
                first = next(iter(texts))
                gold = paragraph_id(first, 0)
            else:
                continue
            meta |= {"answers": [], "gold_doc": gold, "is_impossible": True,
                     "needs_answer": e.rating == "down"}
            report.kept += 1
        queries.append({"_id": f"feedback-{len(queries) + 1}", "text": e.turn.question,
                        "metadata": meta})
    if not queries:
        raise QAError("no rated question could be exported: "
                      + "; ".join(report.skipped[:3]))
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "articles.jsonl", ({"_id": d, "title": titles[d], "text": texts[d]}
                                          for d in texts))
    _write_jsonl(out / "corpus.jsonl", iter(paragraphs.values()))
    _write_jsonl(out / "queries.jsonl", iter(queries))
    return report


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def turn_of(turns: list[str], n: int) -> AskResponse:
    """Turn `n` of a stored conversation, or NotFoundError."""
    if not 0 <= n < len(turns):
        raise NotFoundError("no such turn in this conversation")
    return AskResponse.model_validate_json(turns[n])
