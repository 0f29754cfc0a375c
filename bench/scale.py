"""Build and query synthetic indexes of 10k, 100k and 1M chunks: memory, latency, ANN recall.

    python bench/scale.py --base-index DIR [--sizes 10000 100000 1000000]

DIR is any built qa index of format 3 or later (for example the SciFact one `qa eval` builds);
its chunk texts, sentence spans and vectors are repeated with noise to reach each size, so the
vectors keep a realistic cluster structure. Each size runs in its own process so its peak RSS is
its own. The encoder is not involved: this measures storage, FAISS, BM25 postings and fusion.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def run_size(base: Path, n: int, work: Path, threshold: int, graph_threshold: int) -> dict:
    from qa.index.chunk import Chunk
    from qa.index.index_dir import IndexDir
    from qa.index.ingest import Document
    from qa.index.store import IndexVersion
    from qa.index.writer import VersionWriter
    from qa.search.retrieve import Retriever, query_terms

    src = IndexDir(base).open_current()
    rows = src.db.execute("SELECT text, start, sentences FROM chunks ORDER BY id").fetchall()
    texts = [r[0] for r in rows]
    # Sentence spans relative to each chunk, reused so the build does not split 1M texts again.
    spans = [[(a - r[1], b - r[1]) for a, b, _ in json.loads(r[2])] or [(0, len(r[0]))]
             for r in rows]
    base_vecs = np.asarray(src.all_vectors(), dtype=np.float32)
    rng = np.random.default_rng(0)
    pyrng = random.Random(0)
    words = sorted({w for t in texts[:2000] for w in t.split()})
    t0 = time.perf_counter()
    writer = VersionWriter(work / "v", base_vecs.shape[1], ann_threshold=threshold,
                           graph_threshold=graph_threshold)
    per_doc = 10
    for d in range(0, n, per_doc):
        chunks, vecs, parts, pos = [], [], [], 0
        for j in range(min(per_doc, n - d)):
            i = (d + j) % len(texts)
            text = texts[i] + " " + " ".join(pyrng.choices(words, k=3))
            sents = [(pos + a, pos + b) for a, b in spans[i]]
            sents[-1] = (sents[-1][0], pos + len(text))  # the added words join the last one
            chunks.append(Chunk(f"d{d}", j, pos, pos + len(text), text, None, None, 0,
                                tuple(sents)))
            parts.append(text)
            pos += len(text) + 2
            v = base_vecs[i] + 0.05 * rng.standard_normal(base_vecs.shape[1]).astype(np.float32)
            vecs.append(v / np.linalg.norm(v))
        doc = Document(f"d{d}", f"synthetic/{d}.txt", f"Synthetic {d}", "\n\n".join(parts), "x")
        writer.add(doc, chunks, np.stack(vecs))
    writer.finish({"model": {"id": "synthetic", "dim": base_vecs.shape[1]}, "chunker": {}})
    build_s = time.perf_counter() - t0
    version = IndexVersion(work / "v")
    retriever = Retriever(version, 100)
    queries = [(texts[i % len(texts)][:120], base_vecs[i % len(base_vecs)]
                + 0.05 * rng.standard_normal(base_vecs.shape[1]).astype(np.float32))
               for i in rng.choice(len(texts), size=200, replace=False)]
    queries = [(q, v / np.linalg.norm(v)) for q, v in queries]
    for q, v in queries[:10]:
        retriever.search(q, v, 10)  # warm caches
    lat = []
    for q, v in queries:
        t = time.perf_counter()
        retriever.search(q, v, 10)
        lat.append((time.perf_counter() - t) * 1000)
    # Recall@10 of the FAISS index against exact search over the stored vectors.
    allv = np.asarray(version.all_vectors(), dtype=np.float32)
    recalls = []
    for _, v in queries[:100]:
        exact = set(np.argsort(-(allv @ v))[:10].tolist())
        got = {i for i, _ in version.dense_search(v, 10)}
        recalls.append(len(exact & got) / 10)
    dense_lat = []
    for _, v in queries:
        t = time.perf_counter()
        version.dense_search(v, 100)
        dense_lat.append((time.perf_counter() - t) * 1000)
    lex_lat = []
    for q, _ in queries:
        t = time.perf_counter()
        version.lexical_search(query_terms(q), 100)
        lex_lat.append((time.perf_counter() - t) * 1000)
    size_mb = sum(p.stat().st_size for p in (work / "v").iterdir()) / 1e6
    return {
        "chunks": n, "faiss": version.manifest["vector_index"]["type"],
        "build_s": round(build_s, 1), "disk_mb": round(size_mb),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "hybrid_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "hybrid_p95_ms": round(float(np.percentile(lat, 95)), 2),
        "dense_p50_ms": round(float(np.percentile(dense_lat, 50)), 2),
        "lexical_p50_ms": round(float(np.percentile(lex_lat, 50)), 2),
        "recall_at_10_vs_exact": round(float(np.mean(recalls)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-index", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--threshold", type=int, default=200_000)
    ap.add_argument("--graph-threshold", type=int, default=20_000)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory(prefix="qa-scale-") as work:
            print(json.dumps(run_size(args.base_index, args.one, Path(work), args.threshold,
                                        args.graph_threshold)))
        return
    print("| chunks | FAISS | build s | disk MB | peak RSS MB | hybrid p50 ms | hybrid p95 ms "
          "| dense p50 ms | lexical p50 ms | recall@10 vs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--base-index", str(args.base_index),
                              "--threshold", str(args.threshold),
                              "--graph-threshold", str(args.graph_threshold), "--one", str(n)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['chunks']:,} | {r['faiss']} | {r['build_s']} | {r['disk_mb']} | "
              f"{r['peak_rss_mb']} | {r['hybrid_p50_ms']} | {r['hybrid_p95_ms']} | "
              f"{r['dense_p50_ms']} | {r['lexical_p50_ms']} | {r['recall_at_10_vs_exact']} |",
              flush=True)


if __name__ == "__main__":
    main()
