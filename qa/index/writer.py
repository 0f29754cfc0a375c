"""Writing one index version: chunks and documents in SQLite (with FTS5), vectors, FAISS, BM25
postings and a manifest, into a temporary folder that `qa.index.index_dir` then publishes.

The reader that serves a version is `qa.index.store.IndexVersion`."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.index.chunk import Chunk, sentence_spans
from qa.index.ingest import Document
from qa.index.lexical import FILES as POSTINGS_FILES
from qa.index.lexical import write_postings
from qa.index.terms import FTS_TOKENIZER, content_words, stemmer
from qa.index.vectors import ANN_THRESHOLD, GRAPH_THRESHOLD, build_vector_index

FORMAT_VERSION = 3
# Format 1 kept float32 vectors (they load the same way); formats 1 and 2 have neither stored
# sentences nor BM25 postings, so their queries split sentences and ask FTS5 at query time.
READABLE_FORMATS = {1, 2, 3}
MANIFEST = "manifest.json"
SQLITE = "chunks.sqlite"
VECTORS = "vectors.npy"
FAISS = "vectors.faiss"

SCHEMA = f"""
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    pages TEXT NOT NULL,
    headings TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    section TEXT,
    tokens INTEGER NOT NULL,
    context TEXT NOT NULL,
    sentences TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX chunks_doc ON chunks(doc_id, ord);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    context, text, content='chunks', content_rowid='id',
    tokenize='{FTS_TOKENIZER}'
);
"""



def _doc_to_row(doc: Document) -> tuple[Any, ...]:
    headings = [[h.start, h.end, h.level, h.title] for h in doc.headings]
    return (doc.id, doc.path, doc.title, doc.text, doc.content_hash,
            json.dumps(doc.pages), json.dumps(headings))


def sentence_rows(doc_text: str, chunks: Sequence[Chunk]) -> list[str]:
    """Per chunk, its sentences as JSON `[[start, end, "stem stem ..."], ...]`."""
    spans = [c.sentences or tuple(sentence_spans(c.text, c.start)) for c in chunks]
    words = {(a, b): content_words(doc_text[a:b]) for sp in spans for a, b in sp}
    table = stemmer().stems(w for ws in words.values() for w in ws)
    return [json.dumps([[a, b, " ".join(dict.fromkeys(table[w] for w in words[a, b]))]
                        for a, b in sp], separators=(",", ":")) for sp in spans]


class VersionWriter:
    """Writes one new index version into a temporary folder."""

    def __init__(self, folder: Path, dim: int, ann_threshold: int = ANN_THRESHOLD,
                 graph_threshold: int = GRAPH_THRESHOLD):
        self.folder = folder
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.graph_threshold = graph_threshold
        folder.mkdir(parents=True)
        self.db = sqlite3.connect(folder / SQLITE)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        self._vectors: list[np.ndarray] = []
        self.n_chunks = 0

    def add(self, doc: Document, chunks: Sequence[Chunk], vectors: np.ndarray,
            sentences: Sequence[str] | None = None) -> None:
        """Store a document with its chunks and their vectors (rows in chunk order), and the
        chunks' sentences as a previous version stored them, if it did."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if sentences is None or len(sentences) != len(chunks):
            sentences = sentence_rows(doc.text, chunks)
        self.db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?)", _doc_to_row(doc))
        rows = []
        for c, spans in zip(chunks, sentences, strict=True):
            context = " > ".join(x for x in (doc.title, c.section) if x)
            rows.append((self.n_chunks, doc.id, c.ord, c.start, c.end, c.text, c.page,
                         c.section, c.tokens, context, spans))
            self.n_chunks += 1
        self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        if len(chunks):
            self._vectors.append(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim))

    def finish(self, manifest: dict[str, Any]) -> None:
        """Fill the FTS table, write vectors, FAISS and the manifest, and flush to disk."""
        self.db.execute("INSERT INTO chunks_fts(rowid, context, text) "
                        "SELECT id, context, text FROM chunks")
        self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        write_postings(self.db, self.folder, self.n_chunks)
        self.db.commit()
        self.db.close()
        vectors = (np.concatenate(self._vectors) if self._vectors
                   else np.zeros((0, self.dim), dtype=np.float32))
        self._vectors.clear()
        # float16 on disk: half the size, and ample precision for unit vectors to be reused.
        np.save(self.folder / VECTORS, vectors.astype(np.float16))
        index, described = build_vector_index(
            vectors, self.ann_threshold, graph_threshold=self.graph_threshold)
        faiss.write_index(index, str(self.folder / FAISS))
        manifest = {**manifest, "format_version": FORMAT_VERSION, "vector_index": described}
        (self.folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        for name in (SQLITE, VECTORS, FAISS, MANIFEST, *POSTINGS_FILES):
            with open(self.folder / name, "rb") as fh:
                os.fsync(fh.fileno())

    def abort(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
