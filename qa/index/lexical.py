"""BM25 as precomputed impacts: each term's postings hold its BM25 contribution per chunk.

SQLite's FTS5 `bm25()` scores every row matching an OR query one by one, which dominates query
time on a large corpus (tens of milliseconds on 20k chunks). The score is a sum over query terms
of a per-(term, chunk) weight that depends only on the corpus, so a build computes those weights
once, from FTS5's own index (same tokenizer, same formula, same column weights), and a query
becomes a few array additions. FTS5 stays the source of truth; these arrays are derived from it.

Files in a version folder: `postings_offsets.npy` (term id -> slice), `postings_chunks.npy`
(chunk ids, ascending within a term) and `postings_impacts.npy` (float32 weights); the table
`terms(term, id)` in the SQLite file maps a stem to its id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# FTS5's bm25() constants, and the column weights the index uses (context, text).
K1 = 1.2
B = 0.75
COLUMN_WEIGHTS = (0.5, 1.0)
OFFSETS = "postings_offsets.npy"
CHUNKS = "postings_chunks.npy"
IMPACTS = "postings_impacts.npy"
FILES = (OFFSETS, CHUNKS, IMPACTS)
_BATCH = 200_000
# Arrays up to this size are read into memory at load; larger ones are memory-mapped.
MAP_THRESHOLD = 256 * 2**20


def load_array(path: Path) -> np.ndarray:
    """An .npy file as a plain array: read into memory up to MAP_THRESHOLD bytes, mapped beyond.

    A memory map turns a file truncated in place (a copy over it, an editor, a full disk) into
    SIGBUS on the next read of a lost page, which kills the whole server and no Python code can
    catch. qa never rewrites a published version, so only outside hands do that; reading arrays
    into memory makes it harmless for all but very large indexes, which keep the map's memory
    savings. (Read-only file modes would not help: root and the owner can still write.)
    The header and the file's length are checked either way: a short file is a ValueError."""
    mapped = np.load(path, mmap_mode="r")
    if mapped.nbytes <= MAP_THRESHOLD:
        return np.array(mapped)
    # A plain array view of the map: slicing a np.memmap costs microseconds each.
    return mapped.view(np.ndarray)


def write_postings(db: sqlite3.Connection, folder: Path, n_chunks: int) -> int:
    """Compute BM25 impacts from the filled `chunks_fts` table; return the number of terms.

    Chunk ids must be 0..n_chunks-1 (the writer numbers them so)."""
    db.execute("CREATE TABLE terms (term TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID")
    db.execute(
        "CREATE VIRTUAL TABLE temp.fts_instances USING fts5vocab(main, chunks_fts, instance)")
    w_context, w_text = COLUMN_WEIGHTS
    cur = db.execute(
        "SELECT term, doc, sum(CASE col WHEN 'context' THEN ? ELSE ? END), count(*) "
        "FROM temp.fts_instances GROUP BY term, doc", (w_context, w_text))
    term_ids: dict[str, int] = {}
    t_parts, c_parts, f_parts, n_parts = [], [], [], []
    while rows := cur.fetchmany(_BATCH):
        t_parts.append(np.fromiter((term_ids.setdefault(r[0], len(term_ids)) for r in rows),
                                   np.int32, len(rows)))
        c_parts.append(np.fromiter((r[1] for r in rows), np.int32, len(rows)))
        f_parts.append(np.fromiter((r[2] for r in rows), np.float64, len(rows)))
        n_parts.append(np.fromiter((r[3] for r in rows), np.int64, len(rows)))
    db.execute("DROP TABLE temp.fts_instances")
    term = np.concatenate(t_parts) if t_parts else np.zeros(0, np.int32)
    chunk = np.concatenate(c_parts) if c_parts else np.zeros(0, np.int32)
    freq = np.concatenate(f_parts) if f_parts else np.zeros(0)
    tokens = np.concatenate(n_parts) if n_parts else np.zeros(0, np.int64)
    if chunk.size and (chunk.min() < 0 or chunk.max() >= n_chunks):
        raise ValueError("full-text rows do not match chunk ids")
    # Row length counts every token in every column, as FTS5 does.
    length = np.bincount(chunk, weights=tokens, minlength=n_chunks)
    avg = length.sum() / max(n_chunks, 1) or 1.0
    order = np.lexsort((chunk, term))
    term, chunk, freq = term[order], chunk[order], freq[order]
    df = np.bincount(term, minlength=len(term_ids))
    idf = np.log((n_chunks - df + 0.5) / (df + 0.5))
    idf[idf <= 0] = 1e-6
    norm = K1 * (1 - B + B * length[chunk] / avg)
    impacts = idf[term] * freq * (K1 + 1) / (freq + norm)
    offsets = np.zeros(len(term_ids) + 1, np.int64)
    np.cumsum(df, out=offsets[1:])
    np.save(folder / OFFSETS, offsets)
    np.save(folder / CHUNKS, chunk.astype(np.int32))
    np.save(folder / IMPACTS, impacts.astype(np.float32))
    db.executemany("INSERT INTO terms VALUES (?, ?)", term_ids.items())
    return len(term_ids)


