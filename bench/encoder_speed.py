"""The torch-free ONNX encoder against the torch-exported one it replaced, side by side.

    python bench/encoder_speed.py [--rounds 5] [--repeat 8] [--work DIR]

1. Build time. The new encoder (graph written from the safetensors weights by
   qa.index.bert_onnx, then int8 per channel) is built in a fresh interpreter, which also
   reports whether torch was imported. With the `torch` extra installed, the old path is timed
   too, in its own interpreter: torch.onnx.export, onnxruntime's BERT fusion, the same
   quantisation.
2. Speed. Both int8 graphs embed the same chunks (the bundled corpus and the bench questions'
   documents, chunked as qa chunks them, repeated), batch 32, in interleaved rounds; the best
   round of each is reported with the ratio new / old.
3. Agreement. Cosine of each encoder's vectors to sentence-transformers on torch (the reference),
   and of new int8 to old int8.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.index.chunk import chunk_document, embedding_text
from qa.index.embed import load_counter, model_id, resolve_model_path
from qa.index.ingest import parse_file
from qa.index.onnx_encoder import OnnxEmbedder

REPO = Path(__file__).resolve().parent.parent

NEW_BUILD = """
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from qa.index.embed import model_id, resolve_model_path
from qa.index.onnx_encoder import export_encoder
export_encoder(resolve_model_path("all-MiniLM-L6-v2"), model_id("all-MiniLM-L6-v2"),
               Path(sys.argv[1]), quantize=True)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "torch_imported": "torch" in sys.modules}))
"""

# The export this project used before the graph was written by hand (needs the torch extra).
OLD_BUILD = """
import json, logging, sys, time, warnings
from pathlib import Path
t = time.perf_counter()
import torch
from onnx import TensorProto
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model
from transformers import AutoModel
from qa.index.embed import resolve_model_path
model_dir, out = resolve_model_path("all-MiniLM-L6-v2"), Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
model = AutoModel.from_pretrained(str(model_dir)).eval()
class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = model
    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
ids = torch.ones((2, 16), dtype=torch.long)
names = ["input_ids", "attention_mask", "token_type_ids"]
with torch.no_grad(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    axes = {n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]}
    torch.onnx.export(Encoder(), (ids, ids, torch.zeros_like(ids)), str(out / "fp32.onnx"),
                      input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    fused = optimize_model(str(out / "fp32.onnx"), model_type="bert", num_heads=12, hidden_size=384)
    fused.save_model_to_file(str(out / "fp32.onnx"))
logging.disable(logging.WARNING)
quantize_dynamic(str(out / "fp32.onnx"), str(out / "model-int8.onnx"), weight_type=QuantType.QInt8,
                 per_channel=True, extra_options={"DefaultTensorType": TensorProto.FLOAT})
print(json.dumps({"seconds": time.perf_counter() - t, "torch_imported": True}))
"""


def _run(script: str, out: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True,
                          text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class OldInt8:
    """The torch-exported graph: last hidden state out, pooled and normalised in numpy."""

    def __init__(self, onnx_file: Path, like: OnnxEmbedder):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_file), opts,
                                             providers=["CPUExecutionProvider"])
        self._tok = like._tok  # same tokenizer settings (truncation, no padding)

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._tok.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for s in range(0, len(order), 32):
            idx = order[s : s + 32]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def chunk_texts() -> list[str]:
    """What a build of the bundled corpus and the bench documents would embed."""
    settings = Settings()
    counter = load_counter(settings)
    files = [REPO / "corpus" / "eu-japan-digital-partnership.txt",
             *sorted((REPO / "bench" / "data").glob("*/docs/*"))]
    texts = []
    for f in files:
        doc = parse_file(f.name, f.read_bytes())
        texts += [embedding_text(c, doc.title, True)
                  for c in chunk_document(doc, counter, settings.chunk_tokens, 1)]
    return texts


def _cosine(a: np.ndarray, b: np.ndarray) -> str:
    c = (a * b).sum(axis=1)
    return f"min {c.min():.4f}  mean {c.mean():.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=8, help="copies of the chunk set per round")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-encoder-"))
    try:
        import sentence_transformers  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False

    new = _run(NEW_BUILD, work / "new")
    print(f"build new int8 (no torch)  {new['seconds']:6.1f} s   torch imported: "
          f"{bool(new['torch_imported'])}")
    if have_torch:
        old = _run(OLD_BUILD, work / "old")
        print(f"build old int8 (torch)     {old['seconds']:6.1f} s   new / old "
              f"{new['seconds'] / old['seconds']:.2f}")

    new_enc = OnnxEmbedder(work / "new")
    encoders: dict[str, OnnxEmbedder | OldInt8] = {"new int8": new_enc}
    if have_torch:
        encoders["old int8"] = OldInt8(work / "old" / "model-int8.onnx", new_enc)
    texts = chunk_texts()
    batch = texts * args.repeat
    for enc in encoders.values():
        enc.embed(batch[:64])  # warm up
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(args.rounds):
        for name, enc in encoders.items():  # interleaved: load on a shared machine hits both
            t = time.perf_counter()
            enc.embed(batch)
            best[name] = min(best[name], time.perf_counter() - t)
    print(f"{len(texts)} chunks x {args.repeat}, best of {args.rounds} interleaved rounds:")
    for name, seconds in best.items():
        print(f"  {name:<10} {len(batch) / seconds:7.1f} chunks/s")
    if have_torch:
        print(f"  new / old  {best['old int8'] / best['new int8']:7.2f} x the old throughput")

    vectors = {name: enc.embed(texts) for name, enc in encoders.items()}
    t = time.perf_counter()
    fp32_dir = _fp32(work)
    print(f"build new fp32 (graph only, in this process) {time.perf_counter() - t:.1f} s")
    vectors["new fp32"] = OnnxEmbedder(fp32_dir).embed(texts)
    if have_torch:
        from qa.index.embed import SentenceTransformerEmbedder

        reference = SentenceTransformerEmbedder(Settings().model).embed(texts)
        print(f"cosine to sentence-transformers (torch), {len(texts)} chunks:")
        for name, v in vectors.items():
            print(f"  {name:<10} {_cosine(v, reference)}")
        print(f"  new int8 vs old int8  {_cosine(vectors['new int8'], vectors['old int8'])}")
    else:
        print(f"new int8 vs new fp32  {_cosine(vectors['new int8'], vectors['new fp32'])}")


def _fp32(work: Path) -> Path:
    from qa.index.onnx_encoder import export_encoder

    model = resolve_model_path("all-MiniLM-L6-v2")
    assert model is not None
    return export_encoder(model, model_id("all-MiniLM-L6-v2"), work / "new-fp32", quantize=False)


if __name__ == "__main__":
    main()
