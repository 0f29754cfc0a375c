import json
import shutil
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import BuildLockedError, CorpusError, IndexCorruptError, IndexIncompatibleError
from qa.index.build import build_index
from qa.index.index_dir import IndexDir
from qa.search.engine import Engine

from .conftest import FakeEmbedder


def test_build_reports_files_and_skips(settings: Settings, fake_embedder: FakeEmbedder):
    report = build_index(settings, lambda: fake_embedder)
    skipped = {s.path: s.reason for s in report.skipped}
    assert set(skipped) == {"broken.pdf", "binary.txt"}
    assert "corrupt PDF" in skipped["broken.pdf"] and "binary" in skipped["binary.txt"]
    assert report.documents == 6 and report.files == 8
    assert report.chunks == report.embedded_chunks > 0
    version = IndexDir(settings.index_dir).open_current()
    manifest = version.manifest
    # The fake embedder has no encoder files to keep (see test_embed for the real one).
    assert manifest["model"] == {"id": FakeEmbedder.model_id, "dim": 64,
                                 "backend": settings.embed_backend, "encoder": None}
    assert manifest["chunker"]["budget_tokens"] == settings.chunk_tokens
    assert manifest["counts"] == {"documents": 6, "chunks": report.chunks, "skipped": 2}
    assert all(len(d["hash"]) == 64 for d in manifest["documents"].values())
    assert manifest["qa_version"] and manifest["built_at"]


def test_every_stored_chunk_is_a_slice_of_its_document(built: Settings):
    version = IndexDir(built.index_dir).open_current()
    for row in version.db.execute("SELECT id, doc_id FROM chunks"):
        chunk = version.chunks([row[0]])[0]
        doc = version.document(row[1])
        assert doc.text[chunk.start:chunk.end] == chunk.text


def test_failed_build_leaves_previous_index_serving(built: Settings, tiny_corpus: Path):
    before = IndexDir(built.index_dir).current_name()
    (tiny_corpus / "new.txt").write_text("A brand new document about comets.")

    class Exploding(FakeEmbedder):
        def embed(self, texts, progress=False):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        build_index(built, lambda: Exploding(), full=True)
    index = IndexDir(built.index_dir)
    assert index.current_name() == before
    assert not list(index.versions.glob(".tmp-*"))
    answer = Engine(built, FakeEmbedder).ask("Where do penguins live?")
    assert any("penguins" in c.text for c in answer.citations)


def test_stale_temp_folder_is_removed(built: Settings, fake_embedder: FakeEmbedder):
    stale = IndexDir(built.index_dir).versions / ".tmp-dead-build"
    stale.mkdir()
    (stale / "junk").write_text("x")
    build_index(built, lambda: fake_embedder)
    assert not stale.exists()


def test_second_build_is_refused_while_locked(built: Settings, fake_embedder: FakeEmbedder):
    from qa.index.build import build_lock

    with build_lock(built.index_dir):
        with pytest.raises(BuildLockedError, match="another build"):
            build_index(built, lambda: fake_embedder)


def test_incremental_build_reembeds_only_changes(built: Settings, tiny_corpus: Path):
    emb = FakeEmbedder()
    (tiny_corpus / "volcanoes.txt").write_text("Volcanoes\n\nHekla is in the south of Iceland.")
    (tiny_corpus / "sub" / "bees.md").unlink()
    report = build_index(built, lambda: emb)
    assert report.changed == ["volcanoes.txt"] and report.removed == ["sub/bees.md"]
    assert len(report.unchanged) == 4 and not report.full
    assert emb.texts_embedded == report.embedded_chunks == 1


def test_unchanged_corpus_does_not_load_the_model(built: Settings):
    def boom():
        raise AssertionError("model loaded for nothing")

    report = build_index(built, boom)
    assert report.embedded_chunks == 0 and len(report.unchanged) == 6


def test_changed_chunker_forces_full_build(built: Settings, fake_embedder: FakeEmbedder):
    changed = built.model_copy(update={"chunk_tokens": 64})
    with pytest.raises(IndexIncompatibleError, match="rebuild"):
        Engine(changed, FakeEmbedder)
    report = build_index(changed, lambda: fake_embedder)
    assert report.full and "settings changed" in (report.full_reason or "")


def test_corpus_without_readable_files(tmp_path: Path, fake_embedder: FakeEmbedder):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "bad.pdf").write_bytes(b"nope")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "i")
    with pytest.raises(CorpusError, match="no readable document"):
        build_index(s, lambda: fake_embedder)
    (corpus / "bad.pdf").unlink()
    with pytest.raises(CorpusError, match="no supported files"):
        build_index(s, lambda: fake_embedder)
    with pytest.raises(CorpusError, match="not found"):
        build_index(Settings(corpus_dir=tmp_path / "missing", index_dir=tmp_path / "i"),
                    lambda: fake_embedder)


@pytest.mark.parametrize("damage", ["faiss", "sqlite", "manifest", "pointer", "version"])
def test_damaged_index_gives_clear_error(built: Settings, damage: str):
    index = IndexDir(built.index_dir)
    folder = index.versions / index.current_name()
    if damage == "faiss":
        (folder / "vectors.faiss").write_bytes(b"garbage")
    elif damage == "sqlite":
        (folder / "chunks.sqlite").write_bytes(b"garbage" * 100)
    elif damage == "manifest":
        (folder / "manifest.json").write_text("{not json")
    elif damage == "pointer":
        (built.index_dir / "CURRENT").write_text("../../etc")
    else:
        shutil.rmtree(folder)
    with pytest.raises(IndexCorruptError):
        Engine(built, FakeEmbedder)


def test_build_repairs_a_damaged_index(built: Settings, fake_embedder: FakeEmbedder):
    index = IndexDir(built.index_dir)
    (index.versions / index.current_name() / "vectors.faiss").write_bytes(b"garbage")
    report = build_index(built, lambda: fake_embedder)
    assert report.full
    assert Engine(built, FakeEmbedder).version.n_chunks == report.chunks


def test_old_versions_are_pruned(built: Settings, tiny_corpus: Path, fake_embedder: FakeEmbedder):
    for i in range(4):
        (tiny_corpus / f"extra{i}.txt").write_text(f"Extra document number {i}.")
        build_index(built, lambda: fake_embedder)
    names = [p.name for p in IndexDir(built.index_dir).versions.iterdir()]
    assert len(names) == built.keep_versions
    manifest = json.loads((IndexDir(built.index_dir).versions / sorted(names)[-1]
                           / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 10
