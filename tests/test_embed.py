"""The encoders: the torch-free ONNX encoder against reference vectors and against torch, and
the encoder folder a version keeps (hash, copy, tampering)."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.errors import IndexCorruptError, QAError
from qa.index import embed, encoder_files
from qa.index.build import build_index
from qa.index.embed import load_embedder, model_id, onnx_cache_dir, resolve_model_path
from qa.index.index_dir import IndexDir
from qa.index.onnx_encoder import OnnxEmbedder
from qa.index.store import MANIFEST, IndexVersion
from qa.search.engine import Engine

from .conftest import FakeEmbedder, seed_encoder

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json")
                       .read_text(encoding="utf-8"))
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


def test_a_model_the_graph_builder_cannot_express_is_refused(tmp_path: Path):
    from qa.index.bert_onnx import build_graph

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(QAError, match="QA_EMBED_BACKEND=torch"):
        build_graph(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(QAError, match="no .safetensors weights"):
        build_graph(tmp_path)


def _folder(root: Path, model: bytes) -> Path:
    root.mkdir(parents=True)
    (root / encoder_files.CONFIG_FILE).write_text("{}")
    (root / encoder_files.MODEL_FILE).write_bytes(model)
    (root / encoder_files.TOKENIZER_FILE).write_text("{}")
    return root


def test_encoder_hash_covers_every_file_and_install_keeps_it(tmp_path: Path):
    one = _folder(tmp_path / "one", b"graph")
    contents, digest = encoder_files.read_folder(one)
    assert digest == encoder_files.folder_hash(one) == encoder_files.digest(contents)
    # Moving a byte from one file to the next changes the hash: names and lengths count.
    two = _folder(tmp_path / "two", b"graph")
    (two / encoder_files.TOKENIZER_FILE).write_text("{} ")
    assert encoder_files.folder_hash(two) != digest
    copy = tmp_path / "version" / encoder_files.ENCODER_DIR
    assert encoder_files.install(one, copy) == digest
    assert (copy / encoder_files.MODEL_FILE).read_bytes() == b"graph"
    with pytest.raises(IndexCorruptError, match="does not match the index manifest"):
        encoder_files.read_folder(two, expected=digest)


def test_version_without_encoder_record_forces_a_full_build(settings: Settings):
    build_index(settings, FakeEmbedder)
    index = IndexDir(settings.index_dir)
    manifest_file = index.versions / index.current_name() / MANIFEST
    manifest = json.loads(manifest_file.read_text())
    assert manifest["model"]["encoder"] is None  # the fake embedder keeps no files
    assert build_index(settings, FakeEmbedder).full is False
    # A version from before versions kept their encoder: its vectors cannot be matched.
    manifest_file = index.versions / index.current_name() / MANIFEST
    manifest = json.loads(manifest_file.read_text())
    del manifest["model"]["encoder"]
    manifest_file.write_text(json.dumps(manifest))
    report = build_index(settings, FakeEmbedder)
    assert report.full and "no record of its encoder" in (report.full_reason or "")


@pytest.mark.model
@pytest.mark.parametrize("backend,floor", [("onnx", 0.999), ("onnx-int8", 0.98)])
def test_onnx_encoder_matches_stored_reference_vectors(
        bundled_encoders: dict[str, Path], backend: str, floor: float):
    """Against vectors sentence-transformers made (bench/reference_vectors.py): no torch needed."""
    reference = np.array(REFERENCE["vectors"], dtype=np.float32)
    vectors = OnnxEmbedder(bundled_encoders[backend]).embed(REFERENCE["sentences"])
    assert vectors.shape == reference.shape == (5, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= floor, cosine
    assert ((vectors @ reference.T).argmax(axis=1) == np.arange(5)).all()


@pytest.mark.model
def test_onnx_encoders_match_torch(bundled_encoders: dict[str, Path]):
    """Against sentence-transformers run now; skipped without the `torch` extra."""
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("the torch extra (sentence-transformers) is not installed")
    torch_vecs = embed.SentenceTransformerEmbedder("all-MiniLM-L6-v2").embed(TEXTS)
    fp32 = OnnxEmbedder(bundled_encoders["onnx"]).embed(TEXTS)
    int8 = OnnxEmbedder(bundled_encoders["onnx-int8"]).embed(TEXTS)
    assert (fp32 * torch_vecs).sum(axis=1).min() >= 0.999
    assert (int8 * torch_vecs).sum(axis=1).min() >= 0.98
    assert (int8 @ torch_vecs.T).argmax(axis=1).tolist() == [0, 1, 2, 3]


@pytest.mark.model
def test_a_copied_version_answers_with_its_own_encoder(
        settings: Settings, bundled_encoders: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    embedder = load_embedder(seed_encoder(settings, bundled_encoders))
    assert isinstance(embedder, OnnxEmbedder) and embedder.encoder_dir == onnx_cache_dir(settings)
    build_index(settings, lambda: embedder)
    index = IndexDir(settings.index_dir)
    version = index.versions / str(index.current_name())
    kept = version / encoder_files.ENCODER_DIR
    record = json.loads((version / MANIFEST).read_text())["model"]["encoder"]
    assert record["sha256"] == encoder_files.folder_hash(kept) == embedder.encoder_hash
    # A rebuild with nothing new to embed still keeps the encoder, taken from the last version.
    again = build_index(settings, lambda: pytest.fail("no embedder needed"))
    assert again.embedded_chunks == 0
    newer = index.versions / str(index.current_name())
    assert encoder_files.folder_hash(newer / encoder_files.ENCODER_DIR) == record["sha256"]

    # A damaged encoder file (replaced, as a copy gone wrong would) stops that version from
    # loading, and the next build, full, replaces it from the intact export.
    damaged = index.versions / str(index.current_name()) / "encoder" / "tokenizer.json"
    replacement = damaged.with_name("tokenizer.tmp")
    replacement.write_text("{}")
    replacement.replace(damaged)
    with pytest.raises(IndexCorruptError, match="does not match the index manifest"):
        index.open_current()
    report = build_index(settings, lambda: load_embedder(settings))
    assert report.full and report.embedded_chunks == report.chunks
    repaired = index.open_current()
    assert encoder_files.entry(repaired.manifest)["sha256"] == record["sha256"]  # deterministic
    repaired.close()
    newer = index.versions / str(index.current_name())

    # Another machine: only the version folder, and no model weights to write an encoder from.
    replica = settings.model_copy(update={"index_dir": tmp_path / "replica"})
    shutil.copytree(newer, replica.index_dir / "versions" / newer.name)
    (replica.index_dir / "CURRENT").write_text(newer.name + "\n")
    monkeypatch.setattr(embed, "resolve_model_path", lambda model: None)
    engine = Engine(replica)
    answer = engine.ask("Where do penguins live?")
    assert not (replica.index_dir / "encoders").exists()
    assert any("penguins" in c.text for c in answer.citations)
    assert np.array_equal(engine.embedder.embed(TEXTS), embedder.embed(TEXTS))

    # A damaged encoder is refused when the version loads, and by the embedder loader.
    model_file = replica.index_dir / "versions" / newer.name / "encoder" / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="does not match the index manifest"):
        IndexVersion(model_file.parent.parent)
    with pytest.raises(QAError, match="does not match the index manifest.*needs a local model"):
        load_embedder(replica)
