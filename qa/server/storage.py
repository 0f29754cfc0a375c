"""Small SQLite files the server keeps beside the index versions (never inside one, so a
rebuild keeps them): one connection per file, shared under a lock, WAL, the schema made on
first use."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SQLiteFile:
    """A SQLite file with a schema; `db()` lends its connection (autocommit), `write()` the
    same inside one transaction.

    The connection stays open: closing the last connection to a WAL file checkpoints and
    syncs it, which would cost every request several milliseconds."""

    def __init__(self, path: Path, schema: str):
        self.path = path
        self.schema = schema
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL sync in WAL mode: a commit is not flushed to disk on its own (a power cut
            # may lose the last few), and the file stays consistent either way.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(self.schema)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """The connection, for this thread alone until the block ends."""
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            yield self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, committed unless the block raises."""
        with self.db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (it opens again on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
