"""Build (or reuse) the evaluation indexes for one dataset at one chunk budget.

    python bench/build_indexes.py DATASET_DIR OUT_DIR --tokens 128 --overlap 1
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import prepare_index
from qa.index.embed import load_embedder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--overlap", type=int, default=1)
    ap.add_argument("--no-context", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    settings = Settings(chunk_tokens=args.tokens, chunk_overlap=args.overlap,
                        embed_context=not args.no_context)
    ds = load_dataset(args.dataset)
    t = time.perf_counter()
    prep = prepare_index(ds.docs, args.out, settings, lambda: load_embedder(settings))
    print(f"{ds.name}: {prep.version.n_chunks} chunks, built={prep.built}, "
          f"{time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