class Postings:
    """The impact arrays of one version (see `load_array`) and its term table."""

    def __init__(self, folder: Path, db: sqlite3.Connection, n_chunks: int):
        self.offsets = load_array(folder / OFFSETS)
        self.chunk_ids = load_array(folder / CHUNKS)
        self.impacts = load_array(folder / IMPACTS)
        if (self.offsets.ndim != 1 or not self.offsets.size or self.offsets[0] != 0
                or self.chunk_ids.ndim != 1 or self.chunk_ids.shape != self.impacts.shape
                or self.offsets[-1] != len(self.chunk_ids)
                or bool((np.diff(self.offsets) < 0).any())):
            raise ValueError("postings arrays disagree in length")
        # One pass at load (tens of milliseconds at a million chunks) so that a damaged file
        # is reported here, not as an index error in the middle of a query.
        if self.chunk_ids.size and (int(self.chunk_ids.min()) < 0
                                    or int(self.chunk_ids.max()) >= n_chunks):
            raise ValueError("postings name chunks the index does not have")
        self.db = db
        self.n_chunks = n_chunks

    def _slices(self, stems: Sequence[str]) -> list[tuple[int, int]]:
        stems = list(dict.fromkeys(s for s in stems if s))
        if not stems:
            return []
        marks = ",".join("?" * len(stems))
        ids = [r[0] for r in self.db.execute(
            f"SELECT id FROM terms WHERE term IN ({marks})", stems)]
        return [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in ids]

    def scores(self, stems: Sequence[str]) -> np.ndarray:
        """BM25 of every chunk for an OR of the stems (0 where none occurs). A stem asked for
        twice counts once, where FTS5 would count two words with one stem twice."""
        acc = np.zeros(self.n_chunks, np.float32)
        for a, b in self._slices(stems):
            # A term lists each chunk once, so fancy-index addition is exact.
            acc[self.chunk_ids[a:b]] += self.impacts[a:b]
        return acc

    def doc_freqs(self, stems: Sequence[str]) -> dict[str, int]:
        """Chunks holding each stem."""
        out = dict.fromkeys(stems, 0)
        stems = [s for s in dict.fromkeys(stems) if s]
        if stems:
            marks = ",".join("?" * len(stems))
            for term, i in self.db.execute(
                    f"SELECT term, id FROM terms WHERE term IN ({marks})", stems):
                out[term] = int(self.offsets[i + 1] - self.offsets[i])
        return out


def top(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The `n` highest positive scores, best first, as (chunk id, score)."""
    hit = np.flatnonzero(scores > 0)
    if hit.size > n:
        hit = hit[np.argpartition(-scores[hit], n - 1)[:n]]
    order = hit[np.argsort(-scores[hit], kind="stable")]
    return [(int(i), float(scores[i])) for i in order]
