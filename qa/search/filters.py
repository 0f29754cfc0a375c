"""Restricting a question to some documents: by id, by path prefix, or both.

A filter is applied inside retrieval. Both searches look only at the allowed chunks (FAISS
through an ID selector, BM25 over the allowed chunks' scores), so a filtered question still
gets its full share of candidates from the allowed documents instead of whatever survives of
an unfiltered top list.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faiss
import numpy as np

from qa.errors import BadFilterError
from qa.index.lexical import top
from qa.index.store import IndexVersion, fts_query
from qa.index.terms import stemmer

MAX_DOCUMENTS = 200
MAX_PATHS = 20
MAX_PATH_CHARS = 500
# An approximate index walked through a selector that forbids most of it loses recall fast, so
# below these sizes the search is exact instead. HNSW: when under GRAPH_SHARE of the chunks are
# allowed, the graph's own float vectors are scanned, computing only the allowed ones (at most
# a fifth of 200k chunks, since larger indexes use IVF). IVF keeps 8-bit codes only: up to
# EXACT_LIMIT allowed chunks their stored vectors are scored; beyond, more lists are probed
# the fewer chunks are allowed. Figures in bench/filter_speed.py.
GRAPH_SHARE = 0.2
EXACT_LIMIT = 20_000
MAX_PROBE_FACTOR = 8


def normalise_prefix(prefix: str) -> str:
    """A path prefix in the form document paths are stored in (relative, '/'-separated);
    BadFilterError for one that is empty or climbs out with '..'."""
    if not isinstance(prefix, str):
        raise BadFilterError("a path prefix must be a string")
    if len(prefix) > MAX_PATH_CHARS:
        raise BadFilterError(f"a path prefix has at most {MAX_PATH_CHARS} characters")
    if "\x00" in prefix:
        raise BadFilterError("a path prefix cannot hold a NUL character")
    raw = prefix.strip().replace("\\", "/")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadFilterError(f"path prefix {prefix[:100]!r} climbs out of the corpus with '..'")
    if not parts:
        raise BadFilterError(f"path prefix {prefix[:100]!r} is empty; leave it out to search "
                             "every document")
    joined = "/".join(parts)
    # "reports/" keeps its slash: it names the folder, not "reports-2024.txt" as well.
    return joined + "/" if raw.endswith("/") else joined


@dataclass(frozen=True)
class Filter:
    """Which documents a question may cite: any of `documents` (ids), and, when `paths` is
    given, only those whose path starts with one of the prefixes (compared as strings)."""

    documents: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @classmethod
    def of(cls, documents: Sequence[str] | None = None,
           paths: Sequence[str] | None = None) -> Filter | None:
        """A checked, normalised filter, or None when nothing restricts the search."""
        if isinstance(documents, str) or isinstance(paths, str):
            raise BadFilterError("documents and paths are lists of strings")
        documents = list(documents or ())
        paths = list(paths or ())
        if len(documents) > MAX_DOCUMENTS:
            raise BadFilterError(f"at most {MAX_DOCUMENTS} document ids in a filter")
        if len(paths) > MAX_PATHS:
            raise BadFilterError(f"at most {MAX_PATHS} path prefixes in a filter")
        if not all(isinstance(d, str) and d.strip() for d in documents):
            raise BadFilterError("a document id must be a non-empty string")
        ids = tuple(dict.fromkeys(d.strip() for d in documents))
        prefixes = tuple(dict.fromkeys(normalise_prefix(p) for p in paths))
        return cls(ids, prefixes) if ids or prefixes else None

    def sql(self) -> tuple[str, list[Any]]:
        """An SQL condition on `d` (documents) for the allowed documents, and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.documents:
            clauses.append(f"d.id IN ({','.join('?' * len(self.documents))})")
            params += self.documents
        if self.paths:
            # substr, not LIKE: '%' and '_' in a path are plain characters.
            clauses.append("(" + " OR ".join("substr(d.path, 1, ?) = ?" for _ in self.paths) + ")")
            for p in self.paths:
                params += [len(p), p]
        return " AND ".join(clauses), params

    def check(self, version: IndexVersion) -> None:
        """BadFilterError naming what the filter asks for and the index lacks."""
        if self.documents:
            marks = ",".join("?" * len(self.documents))
            known = {r[0] for r in version.db.execute(
                f"SELECT id FROM documents WHERE id IN ({marks})", self.documents)}
            unknown = [d for d in self.documents if d not in known]
            if unknown:
                listed = ", ".join(repr(d[:40]) for d in unknown[:5])
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                raise BadFilterError(f"no indexed document has the id {listed}{more}; "
                                     "see GET /api/documents")
        where, params = self.sql()
        row = version.db.execute(f"SELECT 1 FROM documents d WHERE {where} LIMIT 1",
                                 params).fetchone()
        if row is None:
            raise BadFilterError(f"no indexed document matches the filter ({self.describe()})")

    def describe(self) -> str:
        """The filter in words, for messages."""
        parts = []
        if self.documents:
            parts.append("documents " + ", ".join(self.documents[:5])
                         + (" ..." if len(self.documents) > 5 else ""))
        if self.paths:
            parts.append("paths starting with " + ", ".join(repr(p) for p in self.paths))
        return " and ".join(parts)

    def chunk_ids(self, version: IndexVersion) -> np.ndarray:
        """The allowed chunks of `version`, ascending; checked first (see `check`)."""
        key = (str(version.folder), version.name, self)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
        self.check(version)
        where, params = self.sql()
        rows = version.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where} "
            "ORDER BY c.id", params)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64)
        ids.setflags(write=False)
        with _cache_lock:
            _cache[key] = ids
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        return ids


