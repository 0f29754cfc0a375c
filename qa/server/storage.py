"""Small SQLite files the server keeps beside the index versions (never inside one, so a
rebuild keeps them): one connection per use, WAL, the schema made on first use."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SQLiteFile:
    """A SQLite file with a schema; `db()` yields a connection in autocommit mode."""

    def __init__(self, path: Path, schema: str):
        self.path = path
        self.schema = schema
        self.lock = threading.Lock()  # one writer at a time inside this process
        self._ready = False

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """A connection, closed when the block ends."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(self.schema)
                self._ready = True
            yield db
        finally:
            db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one write transaction, committed unless the block raises."""
        with self.lock, self.db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
