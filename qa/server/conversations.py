"""Conversations kept on the server: a SQLite file beside the index versions, so a rebuild
keeps them. Ids are unguessable; a browser owns the conversations it started (a random
cookie, stored here only as a hash), and anyone holding an id may read that conversation."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from qa.errors import NotFoundError, QAError
from qa.server.storage import SQLiteFile

FILE_NAME = "conversations.sqlite3"
ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
MAX_TURNS = 200  # a longer conversation is refused a new turn; follow-ups use the last few
MAX_TURN_BYTES = 256 * 1024  # one answer with its citations is far smaller
MAX_PER_OWNER = 500  # beyond this, the owner's least recently used conversations are dropped
MAX_TOTAL = 20_000  # beyond this, the least recently used conversations of anyone are dropped
TITLE_CHARS = 80

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (conversation, n)
);
"""


class ConversationFullError(QAError):
    """The conversation holds the most turns one may hold."""


def new_owner_token() -> str:
    """A fresh secret for a browser's cookie."""
    return secrets.token_urlsafe(24)


def owner_key(token: str | None) -> str | None:
    """What the store keeps of a browser's secret: its hash, so the file holds no cookie."""
    if not token or len(token) > 200:
        return None
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def title_of(question: str) -> str:
    """A conversation's title: its first question on one line, shortened."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass
class Summary:
    """A conversation as the sidebar lists it."""

    id: str
    title: str
    created: float
    updated: float
    turns: int


@dataclass
class Conversation:
    """A conversation with its turns, each the JSON of one answer."""

    id: str
    owner: str
    title: str
    created: float
    updated: float
    turns: list[str]


def _check_size(data: str) -> None:
    if len(data.encode("utf-8")) > MAX_TURN_BYTES:
        raise ConversationFullError("this answer is too large to keep")


class ConversationStore:
    """Conversations and their turns in one SQLite file; safe to use from many threads."""

    def __init__(self, path: Path):
        self.file = SQLiteFile(path, SCHEMA)

    def create(self, owner: str, title: str, first: str | None = None) -> str:
        """A new conversation of `owner`, holding `first` (a turn's JSON) if given; its id."""
        if first is not None:
            _check_size(first)
        cid = secrets.token_urlsafe(16)
        now = time.time()
        with self.file.write() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (cid, owner, title_of(title) or "Conversation", now, now))
            if first is not None:
                db.execute("INSERT INTO turns VALUES (?, 0, ?, ?)", (cid, first, now))
            self._prune(db, owner)
        return cid

    def _prune(self, db: sqlite3.Connection, owner: str) -> None:
        db.execute("DELETE FROM conversations WHERE id IN (SELECT id FROM conversations "
                   "WHERE owner = ? ORDER BY updated DESC LIMIT -1 OFFSET ?)",
                   (owner, MAX_PER_OWNER))
        db.execute("DELETE FROM conversations WHERE id IN (SELECT id FROM conversations "
                   "ORDER BY updated DESC LIMIT -1 OFFSET ?)", (MAX_TOTAL,))

    def get(self, cid: str) -> Conversation:
        """The conversation with this id, or NotFoundError."""
        if not ID.fullmatch(cid):
            raise NotFoundError("no conversation with that id")
        with self.file.db() as db:
            row = db.execute("SELECT id, owner, title, created, updated FROM conversations "
                             "WHERE id = ?", (cid,)).fetchone()
            if row is None:
                raise NotFoundError("no conversation with that id")
            turns = [r[0] for r in db.execute(
                "SELECT data FROM turns WHERE conversation = ? ORDER BY n", (cid,))]
        return Conversation(row[0], row[1], row[2], row[3], row[4], turns)

    def append(self, cid: str, data: str) -> int:
        """Add a turn (the JSON of one answer) and return its number, counted from 0."""
        _check_size(data)
        with self.file.write() as db:
            if db.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone() is None:
                raise NotFoundError("no conversation with that id")
            n = db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?",
                           (cid,)).fetchone()[0]
            if n >= MAX_TURNS:
                raise ConversationFullError(
                    f"a conversation keeps at most {MAX_TURNS} turns; start a new one")
            now = time.time()
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?)", (cid, n, data, now))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))
        return int(n)

    def fork(self, cid: str, owner: str) -> str:
        """A copy of someone else's conversation that `owner` may continue; its id."""
        source = self.get(cid)
        new = secrets.token_urlsafe(16)
        now = time.time()
        with self.file.write() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
                       (new, owner, source.title, now, now))
            db.executemany("INSERT INTO turns VALUES (?, ?, ?, ?)",
                           [(new, n, data, now) for n, data in enumerate(source.turns)])
            self._prune(db, owner)
        return new

    def list(self, owner: str | None, limit: int = 100) -> list[Summary]:
        """The owner's conversations, most recently used first."""
        if owner is None:
            return []
        with self.file.db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, "
                "(SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id) "
                "FROM conversations c WHERE owner = ? ORDER BY updated DESC LIMIT ?",
                (owner, limit)).fetchall()
        return [Summary(*r) for r in rows]

    def delete(self, cid: str) -> None:
        """Remove a conversation and its turns; NotFoundError if there is none."""
        if not ID.fullmatch(cid):
            raise NotFoundError("no conversation with that id")
        with self.file.write() as db:
            gone = db.execute("DELETE FROM conversations WHERE id = ?", (cid,)).rowcount
        if not gone:
            raise NotFoundError("no conversation with that id")

