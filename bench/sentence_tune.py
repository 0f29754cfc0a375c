"""Second-stage experiments: rerank the top fused chunks with sentence-level signals.

    python bench/sentence_tune.py DATASET_DIR INDEX_ROOT [--sample 2000] [--top 20]

Needs the caches written by bench/tune.py. Embeds every distinct sentence of the chunks that
reach the top lists once (cached under INDEX_ROOT/cache/).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tune  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.eval.evaluate import prepare_index  # noqa: E402
from qa.index.embed import load_embedder  # noqa: E402
from qa.search.retrieve import query_terms, term_idf  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("root", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tokens", type=int, default=128, help="chunk budget of the index")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--first", default="0.5,0.1,0.4", help="first-stage weights d,b,s")
    args = ap.parse_args()
    ds, queries, feats, qvecs = tune.load(args)
    settings = Settings(chunk_tokens=args.tokens)
    prep = prepare_index(ds.docs, args.root / "full", settings, lambda: load_embedder(settings))
    version = prep.version
    wd, wb, ws = (float(x) for x in args.first.split(","))

    def first(rows):
        d, b, s = tune.cols(rows)
        return wd * tune.mm(d) + wb * tune.maxn(b) + ws * s

    tops = []
    for rows in feats:
        if not rows:
            tops.append([])
            continue
        order = np.argsort(-first(rows), kind="stable")[: args.top]
        tops.append([rows[i] for i in order])
    ids = sorted({r[0] for t in tops for r in t})
    chunks = {c.id: c for c in version.chunks(ids)}
    sent_of = version.sentences(list(chunks.values()))
    spans = sorted({(chunks[cid].doc_id, a, b) for cid in ids for a, b, _ in sent_of[cid]})
    index = {s: i for i, s in enumerate(spans)}
    vec_file = args.root / "cache" / f"sentvec-{args.top}-{len(spans)}.npy"
    if vec_file.is_file():
        svecs = np.load(vec_file)
    else:
        t = time.perf_counter()
        texts = []
        for doc_id, a, b in spans:
            cid = next(c for c in ids if chunks[c].doc_id == doc_id and chunks[c].start <= a
                       and b <= chunks[c].end)
            texts.append(chunks[cid].text[a - chunks[cid].start: b - chunks[cid].start])
        svecs = load_embedder(settings).embed(texts)
        np.save(vec_file, svecs)
        print(f"embedded {len(texts)} sentences in {time.perf_counter() - t:.0f} s")
    # Per query and top chunk: best sentence cosine, and the best combined sentence score.
    enriched = []
    for q, qv, top in zip(queries, qvecs, tops, strict=True):
        idf = term_idf(version, query_terms(q.text)) if top else {}
        total = sum(idf.values()) or 1.0
        rows = []
        for r in top:
            ch = chunks[r[0]]
            sents = sent_of[r[0]]
            cos = np.array([svecs[index[(ch.doc_id, a, b)]] @ qv for a, b, _ in sents])
            cov = np.array([sum(w for s, w in idf.items() if s in st) / total
                            for _, _, st in sents])
            rows.append((r, cos, cov))
        enriched.append(rows)

    def run(name, scorer):
        m = {"hit@1": [], "hit@5": [], "sent@1": []}
        for rows in enriched:
            if not rows:
                for v in m.values():
                    v.append(0.0)
                continue
            s = scorer(rows)
            order = np.argsort(-s, kind="stable")
            hits = [rows[i][0][5] for i in order]
            m["hit@1"].append(float(any(hits[:1])))
            m["hit@5"].append(float(any(hits[:5])))
            m["sent@1"].append(float(rows[order[0]][0][6]))
        print(f"{name:48s}", {k: round(float(np.mean(v)), 4) for k, v in m.items()})

    base = lambda rows: first([r for r, _, _ in rows])  # noqa: E731
    run("first stage", base)
    for a, c, f in itertools.product([0.3, 0.5, 0.7], [0.2, 0.4, 0.6], [0.0, 0.3, 0.6, 1.0]):
        def sc(rows, a=a, c=c, f=f):
            fs = base(rows)
            fs = fs / fs.max() if fs.max() > 0 else fs
            sent = np.array([float(np.max(a * cos + c * cov)) for _, cos, cov in rows])
            return sent + f * fs
        run(f"max_s({a}*cos+{c}*cov) + {f}*first", sc)


if __name__ == "__main__":
    main()
