"""Filtered against unfiltered retrieval on synthetic indexes: latency ratios and dense recall.

    python bench/filter_speed.py [--sizes 10000 40000] [--queries 100]

Each index holds documents of 10 chunks in 100 folders, flat FAISS below 20k chunks and HNSW
above. Vectors cluster as real ones do (a topic centre, plus the document's, plus noise; pure
random vectors would be a worst case no corpus has) and queries lie near chunks; texts are
drawn from a synthetic vocabulary. Each filter is timed as
`Retriever.search` (dense + BM25 + fusion, k=10, 100 candidates) and reported as a ratio to the
unfiltered search on the same queries, with the dense top-10's recall against exact search over
the allowed chunks. The encoder is not involved.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.index.chunk import Chunk
from qa.index.ingest import Document
from qa.index.store import IndexVersion
from qa.index.writer import VersionWriter
from qa.search.filters import Filter, dense_within
from qa.search.retrieve import Retriever

DIM = 384
PER_DOC = 10
FOLDERS = 100


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def build(folder: Path, n: int, rng: np.random.Generator) -> IndexVersion:
    vocab = [f"w{i}" for i in range(5000)]
    topics = unit(rng.standard_normal((50, DIM)))
    writer = VersionWriter(folder, DIM)
    for d in range(n // PER_DOC):
        chunks, parts, pos = [], [], 0
        for j in range(PER_DOC):
            text = " ".join(rng.choice(vocab, size=40)) + "."
            chunks.append(Chunk(f"d{d}", j, pos, pos + len(text), text, None, None, 40,
                                ((pos, pos + len(text)),)))
            parts.append(text)
            pos += len(text) + 2
        centre = topics[rng.integers(len(topics))] + 0.5 * unit(rng.standard_normal(DIM))
        vecs = unit(centre + 0.6 * unit(rng.standard_normal((PER_DOC, DIM))))
        writer.add(Document(f"d{d}", f"f{d % FOLDERS:02d}/d{d}.txt", f"Doc {d}",
                            "\n\n".join(parts), "x"), chunks, vecs)
    writer.finish({"model": {"id": "synthetic", "dim": DIM}, "chunker": {}})
    return IndexVersion(folder)


def timed(retriever: Retriever, queries: list[tuple[str, np.ndarray]]) -> float:
    for q, v in queries[:5]:
        retriever.search(q, v, 10)  # warm
    t = time.perf_counter()
    for q, v in queries:
        retriever.search(q, v, 10)
    return (time.perf_counter() - t) * 1000 / len(queries)


def recall_at_10(version: IndexVersion, vecs: np.ndarray, ids: np.ndarray, allv: np.ndarray,
                 allowed: np.ndarray | None) -> float:
    """The dense top 10's share of the exact top 10 among `ids` (50 queries)."""
    recall = []
    for v in vecs[:50]:
        exact = ids[np.argsort(-(allv[ids] @ v))[:10]]
        if allowed is None:
            got = [c for c, _ in version.dense_search(v, 10)]
        else:
            got = [c for c, _ in dense_within(version, v, 10, allowed)]
        recall.append(len(set(exact.tolist()) & set(got)) / len(exact))
    return float(np.mean(recall))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000])
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| chunks | FAISS | filter | allowed chunks | ms per search | ratio to unfiltered "
          "| dense recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="qa-filter-") as work:
            version = build(Path(work) / "v", n, rng)
            kind = version.manifest["vector_index"]["type"]
            vocab_q = [" ".join(f"w{i}" for i in rng.integers(0, 5000, 6))
                       for _ in range(args.queries)]
            allv = np.asarray(version.all_vectors(), dtype=np.float32)
            near = allv[rng.integers(0, n, args.queries)]
            vecs = unit(near + 0.3 * unit(rng.standard_normal((args.queries, DIM))))
            queries = list(zip(vocab_q, vecs, strict=True))
            base = timed(Retriever(version, 100), queries)
            every = np.arange(n)
            print(f"| {n:,} | {kind} | none | {n:,} | {base:.2f} | 1.00 | "
                  f"{recall_at_10(version, vecs, every, allv, None):.3f} |", flush=True)
            half = ["f0", "f1", "f2", "f3", "f4"]  # string prefixes: f00/ to f49/
            for label, where in [("one document", Filter.of(documents=["d7"])),
                                 ("one folder (1%)", Filter.of(paths=["f03/"])),
                                 ("a tenth of the folders", Filter.of(paths=["f0"])),
                                 ("half the folders", Filter.of(paths=half))]:
                assert where is not None
                allowed = where.chunk_ids(version)
                ms = timed(Retriever(version, 100, where=where), queries)
                recall = recall_at_10(version, vecs, allowed, allv, allowed)
                print(f"| {n:,} | {kind} | {label} | {allowed.size:,} | {ms:.2f} | "
                      f"{ms / base:.2f} | {recall:.3f} |", flush=True)
            version.close()


if __name__ == "__main__":
    main()
