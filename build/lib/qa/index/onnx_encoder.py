"""An onnxruntime encoder for sentence-transformers models: no torch at query time.

The ONNX graph is exported once from the local weights (this step needs torch), optionally
quantised to int8 per channel, and cached in a folder of its own; later loads need only
onnxruntime and tokenizers.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.errors import QAError

log = logging.getLogger(__name__)

FP32 = "model.onnx"
INT8 = "model-int8.onnx"


def _pooling(model_dir: Path) -> str:
    """The pooling mode the model was trained with: 'mean' or 'cls'."""
    cfg_file = model_dir / "1_Pooling" / "config.json"
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
    return "mean"


def _max_length(model_dir: Path) -> int:
    cfg_file = model_dir / "sentence_bert_config.json"
    if cfg_file.is_file():
        return int(json.loads(cfg_file.read_text()).get("max_seq_length", 256))
    return 256


def _fuse(onnx_file: Path, model_dir: Path) -> None:
    """Fuse attention, layer norm and GELU nodes in place; keep the plain graph if that fails."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = json.loads((model_dir / "config.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimize_model(str(onnx_file), model_type="bert",
                                   num_heads=int(cfg.get("num_attention_heads", 0)),
                                   hidden_size=int(cfg.get("hidden_size", 0)))
        fused.save_model_to_file(str(onnx_file))
    except Exception as exc:  # the optimiser is best effort; the unfused graph is correct
        log.info("ONNX graph fusion skipped: %s", exc)


def export_onnx(model_dir: Path, out_dir: Path, quantize: bool) -> Path:
    """Export the transformer of a local sentence-transformers model to ONNX (needs torch)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / FP32
    if not fp32.is_file():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel

        log.info("exporting %s to ONNX (one time)", model_dir)
        model = AutoModel.from_pretrained(str(model_dir))
        model.eval()

        class Encoder(torch.nn.Module):
            """Keyword arguments in, last hidden state out: a stable signature to trace."""

            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        ids = torch.ones((2, 16), dtype=torch.long)
        tmp = out_dir / f".{FP32}.{os.getpid()}.tmp"
        # The exporter warns about tracing details that do not affect this graph.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder(), (ids, ids, torch.zeros_like(ids)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in (
                    "input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
                opset_version=17, dynamo=False,
            )
        _fuse(tmp, model_dir)
        os.replace(tmp, fp32)
    if not quantize:
        return fp32
    int8 = out_dir / INT8
    if not int8.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = out_dir / f".{INT8}.{os.getpid()}.tmp"
        # Per-channel scales keep cosine to fp32 near 0.99; per-tensor ones lose too much.
        from onnx import TensorProto

        # Fused nodes defeat shape inference; their outputs are float32.
        # The quantiser logs advice meant for image models on the root logger; hush it once.
        logging.disable(logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8,
                                 per_channel=True,
                                 extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            logging.disable(logging.NOTSET)
        os.replace(tmp, int8)
    return int8


class OnnxEmbedder:
    """Mean-pooled, normalised sentence embeddings from an ONNX graph on onnxruntime."""

    def __init__(self, model_dir: Path, model_id: str, cache_dir: Path, quantize: bool = True,
                 batch_size: int = 32, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_file = cache_dir / (INT8 if quantize else FP32)
        if not onnx_file.is_file():
            onnx_file = export_onnx(model_dir, cache_dir, quantize)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_file), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cache file: export again next time
            onnx_file.unlink(missing_ok=True)
            raise QAError(f"cannot load ONNX encoder {onnx_file}: {exc}; try again") from exc
        self.max_tokens = _max_length(model_dir)
        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(self.max_tokens)
        self._tok.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._pooling = _pooling(model_dir)
        self.model_id = model_id
        self.batch_size = batch_size
        self.dim = int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        encodings = self._tok.encode_batch(list(texts))
        # Batches of similar length waste little work on padding.
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out: np.ndarray | None = None
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encodings[i]
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            feed = {k: v for k, v in feed.items() if k in self._inputs}
            hidden = self._session.run(None, feed)[0]
            if self._pooling == "cls":
                pooled = hidden[:, 0]
            else:
                m = mask[:, :, None].astype(np.float32)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
        assert out is not None
        return out
