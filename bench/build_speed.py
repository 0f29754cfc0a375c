"""Full build of a BEIR corpus: qa vs the encoder alone vs txtai, side by side in one run.

    python bench/build_speed.py SCIFACT_DIR [--backend onnx-int8] [--limit N] [--no-txtai]

1. qa: a full `build_index` of the corpus written out as one .txt file per document
   (title line, blank line, abstract), with the model already loaded.
2. encoder only: the same backend embedding exactly the texts qa embedded, nothing else.
3. txtai (optional, bench-only dependency): a hybrid (dense + BM25) index of the same
   documents with the same model through sentence-transformers.
Prints seconds and the two ratios the targets are stated in.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.index.build import build_index
from qa.index.embed import load_counter, load_embedder, resolve_model_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-txtai", action="store_true")
    args = ap.parse_args()

    docs = []
    with open(args.dataset / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            docs.append((d["_id"], d.get("title", ""), d.get("text", "")))
            if args.limit and len(docs) >= args.limit:
                break
    work = Path(tempfile.mkdtemp(prefix="qa-buildspeed-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for doc_id, title, text in docs:
        (corpus / f"{doc_id}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")

    settings = Settings(corpus_dir=corpus, index_dir=work / "index", embed_backend=args.backend)
    embedder = load_embedder(settings)
    embedder.embed(["warm up"])
    t = time.perf_counter()
    report = build_index(settings, lambda: embedder, full=True)
    qa_s = time.perf_counter() - t

    db = sqlite3.connect(next((work / "index" / "versions").glob("v*")) / "chunks.sqlite")
    from qa.index.chunk import Chunk, embedding_text

    texts = [embedding_text(Chunk("", 0, 0, 0, text, None, section), title, settings.embed_context)
             for text, section, title in db.execute(
                 "SELECT c.text, c.section, d.title FROM chunks c JOIN documents d "
                 "ON d.id = c.doc_id ORDER BY c.id")]
    t = time.perf_counter()
    for s in range(0, len(texts), 256):  # the build embeds in groups of 256 too
        embedder.embed(texts[s : s + 256])
    enc_s = time.perf_counter() - t

    print(f"documents {len(docs)}, chunks {report.chunks}, backend {args.backend}")
    print(f"qa full build        {qa_s:8.1f} s  ({report.chunks / qa_s:.1f} chunks/s)")
    print(f"encoder alone        {enc_s:8.1f} s  ({len(texts) / enc_s:.1f} chunks/s)")
    print(f"build / encoder      {qa_s / enc_s:8.3f}  (target <= 1.15)")
    # What each system feeds its encoder, in word pieces (both truncate at the model's 256).
    counter = load_counter(settings)
    qa_pieces = sum(min(n + 2, 256) for n in counter.count(texts))
    tx_pieces = sum(min(n + 2, 256) for n in counter.count([f"{t} {x}" for _, t, x in docs]))
    print(f"word pieces encoded  qa {qa_pieces:,}, txtai {tx_pieces:,} "
          f"(qa/txtai {qa_pieces / tx_pieces:.2f})")
    if not args.no_txtai:
        from txtai import Embeddings

        model = str(resolve_model_path(settings.model))
        emb = Embeddings(path=model, content=True, hybrid=True)
        t = time.perf_counter()
        emb.index([(doc_id, f"{title} {text}", None) for doc_id, title, text in docs])
        tx_s = time.perf_counter() - t
        print(f"txtai hybrid index   {tx_s:8.1f} s  ({len(docs) / tx_s:.1f} docs/s)")
        print(f"qa / txtai           {qa_s / tx_s:8.3f}  (target <= 0.5)")
        print(f"per word piece       {(qa_s / qa_pieces) / (tx_s / tx_pieces):8.3f}  (qa / txtai)")


if __name__ == "__main__":
    main()
