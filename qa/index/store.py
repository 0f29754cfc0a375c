"""One index version on disk, loaded to serve: chunks and documents in SQLite (with FTS5),
vectors, FAISS, BM25 postings and a manifest. The writer that makes one is `qa.index.writer`.

How versions sit in an index folder is in `qa.index.index_dir`."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from qa.errors import IndexCorruptError, IndexIncompatibleError, NotFoundError
from qa.index import encoder_files
from qa.index.chunk import sentence_spans
from qa.index.ingest import Document, Heading
from qa.index.lexical import COLUMN_WEIGHTS, Postings, load_array, top
from qa.index.terms import stem_set, stemmer
from qa.index.vectors import prepare_for_search
from qa.index.writer import FAISS, FORMAT_VERSION, MANIFEST, READABLE_FORMATS, SQLITE, VECTORS

# The exact-BM25 fallback weighs the columns as the postings do (context, text).
BM25_WEIGHTS = ", ".join(str(w) for w in COLUMN_WEIGHTS)



# start, end (document offsets), and the sentence's distinct stems as " stem stem ... ": a
# padded string is ten times cheaper to load than a set and as quick to test (see terms.keyed).
Sentence = tuple[int, int, str]


class ChunkSpan(NamedTuple):
    """A chunk's place and text, and its stored sentences (JSON; empty before format 3)."""

    id: int
    doc_id: str
    start: int
    end: int
    text: str
    raw_sentences: str



def parse_sentences(spans: Sequence[ChunkSpan]) -> list[list[Sentence]]:
    """Each chunk's sentences: parsed in one go from the stored JSON, or, for indexes older than
    format 3, split and stemmed from the text."""
    if all(s.raw_sentences for s in spans):
        return [[(a, b, f" {stems} ") for a, b, stems in chunk]
                for chunk in json.loads("[" + ",".join(s.raw_sentences for s in spans) + "]")]
    return [[(a, b, " ".join(["", *stem_set(s.text[a - s.start:b - s.start]), ""]))
             for a, b in sentence_spans(s.text, s.start)] for s in spans]


@dataclass
class StoredChunk:
    """A chunk as read back from the index, with its document's title and path."""

    id: int
    doc_id: str
    ord: int
    start: int
    end: int
    text: str
    page: int | None
    section: str | None
    title: str
    path: str


def _row_to_doc(row: sqlite3.Row) -> Document:
    headings = [Heading(*h) for h in json.loads(row["headings"])]
    pages = [tuple(p) for p in json.loads(row["pages"])]
    return Document(row["id"], row["path"], row["title"], row["text"], row["content_hash"],
                    pages, headings)  # type: ignore[arg-type]


