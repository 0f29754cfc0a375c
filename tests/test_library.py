"""The public library surface: build an index, open it, ask it, update it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import qa
from qa import Index, IndexMissingError, NotFoundError
from qa.config import Settings
from tests.conftest import FakeEmbedder


def test_build_then_ask_answers_with_a_citation_into_the_document(settings: Settings):
    with Index.build(settings=settings, embedder=FakeEmbedder) as index:
        assert index.last_build is not None and index.last_build.documents >= 5
        answer = index.ask("Which company brought tea to London?")
        assert not answer.abstained
        cited = answer.citations[0]
        text = index.document(cited.document_id).text
        assert "East India Company" in text[cited.start:cited.end]
        assert answer.index_version == index.version


def test_open_finds_a_built_index_and_refuses_a_missing_one(settings: Settings, tmp_path: Path):
    Index.build(settings=settings, embedder=FakeEmbedder).close()
    with Index.open(settings.index_dir, settings=settings, embedder=FakeEmbedder) as index:
        paths = {d["path"] for d in index.documents()}
        assert {"volcanoes.txt", "sub/bees.md", "page.html"} <= paths
        assert index.manifest["counts"]["documents"] == len(paths)
    with pytest.raises(IndexMissingError):
        Index.open(tmp_path / "nowhere", settings=settings, embedder=FakeEmbedder)


def test_unknown_document_id_is_not_found(settings: Settings):
    with Index.build(settings=settings, embedder=FakeEmbedder) as index, \
            pytest.raises(NotFoundError):
        index.document("0" * 16)


def test_history_lets_a_follow_up_resolve(settings: Settings):
    settings = settings.model_copy(update={"min_confidence": 0.5})  # the default threshold
    with Index.build(settings=settings, embedder=FakeEmbedder) as index:
        first = index.ask("Where do penguins live?")
        follow = index.ask("And where?", history=[
            ("user", "Where do penguins live?"), ("assistant", first.text)])
        assert follow.query != follow.question  # searched with the earlier turn's words
        assert "penguins" in follow.query.lower()
        assert follow.citations and follow.citations[0].path == "report.pdf"


def test_update_indexes_a_new_file_and_serves_it(settings: Settings):
    with Index.build(settings=settings, embedder=FakeEmbedder) as index:
        before = index.version
        (settings.corpus_dir / "owls.txt").write_text(
            "Snowy owls hunt lemmings across the Arctic tundra in daylight.\n")
        report = index.update()
        assert report.added == ["owls.txt"] and report.embedded_chunks >= 1
        assert index.version == report.version != before
        answer = index.ask("What do snowy owls hunt?")
        assert any(c.path == "owls.txt" for c in answer.citations)


def test_importing_qa_loads_no_engine():
    code = "import sys, qa; print(sorted(m for m in sys.modules if m.startswith('qa.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert qa.Index is Index
    with pytest.raises(AttributeError):
        _ = qa.NoSuchThing  # type: ignore[attr-defined]


def readme_snippet() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Library", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.model
def test_readme_snippet_runs_on_the_bundled_corpus_with_the_real_model(tmp_path: Path):
    corpus = Path(__file__).resolve().parent.parent / "corpus"
    (tmp_path / "corpus").mkdir()
    for f in corpus.iterdir():
        (tmp_path / "corpus" / f.name).write_bytes(f.read_bytes())
    run = subprocess.run([sys.executable, "-c", readme_snippet()], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert "2022" in first, run.stdout  # the launch, as a short answer or its sentence
    assert "[1] eu-japan-digital-partnership.txt chars " in run.stdout
    assert (tmp_path / ".qa-index").is_dir()
