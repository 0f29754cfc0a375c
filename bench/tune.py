"""Fusion experiments on a built evaluation index: features once, many scorings in memory.

    python bench/tune.py DATASET_DIR INDEX_ROOT [--split train] [--sample 2000] [--seed 0]

Query vectors and per-query candidate signals are cached under INDEX_ROOT/cache/.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import pickle
import random
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import (
    chunk_answers,
    doc_ranking,
    locate_gold,
    mrr_at,
    ndcg_at,
    normalised_answers,
    prepare_index,
    recall_at,
)
from qa.index.embed import load_embedder
from qa.search.retrieve import Retriever


def load(args: argparse.Namespace):
    settings = Settings(chunk_tokens=args.tokens)
    ds = load_dataset(args.dataset, args.split)
    prep = prepare_index(ds.docs, args.root / "full", settings, lambda: load_embedder(settings))
    queries = ds.queries
    if args.sample and args.sample < len(queries):
        queries = random.Random(args.seed).sample(queries, args.sample)
    ids = "|".join(q.id for q in queries)
    key = hashlib.sha1((ids + prep.version.name).encode()).hexdigest()[:12]
    cache = args.root / "cache"
    cache.mkdir(exist_ok=True)
    qkey = hashlib.sha1("|".join(q.id for q in queries).encode()).hexdigest()[:12]
    vec_file = cache / f"qvec-{qkey}.npy"
    if vec_file.is_file():
        qvecs = np.load(vec_file)
    else:
        t = time.perf_counter()
        qvecs = load_embedder(settings).embed([q.text for q in queries])
        print(f"embedded {len(queries)} queries in {time.perf_counter() - t:.1f} s")
        np.save(vec_file, qvecs)
    feat_file = cache / f"feat-{key}-{args.candidates}.pkl"
    if feat_file.is_file():
        feats = pickle.loads(feat_file.read_bytes())
    else:
        r = Retriever(prep.version, args.candidates)
        t = time.perf_counter()
        gold = locate_gold(prep.version, prep.doc_of, queries) if ds.kind == "squad" else {}
        feats = []
        for q, v in zip(queries, qvecs, strict=True):
            cands = r.candidates(q.text, v)
            ans = normalised_answers(q.answers)
            rows = []
            for c in cands:
                ok = (chunk_answers(c.doc_id, c.start, c.end, c.text, gold[q.id], ans)
                      if q.id in gold else False)
                sent_ok = bool(c.best_span) and q.id in gold and any(
                    x in c.text[c.best_span[0] - c.start: c.best_span[1] - c.start] for x in ans)
                rows.append((c.chunk_id, c.dense or 0.0, c.lexical or 0.0, c.sentence,
                             prep.doc_of.get(c.doc_id, c.doc_id), ok, sent_ok,
                             c.dense_rank, c.lexical_rank))
            feats.append(rows)
        print(f"features for {len(queries)} queries in {time.perf_counter() - t:.1f} s")
        feat_file.write_bytes(pickle.dumps(feats))
    return ds, queries, feats, qvecs


def evaluate(ds, queries, feats, scorer) -> dict[str, float]:
    m: dict[str, list[float]] = {}
    for q, rows in zip(queries, feats, strict=True):
        if not rows:
            order = []
        else:
            s = scorer(rows)
            order = [rows[i] for i in np.argsort(-s, kind="stable")]
        if ds.kind == "squad":
            hits = [r[5] for r in order]
            m.setdefault("hit@1", []).append(float(any(hits[:1])))
            m.setdefault("hit@5", []).append(float(any(hits[:5])))
            m.setdefault("mrr@10", []).append(mrr_at(hits))
            m.setdefault("sent@1", []).append(float(bool(order) and order[0][6]))
        else:
            docs = doc_ranking([r[4] for r in order])
            m.setdefault("ndcg@10", []).append(ndcg_at(docs, q.relevant))
            m.setdefault("R@100", []).append(recall_at(docs, q.relevant, 100))
    return {k: round(float(np.mean(v)), 4) for k, v in m.items()}


def cols(rows):
    a = np.array([[r[1], r[2], r[3]] for r in rows], dtype=float)
    return a[:, 0], a[:, 1], a[:, 2]


def mm(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.ones_like(x)


def maxn(x):
    return x / x.max() if x.max() > 0 else x


def zs(x):
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def rrf(rows, k=60):
    return np.array([(1 / (k + r[7] + 1) if r[7] is not None else 0)
                     + (1 / (k + r[8] + 1) if r[8] is not None else 0) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("root", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tokens", type=int, default=128, help="chunk budget of the index")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    ds, queries, feats, _ = load(args)
    runs = {
        "bm25": lambda r: cols(r)[1],
        "dense": lambda r: cols(r)[0],
        "rrf": rrf,
        "sentence-only": lambda r: cols(r)[2] + 1e-3 * maxn(cols(r)[1]),
    }
    for name, f in runs.items():
        print(f"{name:40s} {evaluate(ds, queries, feats, f)}")
    if args.grid:
        norms = {"mm/max": (mm, maxn), "mm/mm": (mm, mm), "z/z": (zs, zs),
                 "raw/max": (lambda x: x, maxn)}
        for (nn, (fd, fb)), wd, ws in itertools.product(
                norms.items(), [0.2, 0.3, 0.4, 0.5, 0.6], [0.0, 0.1, 0.2, 0.3, 0.4]):
            wb = 1 - wd - ws
            if wb < 0:
                continue
            def f(r, fd=fd, fb=fb, wd=wd, ws=ws, wb=wb):
                d, b, s = cols(r)
                return wd * fd(d) + wb * fb(b) + ws * s
            label = f"{nn} d={wd:.1f} b={wb:.1f} s={ws:.1f}"
            print(label.ljust(40), evaluate(ds, queries, feats, f))


if __name__ == "__main__":
    main()
