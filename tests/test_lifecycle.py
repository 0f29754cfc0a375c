"""Index lifecycle: incremental rebuilds, atomic swaps under load, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import BuildLockedError
from qa.index.build import build_index
from qa.index.index_dir import IndexDir
from qa.index.rebuild import BuildManager
from qa.search.engine import Engine

from .conftest import REPO, FakeEmbedder

TOPICS = ["glaciers", "volcanoes", "deserts", "rivers", "forests", "coral", "tundra", "caves",
          "islands", "canyons", "lagoons", "steppes", "fjords", "deltas", "dunes", "marshes",
          "plateaus", "reefs", "geysers", "savannas"]


@pytest.fixture
def many(tmp_path: Path) -> Settings:
    corpus = tmp_path / "many"
    corpus.mkdir()
    for i, topic in enumerate(TOPICS):
        body = " ".join(f"Fact {j} about {topic}: {topic} number {j} is described here."
                        for j in range(12))
        (corpus / f"doc{i:02d}.txt").write_text(f"About {topic}\n\n{body}\n")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", min_confidence=0.0)
    build_index(s, FakeEmbedder)
    return s


def test_edit_one_document_reembeds_only_it(many: Settings):
    version = IndexDir(many.index_dir).open_current()
    doc05 = next(d for d in version.documents() if d["path"] == "doc05.txt")
    path = many.corpus_dir / "doc05.txt"
    path.write_text(
        "About coral\n\nThe coral reef near Okinawa turned white in the summer of 2024.\n")
    emb = FakeEmbedder()
    report = build_index(many, lambda: emb)
    assert report.changed == ["doc05.txt"] and len(report.unchanged) == len(TOPICS) - 1
    new_version = IndexDir(many.index_dir).open_current()
    new_doc05 = next(d for d in new_version.documents() if d["path"] == "doc05.txt")
    assert emb.texts_embedded == report.embedded_chunks == new_doc05["chunks"]
    assert doc05["chunks"] > new_doc05["chunks"]
    answer = Engine(many, FakeEmbedder).ask("Which coral reef near Okinawa turned white?")
    assert "Okinawa" in answer.citations[0].text


def test_deleted_document_is_never_cited(many: Settings):
    (many.corpus_dir / "doc01.txt").unlink()
    report = build_index(many, FakeEmbedder)
    assert report.removed == ["doc01.txt"] and report.embedded_chunks == 0
    engine = Engine(many, FakeEmbedder)
    for q in ["volcanoes", "Fact 3 about volcanoes", "What is described about volcanoes?"]:
        answer = engine.ask(q, k=20)
        assert all(c.path != "doc01.txt" for c in answer.citations)


def test_queries_during_three_rebuilds_never_fail(many: Settings):
    engine = Engine(many, FakeEmbedder)
    published = {engine.version.name}
    errors: list[BaseException] = []
    answers = []
    stop = threading.Event()

    def ask_forever() -> None:
        i = 0
        while not stop.is_set():
            try:
                engine.reload_if_changed()
                a = engine.ask(f"Tell me about {TOPICS[i % len(TOPICS)]}")
                answers.append(a)
            except BaseException as exc:  # every failure counts
                errors.append(exc)
            i += 1

    def on_success(report) -> None:
        published.add(report.version)
        engine.reload_if_changed()

    manager = BuildManager(many, FakeEmbedder, on_success=on_success)
    threads = [threading.Thread(target=ask_forever) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for round_ in range(3):
            (many.corpus_dir / f"doc{round_:02d}.txt").write_text(
                f"Round {round_}\n\nThis document was rewritten in round {round_}.\n")
            manager.start()
            manager.join(60)
            assert manager.status().state == "succeeded", manager.status().error
        deadline = time.time() + 30
        while len(answers) < 30 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert len(answers) >= 30
    assert len(published) == 4
    for a in answers:
        assert a.index_version in published
        # Every citation of an answer comes from the version that answered it.
        version_docs = {}
        for c in a.citations:
            folder = IndexDir(many.index_dir).versions / a.index_version
            if folder.exists():
                key = (a.index_version, c.document_id)
                if key not in version_docs:
                    from qa.index.store import IndexVersion

                    v = IndexVersion(folder)
                    version_docs[key] = v.document(c.document_id).text
                    v.close()
                assert version_docs[key][c.start:c.end] == c.text


def test_manager_refuses_second_build_and_reports_failure(many: Settings):
    class Slow(FakeEmbedder):
        def embed(self, texts, progress=False):
            time.sleep(0.3)
            return super().embed(texts, progress)

    (many.corpus_dir / "new.txt").write_text("A new document about comets and meteors.")
    manager = BuildManager(many, Slow)
    manager.start(full=True)
    with pytest.raises(BuildLockedError):
        manager.start()
    with pytest.raises(BuildLockedError):
        build_index(many, FakeEmbedder)
    manager.join(60)
    status = manager.status()
    assert status.state == "succeeded" and status.last_report["documents"] == len(TOPICS) + 1
    assert status.files_done == status.files_total == len(TOPICS) + 1

    class Broken(FakeEmbedder):
        def embed(self, texts, progress=False):
            raise RuntimeError("encoder fell over")

    before = IndexDir(many.index_dir).current_name()
    failing = BuildManager(many, Broken)
    failing.start(full=True)
    failing.join(60)
    assert failing.status().state == "failed" and "encoder fell over" in failing.status().error
    assert IndexDir(many.index_dir).current_name() == before


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from qa.index.build import build_index
    from qa.config import Settings
    from tests.conftest import FakeEmbedder

    class Slow(FakeEmbedder):
        def embed(self, texts, progress=False):
            print("embedding", flush=True)
            time.sleep(30)
            return super().embed(texts, progress)

    s = Settings(corpus_dir=Path({corpus!r}), index_dir=Path({index!r}))
    build_index(s, Slow, full=True)
""")


def test_build_killed_midway_leaves_index_serving(many: Settings, tmp_path: Path):
    before = IndexDir(many.index_dir).current_name()
    script = tmp_path / "slow_build.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO), corpus=str(many.corpus_dir),
                                         index=str(many.index_dir)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "embedding"  # mid-build, temp folder written
        assert list(IndexDir(many.index_dir).versions.glob(".tmp-*"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert IndexDir(many.index_dir).current_name() == before
    answer = Engine(many, FakeEmbedder).ask("Tell me about glaciers")
    assert "glaciers" in answer.citations[0].text
    report = build_index(many, FakeEmbedder, full=True)  # the lock died with the process
    assert report.documents == len(TOPICS)
    assert not list(IndexDir(many.index_dir).versions.glob(".tmp-*"))


def test_rebuild_status_names_no_server_path(settings: Settings):
    """The status is readable without a token: an unexpected failure's text names no path."""
    from qa.index.rebuild import redact

    class Missing(FakeEmbedder):
        def embed(self, texts, progress=False):
            raise FileNotFoundError(2, "No such file", str(settings.index_dir / "x.npy"))

    manager = BuildManager(settings, Missing)
    manager.start(full=True)
    manager.join(60)
    status = manager.status()
    assert status.state == "failed" and "FileNotFoundError" in status.error
    assert str(settings.index_dir) not in status.error and "<path>" in status.error
    assert redact("no path here, only 3/4 done") == "no path here, only 3/4 done"