# A published version never changes, so the allowed chunks of a (version, filter) pair can be
# kept: a client that asks many questions of one folder resolves it once.
CACHE_SIZE = 32
_cache: OrderedDict[tuple[str, str, Filter], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


# faiss's type stubs lack the search parameter classes' keyword arguments.
_faiss: Any = faiss


def _search_params(index: faiss.Index, selector: faiss.IDSelector, share: float) -> Any:
    """Search parameters with the selector, keeping the index's own search-time settings
    (parameters passed to a search replace them); IVF probes more lists for a small `share`
    of allowed chunks, so about as many allowed chunks are seen as without a filter."""
    if isinstance(index, faiss.IndexHNSW):
        return _faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
    ivf = faiss.try_extract_index_ivf(index) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is not None:
        factor = min(MAX_PROBE_FACTOR, max(1.0, 1.0 / max(share, 1e-9)))
        return _faiss.SearchParametersIVF(sel=selector,
                                          nprobe=min(ivf.nlist, int(ivf.nprobe * factor)))
    return _faiss.SearchParameters(sel=selector)


def _exact_storage(index: faiss.Index) -> faiss.IndexFlat | None:
    """The index's full float vectors as a flat index, where it keeps them (flat and HNSW)."""
    if isinstance(index, faiss.IndexFlat):
        return index
    if isinstance(index, faiss.IndexHNSW):
        storage = faiss.downcast_index(index.storage)
        return storage if isinstance(storage, faiss.IndexFlat) else None
    return None


def dense_within(version: IndexVersion, query: np.ndarray, n: int,
                 allowed: np.ndarray) -> list[tuple[int, float]]:
    """The `n` allowed chunks nearest the query, best first, as (chunk id, cosine)."""
    n = min(n, int(allowed.size))
    if n <= 0:
        return []
    vector = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    selector = faiss.IDSelectorBatch(allowed)
    index = version.faiss
    share = allowed.size / max(version.n_chunks, 1)
    storage = _exact_storage(index)
    if storage is None and allowed.size <= EXACT_LIMIT:  # IVF: score the stored vectors
        scores = version.vectors(cast(Sequence[int], allowed)) @ vector[0]
        best = np.argsort(-scores, kind="stable")[:n]
        return [(int(allowed[i]), float(scores[i])) for i in best]
    if storage is not None and share < GRAPH_SHARE:
        index = storage  # a scan that computes only the allowed chunks' products: exact
    scores, ids = index.search(vector, n, params=_search_params(index, selector, share))
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def lexical_within(version: IndexVersion, terms: Sequence[str], n: int, flt: Filter,
                   allowed: np.ndarray) -> tuple[list[tuple[int, float]], Callable[[int], float]]:
    """BM25 as `IndexVersion.lexical` gives it, ranked among the allowed chunks only."""
    if version.postings is not None:
        scores = version.postings.scores(list(stemmer().stems(terms).values()))
        ranked = [(int(allowed[i]), s) for i, s in top(scores[allowed], n)]
        return ranked, lambda cid: float(scores[cid])
    # Indexes older than format 3 have no postings: FTS5 with the filter joined in.
    match = fts_query(terms)
    if not match:
        return [], lambda cid: 0.0
    where, params = flt.sql()
    rows = version.db.execute(
        "SELECT rowid, bm25(chunks_fts, 0.5, 1.0) AS s FROM chunks_fts "
        "WHERE chunks_fts MATCH ? AND rowid IN (SELECT c.id FROM chunks c "
        f"JOIN documents d ON d.id = c.doc_id WHERE {where}) ORDER BY s LIMIT ?",
        [match, *params, max(n, 1000)]).fetchall()
    scored = [(int(r[0]), -float(r[1])) for r in rows]
    known = dict(scored)
    return scored[:n], lambda cid: known.get(cid, 0.0)
