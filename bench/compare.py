"""Score a few fusion settings on the cached features of several runs (see bench/tune.py).

    python bench/compare.py DATASET_DIR INDEX_ROOT [--split S] [--tokens N] [--sample N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tune  # noqa: E402

SETTINGS = [(0.6, 0.1, 0.3)]
RERANK = [0, 20, 40]  # sentence signal only for the best N by the first two signals (0: all)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("root", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=100)
    args = ap.parse_args()
    ds, queries, feats, _ = tune.load(args)
    for (wd, wb, ws), top in ((w, n) for w in SETTINGS for n in RERANK):
        def f(r, wd=wd, wb=wb, ws=ws, top=top):
            d, b, s = tune.cols(r)
            first = wd * d + wb * tune.maxn(b)
            if top:
                s = s.copy()
                s[np.argsort(-first, kind="stable")[top:]] = 0.0
            return first + ws * s
        print(f"raw/max d={wd} b={wb} s={ws} top={top}".ljust(40),
              tune.evaluate(ds, queries, feats, f))


if __name__ == "__main__":
    main()
