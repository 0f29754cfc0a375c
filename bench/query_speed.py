"""Warm, in-process query latency on a built index: encode, retrieve, answer, end to end.

    python bench/query_speed.py INDEX_DIR QUERIES_JSONL [--backend onnx-int8] [--n 300] [--k 10]
        [--txtai-corpus CORPUS_JSONL]

Each phase is timed separately over the same queries after a warm-up pass, so the figures show
where the time goes. With --txtai-corpus, a txtai hybrid index of that corpus with the same model
is built first and queried with the same questions in the same run, for a side-by-side ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.search.answer import compose
from qa.search.engine import Engine
from qa.search.retrieve import Retriever

PHASES = ("encode query", "hybrid retrieval", "answer selection", "retrieval + answer",
          "end to end (Engine.ask)")


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--txtai-corpus", type=Path)
    args = ap.parse_args()
    queries = []
    with open(args.queries, encoding="utf-8") as fh:
        for line in fh:
            queries.append(json.loads(line)["text"])
            if len(queries) >= args.n:
                break
    settings = Settings(index_dir=args.index_dir, embed_backend=args.backend, min_confidence=0.0)
    engine = Engine(settings)
    emb, version = engine.embedder, engine.version
    retriever = Retriever(version, settings.candidates)
    for q in queries[:20]:
        engine.ask(q, k=args.k)  # warm-up: caches, allocator, first-touch of the index files
    wall: dict[str, list[float]] = {p: [] for p in PHASES}
    cpu: dict[str, list[float]] = {p: [] for p in PHASES}
    for q in queries:
        # Wall time, and this thread's CPU time: on a machine shared with other jobs the second
        # leaves out the time spent waiting for a core (retrieval and answer run in one thread).
        marks = [(time.perf_counter(), time.thread_time())]
        qv = emb.embed([q])[0]
        marks.append((time.perf_counter(), time.thread_time()))
        cands = retriever.search(q, qv, args.k)
        marks.append((time.perf_counter(), time.thread_time()))
        compose(q, q, cands, version, 0.0)
        marks.append((time.perf_counter(), time.thread_time()))
        engine.ask(q, k=args.k)
        marks.append((time.perf_counter(), time.thread_time()))
        spans = {"encode query": (0, 1), "hybrid retrieval": (1, 2), "answer selection": (2, 3),
                 "retrieval + answer": (1, 3), "end to end (Engine.ask)": (3, 4)}
        for name, (a, b) in spans.items():
            wall[name].append(marks[b][0] - marks[a][0])
            cpu[name].append(marks[b][1] - marks[a][1])
    print(f"{len(queries)} queries, {version.n_chunks} chunks, backend {args.backend}, k={args.k}")
    print("| phase | p50 ms | p95 ms | thread CPU p50 ms | thread CPU p95 ms |")
    print("|---|---|---|---|---|")
    for name in PHASES:
        print(f"| {name} | {pct(wall[name], 50):.1f} | {pct(wall[name], 95):.1f} | "
              f"{pct(cpu[name], 50):.1f} | {pct(cpu[name], 95):.1f} |")
    t_all = wall["end to end (Engine.ask)"]
    if args.txtai_corpus:
        from txtai import Embeddings

        from qa.index.embed import resolve_model_path

        docs = [json.loads(line) for line in open(args.txtai_corpus, encoding="utf-8")]
        tx = Embeddings(path=str(resolve_model_path(settings.model)), content=True, hybrid=True)
        tx.index([(d["_id"], f"{d.get('title', '')} {d.get('text', '')}", None) for d in docs])
        for q in queries[:20]:
            tx.search(q, args.k)
        t_tx = []
        for q in queries:
            t = time.perf_counter()
            tx.search(q, args.k)
            t_tx.append(time.perf_counter() - t)
        print(f"| txtai hybrid search, same model | {pct(t_tx, 50):.1f} | {pct(t_tx, 95):.1f} |")
        print(f"qa end to end / txtai (p50): {np.median(t_all) / np.median(t_tx):.2f}")


if __name__ == "__main__":
    main()
