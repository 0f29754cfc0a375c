"""A BERT sentence encoder written straight into an ONNX graph from its safetensors weights.

No torch: the weights are read with `safetensors.numpy` and the graph is assembled node by node
with the `onnx` helper API. The graph takes `input_ids`, `attention_mask` and `token_type_ids`
(int64, batch x sequence) and returns `sentence_embedding` (float32, batch x hidden): the
encoder's last hidden state pooled as the model was trained (mean over real tokens, or the
first token) and L2-normalised, so a caller needs only a tokenizer and onnxruntime.

Covered: BERT-family encoders with absolute positions and an erf GELU or ReLU feed-forward
(all-MiniLM-L6-v2, bert-base, and models fine-tuned from them). Anything else is refused with
a message that names the torch backend.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import QAError

# ONNX opset 17 has LayerNormalization; onnxruntime 1.17 and later run it.
OPSET = 17
OUTPUT = "sentence_embedding"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Added to the attention scores of padding positions; softmax turns it into an exact zero.
MASK_VALUE = -1e4


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json, checked for what this builder can express."""
    try:
        cfg: dict[str, Any] = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise QAError(f"cannot read {model_dir / 'config.json'}: {exc}") from exc
    kind = cfg.get("model_type")
    act = cfg.get("hidden_act", "gelu")
    position = cfg.get("position_embedding_type", "absolute")
    if kind != "bert" or act not in {"gelu", "relu"} or position != "absolute":
        raise QAError(
            f"the ONNX backend builds BERT encoders with absolute positions and a gelu or relu "
            f"feed-forward; {model_dir.name} is {kind!r} with {act!r} and {position!r} "
            "positions. Use QA_EMBED_BACKEND=torch (pip install 'qa[torch]') for it")
    return cfg


def read_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """The encoder's tensors by their BertModel names (any 'bert.' prefix dropped)."""
    from safetensors.numpy import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise QAError(f"no .safetensors weights in {model_dir}; the ONNX backend reads only "
                      "safetensors (use QA_EMBED_BACKEND=torch for other formats)")
    weights: dict[str, np.ndarray] = {}
    for f in files:
        try:
            for name, tensor in load_file(str(f)).items():
                weights[name.removeprefix("bert.")] = tensor
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise QAError(f"cannot read weights {f}: {exc}") from exc
    return weights


class _Graph:
    """Collects nodes and initialisers under unique names."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        """A float32 weight by its checkpoint name; Linear weights transposed for MatMul."""
        if key not in self.weights:
            raise QAError(f"the model's weights have no tensor {key!r}")
        value = self.weights[key].astype(np.float32)
        return self.const(key, value.T if transpose else value)

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        names = [f"{op_type.lower()}_{self._n}" + (f"_{i}" if i else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=f"{op_type}_{self._n}", **attrs))
        return names[0]

    def linear(self, x: str, prefix: str) -> str:
        return self.op("Add", self.op("MatMul", x, self.weight(f"{prefix}.weight", True)),
                       self.weight(f"{prefix}.bias"))

    def split_heads(self, x: str, prefix: str, shape: str, perm: list[int]) -> str:
        """A projection cut into heads: batch, head, then sequence and head width in `perm`."""
        return self.op("Transpose", self.op("Reshape", self.linear(x, prefix), shape), perm=perm)

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        return self.op("LayerNormalization", x, self.weight(f"{prefix}.weight"),
                       self.weight(f"{prefix}.bias"), axis=-1, epsilon=eps)


def _gelu(g: _Graph, x: str) -> str:
    # The exact (erf) GELU BERT uses: x * 0.5 * (1 + erf(x / sqrt 2)).
    erf = g.op("Erf", g.op("Div", x, "sqrt2_f"))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, "one_f")), "half_f")


def build_graph(model_dir: Path, pooling: str = "mean") -> Any:
    """The ONNX ModelProto of the encoder in `model_dir`, pooled and normalised."""
    from onnx import TensorProto, helper

    cfg = read_config(model_dir)
    weights = read_weights(model_dir)
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    layers = int(cfg["num_hidden_layers"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    if hidden % heads:
        raise QAError(f"hidden size {hidden} is not a multiple of {heads} heads")
    head = hidden // heads
    g = _Graph(weights)
    ints = {name: g.const(name, np.array(v, np.int64)) for name, v in {
        "axis_0": [0], "axis_1": [1], "axes_1_2": [1, 2], "axes_2": [2],
        "split_heads": [0, 0, heads, head], "merge_heads": [0, 0, hidden]}.items()}

    # Embeddings: word + position + token type, then LayerNorm.
    # The first `sequence` rows of the position table: positions 0, 1, 2, ...
    seq_len = g.op("Shape", "input_ids", start=1, end=2)
    positions = g.op("Slice", g.weight("embeddings.position_embeddings.weight"),
                     ints["axis_0"], seq_len, ints["axis_0"])
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    x = g.op("Add", g.op("Add", words, positions), types)
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Padding positions get MASK_VALUE added to every attention score that looks at them.
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    floats = {name: g.const(name, np.array(v, np.float32)) for name, v in {
        "one_f": 1.0, "half_f": 0.5, "sqrt2_f": math.sqrt(2.0)}.items()}
    padding = g.op("Sub", floats["one_f"], g.op("Unsqueeze", mask, ints["axes_1_2"]))
    score_bias = g.op("Mul", padding, g.const("mask_value", np.array(MASK_VALUE, np.float32)))
    scale = g.const("attention_scale", np.array(1.0 / math.sqrt(head), np.float32))

    for n in range(layers):
        p = f"encoder.layer.{n}"
        q, k, v = (g.split_heads(x, f"{p}.attention.self.{name}", ints["split_heads"], perm)
                   for name, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]),
                                      ("value", [0, 2, 1, 3])))
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), score_bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]),
                       ints["merge_heads"])
        attended = g.linear(context, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", attended, x), f"{p}.attention.output.LayerNorm", eps)
        inner = g.linear(x, f"{p}.intermediate.dense")
        inner = _gelu(g, inner) if cfg.get("hidden_act", "gelu") == "gelu" else g.op("Relu", inner)
        out = g.linear(inner, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", out, x), f"{p}.output.LayerNorm", eps)

    if pooling == "cls":
        # The first token's state; a scalar index drops the sequence axis.
        pooled = g.op("Gather", x, g.const("zero", np.array(0, np.int64)), axis=1)
    elif pooling == "mean":
        weights3 = g.op("Unsqueeze", mask, ints["axes_2"])
        total = g.op("ReduceSum", g.op("Mul", x, weights3), ints["axis_1"], keepdims=0)
        count = g.op("Max", g.op("ReduceSum", mask, ints["axis_1"], keepdims=1),
                     g.const("min_count", np.array(1e-9, np.float32)))
        pooled = g.op("Div", total, count)
    else:
        raise QAError(f"unknown pooling {pooling!r}; this builder knows 'mean' and 'cls'")
    norm = g.op("Max", g.op("ReduceL2", pooled, axes=[1], keepdims=1),
                g.const("min_norm", np.array(1e-12, np.float32)))
    g.nodes.append(helper.make_node("Div", [pooled, norm], [OUTPUT], name="normalise"))

    batch_seq = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes, "sentence_encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT64, batch_seq) for name in INPUTS],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="qa")
    model.ir_version = 8  # the newest IR that onnxruntime 1.17 reads
    return model
