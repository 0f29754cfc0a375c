"""Full build vs incremental build after touching 1% of a synthetic 1,000-document corpus.

    python bench/incremental.py [--docs 1000] [--backend torch] [--work DIR]

Both builds run in this one process, one after the other, with the same model, so the ratio
is fair on a noisy machine. Prints a Markdown row for bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.index.build import build_index
from qa.index.embed import load_embedder

WORDS = ("river mountain harbour engine treaty market signal protein orbit glacier"
         " circuit ledger archive festival vaccine turbine satellite canal monsoon"
         " alloy copper reactor cable wallet identity network cipher tariff export"
         " rainfall forest coral island museum lantern violin bridge tunnel railway").split()


def write_corpus(folder: Path, n_docs: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(n_docs):
        sentences = []
        for _ in range(rng.randint(8, 14)):
            words = rng.choices(WORDS, k=rng.randint(8, 18))
            sentences.append(" ".join(words).capitalize() + ".")
        (folder / f"doc{i:04d}.txt").write_text(f"Document {i}\n\n" + " ".join(sentences) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-bench-"))
    corpus = work / "corpus"
    shutil.rmtree(work / "index", ignore_errors=True)
    corpus.mkdir(parents=True, exist_ok=True)
    write_corpus(corpus, args.docs)
    settings = Settings(corpus_dir=corpus, index_dir=work / "index", embed_backend=args.backend)
    embedder = load_embedder(settings)  # loaded once, outside both timings
    embedder.embed(["warm up"])

    t = time.perf_counter()
    full = build_index(settings, lambda: embedder, full=True)
    full_s = time.perf_counter() - t

    touched = max(1, args.docs // 100)
    for i in range(touched):
        path = corpus / f"doc{i * 97 % args.docs:04d}.txt"
        path.write_text(path.read_text() + "An added closing sentence about lanterns.\n")
    t = time.perf_counter()
    inc = build_index(settings, lambda: embedder)
    inc_s = time.perf_counter() - t

    print(f"documents {full.documents}, chunks {full.chunks}, touched {touched} "
          f"({len(inc.changed)} changed, {inc.embedded_chunks} chunks re-embedded)")
    print(f"full build      {full_s:8.2f} s")
    print(f"incremental     {inc_s:8.2f} s")
    print(f"ratio           {inc_s / full_s:8.3f}  (target <= 0.05)")
    print(f"| {args.docs} docs, {args.backend} | {full.chunks} | {full_s:.1f} s | {inc_s:.2f} s "
          f"| {inc_s / full_s:.3f} |")


if __name__ == "__main__":
    main()
