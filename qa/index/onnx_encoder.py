"""The onnxruntime encoder: sentence embeddings from an encoder folder, with no torch anywhere.

`export_encoder` makes an encoder folder (see `qa.index.encoder_files`) from a local
sentence-transformers model: the graph is written from the safetensors weights by
`qa.index.bert_onnx`, optionally quantised to int8 per channel, and saved beside the model's
tokenizer. `OnnxEmbedder` loads such a folder, checking its hash first when one is expected.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.index import encoder_files as ef

log = logging.getLogger(__name__)

# Bump when the graph a model is turned into changes: cached exports then are made again.
BUILDER = 1


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


def _source(model_dir: Path) -> dict[str, int]:
    """What the export was made from, cheaply: weight file names and sizes."""
    return {p.name: p.stat().st_size for p in sorted(model_dir.glob("*.safetensors"))}


def _quantize(fp32: Path, out: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales keep cosine to fp32 near 0.99; per-tensor ones lose too much.
    # The quantiser logs advice meant for image models on the root logger; hush it meanwhile.
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        logging.disable(logging.NOTSET)


def recorded_hash(dest: Path) -> str | None:
    """The hash written beside an exported encoder folder, if any."""
    try:
        return dest.with_name(dest.name + ".sha256").read_text().strip() or None
    except OSError:
        return None


def export_encoder(model_dir: Path, model_id: str, dest: Path, quantize: bool) -> Path:
    """Make the encoder folder `dest` for the model in `model_dir`, unless an intact, current
    one is there already (its files still have the hash recorded beside it); return `dest`."""
    expected = {"model_id": model_id, "builder": BUILDER, "quantized": quantize,
                "source": _source(model_dir)}
    cfg = ef.config_of(dest)
    if cfg is not None and all(cfg.get(k) == v for k, v in expected.items()):
        recorded = recorded_hash(dest)
        if recorded is not None and ef.folder_hash(dest) == recorded:
            return dest
    if dest.exists():
        log.info("encoder %s is stale or incomplete; exporting again", dest)
        shutil.rmtree(dest, ignore_errors=True)
    import onnx

    from qa.index.bert_onnx import OUTPUT, build_graph

    if not (model_dir / "tokenizer.json").is_file():
        raise QAError(f"model folder {model_dir} has no tokenizer.json")
    log.info("writing the ONNX encoder of %s (one time)", model_dir)
    pooling = _pooling(model_dir)
    graph = build_graph(model_dir, pooling)
    dim = int(graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".export-") as work:
        model_file = Path(work) / "fp32.onnx"
        onnx.save(graph, str(model_file))
        del graph
        if quantize:
            _quantize(model_file, Path(work) / "int8.onnx")
            model_file = Path(work) / "int8.onnx"
        config = {**expected, "pooling": pooling, "max_tokens": _max_length(model_dir),
                  "dim": dim, "output": OUTPUT}
        digest = ef.write_folder(dest, {
            ef.CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True).encode(),
            ef.MODEL_FILE: model_file.read_bytes(),
            ef.TOKENIZER_FILE: (model_dir / "tokenizer.json").read_bytes(),
        })
    # Versions hard-link these files: the hash lets a later load notice damage done in place.
    dest.with_name(dest.name + ".sha256").write_text(digest + "\n")
    return dest


class OnnxEmbedder:
    """Pooled, normalised sentence embeddings from an encoder folder on onnxruntime."""

    def __init__(self, encoder_dir: Path, batch_size: int = 32, threads: int | None = None,
                 expected_hash: str | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        contents, self.encoder_hash = ef.read_folder(encoder_dir, expected_hash)
        self.encoder_dir = encoder_dir
        try:
            config: dict[str, Any] = json.loads(contents[ef.CONFIG_FILE])
            self.model_id = str(config["model_id"])
            self.dim = int(config["dim"])
            self.max_tokens = int(config["max_tokens"])
            self._output = str(config["output"])
        except (ValueError, KeyError, TypeError) as exc:
            raise QAError(f"unreadable {encoder_dir / ef.CONFIG_FILE}: {exc}") from exc
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(contents.pop(ef.MODEL_FILE), opts,
                                                 providers=["CPUExecutionProvider"])
            self._tok = Tokenizer.from_str(contents[ef.TOKENIZER_FILE].decode("utf-8"))
        except Exception as exc:  # onnxruntime and tokenizers raise their own error types
            raise QAError(f"cannot load the encoder in {encoder_dir}: {exc}") from exc
        self._tok.enable_truncation(self.max_tokens)
        self._tok.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tok.encode_batch(list(texts))
        # Batches of similar length waste little work on padding.
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
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
            out[idx] = self._session.run([self._output], feed)[0]
        return out
