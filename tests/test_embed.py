"""The real bundled model through both encoder backends."""

from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.errors import QAError
from qa.index.embed import load_embedder, model_id, resolve_model_path

TEXTS = [
    "The Netherlands put €133 million into photonic integrated circuits.",
    "Rapidus expects to start producing 2-nanometre chips in 2027.",
    "A submarine cable through the Arctic would link the EU and Japan.",
    "short",
]


def test_bundled_model_resolves_offline():
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert path is not None and (path / "tokenizer.json").is_file()
    assert model_id("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_model_path("/no/such/model") is None


def test_unknown_backend_is_refused(tmp_path: Path):
    with pytest.raises(QAError, match="unknown embed backend"):
        load_embedder(Settings(embed_backend="quantum", index_dir=tmp_path))


@pytest.mark.model
def test_onnx_backends_match_torch(tmp_path: Path):
    reference = Settings(index_dir=tmp_path, embed_backend="torch")
    torch_vecs = load_embedder(reference).embed(TEXTS)
    assert torch_vecs.shape == (4, 384)
    assert np.allclose(np.linalg.norm(torch_vecs, axis=1), 1.0, atol=1e-4)
    fp32 = load_embedder(Settings(index_dir=tmp_path, embed_backend="onnx")).embed(TEXTS)
    int8 = load_embedder(Settings(index_dir=tmp_path, embed_backend="onnx-int8")).embed(TEXTS)
    assert (fp32 * torch_vecs).sum(axis=1).min() > 0.999
    assert (int8 * torch_vecs).sum(axis=1).min() > 0.98
    # The exported graphs are cached beside the index and reused.
    cached = list((tmp_path / "encoders").rglob("*.onnx"))
    assert {p.name for p in cached} == {"model.onnx", "model-int8.onnx"}
    again = load_embedder(Settings(index_dir=tmp_path, embed_backend="onnx-int8")).embed(TEXTS)
    assert np.allclose(again, int8, atol=1e-6)
    # Ranking agrees: each text is closest to itself under both backends.
    assert (int8 @ torch_vecs.T).argmax(axis=1).tolist() == [0, 1, 2, 3]