def fts_query(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression that ORs quoted terms, so user text cannot inject syntax."""
    quoted = ['"' + t.replace('"', '""') + '"' for t in terms if t]
    return " OR ".join(quoted)


class IndexVersion:
    """A read-only, loaded index version; safe to share between threads.

    Loading verifies the version before it can serve: every file is there and readable, the
    chunk count agrees across the manifest, SQLite, FAISS, the stored vectors and the postings,
    and a kept encoder has the hash the manifest records.
    Arrays are read into memory unless very large (see `qa.index.lexical.load_array`).

    A server shares one version between requests: `acquire` and `release` count its users, and
    a version that `retire` took out of service is closed when its last user is done."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.name = folder.name
        self._users = 0
        self._retired = False
        self._closed = False
        self._ref_lock = threading.Lock()
        try:
            self._load(folder)
        except BaseException:
            self.close()
            raise

    def _load(self, folder: Path) -> None:
        for name in (MANIFEST, SQLITE, FAISS, VECTORS):
            if not (folder / name).is_file():
                raise IndexCorruptError(
                    f"index version {folder} is missing {name}; run 'qa index --full'")
        try:
            self.manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"unreadable manifest in {folder}: {exc}") from exc
        if not isinstance(self.manifest, dict):
            raise IndexCorruptError(f"unreadable manifest in {folder}: not a JSON object")
        if self.manifest.get("format_version") not in READABLE_FORMATS:
            raise IndexIncompatibleError(
                f"index at {folder} has format {self.manifest.get('format_version')!r}, "
                f"this qa reads {FORMAT_VERSION}; run 'qa index --full'")
        # The encoder the vectors were made with, if the version keeps one, must be that one.
        encoder_files.verify(folder, self.manifest)
        try:
            self.faiss = prepare_for_search(faiss.read_index(str(folder / FAISS)))
        except RuntimeError as exc:
            raise IndexCorruptError(
                f"unreadable FAISS index in {folder}; run 'qa index --full'") from exc
        try:
            # One connection, opened now: it keeps working even if an old version's folder is
            # pruned while requests still use it. SQLite serialises access between threads.
            uri = (folder / SQLITE).resolve().as_uri() + "?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            n = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"unreadable SQLite database in {folder}: {exc}; "
                                    "run 'qa index --full'") from exc
        self._sqlite_stat = _stat(folder / SQLITE)
        if n != self.faiss.ntotal:
            raise IndexCorruptError(f"index {folder} has {n} chunks but {self.faiss.ntotal} "
                                    "vectors; run 'qa index --full'")
        counts = self.manifest.get("counts")
        expected = counts.get("chunks") if isinstance(counts, dict) else None
        if expected is not None and expected != n:
            raise IndexCorruptError(f"index {folder} has {n} chunks but its manifest says "
                                    f"{expected!r}; run 'qa index --full'")
        try:
            vectors = load_array(folder / VECTORS)
        except (OSError, ValueError, EOFError) as exc:
            raise IndexCorruptError(f"unreadable vectors in {folder}: {exc}; "
                                    "run 'qa index --full'") from exc
        if vectors.shape != (n, self.faiss.d) or vectors.dtype.kind != "f":
            raise IndexCorruptError(f"index {folder} has vectors of shape {vectors.shape}, "
                                    f"expected ({n}, {self.faiss.d}); run 'qa index --full'")
        self._all_vectors: np.ndarray | None = vectors
        self.n_chunks = n
        self.format = self.manifest["format_version"]
        self.postings: Postings | None = None
        if self.format >= 3:
            try:
                self.postings = Postings(folder, self.db, n)
            except (OSError, ValueError, EOFError, IndexError) as exc:
                raise IndexCorruptError(f"unreadable BM25 postings in {folder}: {exc}; "
                                        "run 'qa index --full'") from exc

    def intact(self) -> bool:
        """Whether the files read while serving (SQLite) are still as loaded. A file changed
        in place means damage: qa never rewrites a published version. A removed file is fine:
        the open connection keeps it."""
        now = _stat(self.folder / SQLITE)
        return now is None or now == self._sqlite_stat

    def acquire(self) -> IndexVersion:
        """Count one more user; pair with `release`."""
        with self._ref_lock:
            self._users += 1
        return self

    def release(self) -> None:
        with self._ref_lock:
            self._users -= 1
            idle = self._retired and self._users == 0
        if idle:
            self.close()

    def retire(self) -> None:
        """Take the version out of service: close it now if idle, else when its last user ends."""
        with self._ref_lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()

    def check_compatible(self, model: str, chunker: dict[str, Any]) -> None:
        """Refuse an index built with another model or chunker."""
        built = self.manifest.get("model", {}).get("id")
        if built != model:
            raise IndexIncompatibleError(
                f"index was built with model {built!r}, settings ask for {model!r}; "
                "run 'qa index --full' to rebuild")
        if self.manifest.get("chunker") != chunker:
            raise IndexIncompatibleError(
                f"index was built with chunker {self.manifest.get('chunker')}, settings ask for "
                f"{chunker}; run 'qa index --full' to rebuild")

    # --- reading ---------------------------------------------------------------------------

    def dense_search(self, query: np.ndarray, n: int) -> list[tuple[int, float]]:
        if self.n_chunks == 0:
            return []
        vector = query.reshape(1, -1).astype(np.float32)
        scores, ids = self.faiss.search(vector, min(n, self.n_chunks))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical(self, terms: Sequence[str], n: int
                ) -> tuple[list[tuple[int, float]], Callable[[int], float]]:
        """BM25 over chunk text and title/section (higher is better): the `n` best chunks, and
        the score of any chunk (0 for one matching no term; for indexes older than format 3,
        also for one past the 1,000th match)."""
        if self.postings is not None:
            scores = self.postings.scores(list(stemmer().stems(terms).values()))
            return top(scores, n), lambda cid: float(scores[cid])
        scored = self._fts_search(terms, max(n, 1000))
        known = dict(scored)
        return scored[:n], lambda cid: known.get(cid, 0.0)

    def lexical_search(self, terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        """The `n` best chunks by BM25 over chunk text and title/section."""
        return self.lexical(terms, n)[0]

    def _fts_search(self, terms: Sequence[str], n: int) -> list[tuple[int, float]]:
        match = fts_query(terms)
        if not match:
            return []
        rows = self.db.execute(
            f"SELECT rowid, bm25(chunks_fts, {BM25_WEIGHTS}) AS s FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?", (match, n)).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        """Chunks containing each term (after the FTS tokenizer's stemming)."""
        if self.postings is not None:
            stems = stemmer().stems(terms)
            by_stem = self.postings.doc_freqs(list(stems.values()))
            return {t: by_stem[stems[t]] for t in terms}
        out = {}
        for t in set(terms):
            row = self.db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                  (fts_query([t]),)).fetchone()
            out[t] = int(row[0])
        return out

    def chunks(self, ids: Sequence[int]) -> list[StoredChunk]:
        """Chunks by id, in the order asked."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT c.id, c.doc_id, c.ord, c.start, c.end, c.text, c.page, c.section, "
            f"d.title, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.id IN ({marks})", list(ids)).fetchall()
        by_id = {r[0]: StoredChunk(*r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def sentences(self, chunks: Sequence[StoredChunk]) -> dict[int, list[Sentence]]:
        """Chunk id -> its sentences with their stems (stored since format 3)."""
        spans = list(self.spans([c.id for c in chunks]).values())
        return {s.id: sents for s, sents in zip(spans, parse_sentences(spans), strict=True)}

    def spans(self, ids: Sequence[int]) -> dict[int, ChunkSpan]:
        """Where chunks are and what they say, without their documents' details (cheap)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        raw = "sentences" if self.format >= 3 else "''"
        rows = self.db.execute(f"SELECT id, doc_id, start, end, text, {raw} FROM chunks "
                               f"WHERE id IN ({marks})", list(ids))
        return {r[0]: ChunkSpan(*r) for r in rows}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of chunks, as float32."""
        if not len(ids):
            return np.zeros((0, self.faiss.d), dtype=np.float32)
        return np.asarray(self.all_vectors()[np.asarray(ids, dtype=np.int64)], dtype=np.float32)

    def all_vectors(self) -> np.ndarray:
        """Every stored vector (float16), row i for chunk id i."""
        if self._all_vectors is None:
            raise sqlite3.ProgrammingError("index version is closed")
        return self._all_vectors

    def document(self, doc_id: str) -> Document:
        row = self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return _row_to_doc(row)

    def page_at(self, doc_id: str, offset: int) -> int | None:
        """The page of a document at a character offset, for documents that have pages."""
        row = self.db.execute("SELECT pages FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None or row[0] == "[]":
            return None
        doc = Document(doc_id, "", "", "", "", [tuple(p) for p in json.loads(row[0])])  # type: ignore[misc]
        return doc.page_at(offset)

    def documents(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT d.id, d.path, d.title, length(d.text) AS chars, count(c.id) AS chunks "
            "FROM documents d LEFT JOIN chunks c ON c.doc_id = d.id "
            "GROUP BY d.id ORDER BY d.path").fetchall()
        return [dict(r) for r in rows]

    def doc_chunk_rows(self, doc_id: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM chunks WHERE doc_id = ? ORDER BY ord",
                               (doc_id,)).fetchall()

    def close(self) -> None:
        """Close the connection and drop the arrays (and any file maps); safe to call twice."""
        with self._ref_lock:
            if self._closed:
                return
            self._closed = True
        db = getattr(self, "db", None)  # none if loading failed before it was opened
        if db is not None:
            db.close()
        self._all_vectors = None
        self.postings = None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns
