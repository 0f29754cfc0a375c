"""Write the stored reference vectors the encoder tests compare against (needs `qa[torch]`).

    python bench/reference_vectors.py [tests/data/minilm_reference.json]

The vectors come from sentence-transformers on torch, the reference implementation of the
bundled model; the torch-free ONNX encoder is checked against them in tests/test_embed.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.index.embed import SentenceTransformerEmbedder

# Short, long (past the 256-piece limit, so truncation is covered), accented, numeric, and
# one word: the shapes of text an index meets.
SENTENCES = [
    "The Netherlands put €133 million into photonic integrated circuits.",
    "Rapidus expects to start producing 2-nanometre chips in 2027, after a pilot line in "
    "Hokkaido opens.",
    "Ärzte in Zürich und São Paulo tauschen Röntgenbilder über ein gemeinsames Netz aus.",
    " ".join(["A submarine cable through the Arctic would link the EU and Japan, cutting "
              "latency for research networks and giving both a route that avoids "
              "chokepoints."] * 12),
    "short",
]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.json")
    embedder = SentenceTransformerEmbedder(Settings().model)
    vectors = embedder.embed(SENTENCES)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    out.write_text(json.dumps({
        "model": embedder.model_id,
        "made_with": "sentence-transformers on torch, normalize_embeddings=True",
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 6) for x in row] for row in vectors],
    }, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} x {vectors.shape[1]} reference vectors to {out}")


if __name__ == "__main__":
    main()
