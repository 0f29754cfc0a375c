import threading
import time
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import BuildReport, build_index
from qa.index.watch import watch

from .conftest import FakeEmbedder


def test_watch_rebuilds_once_after_changes_settle(built: Settings, tiny_corpus: Path):
    reports: list[BuildReport | QAError] = []
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(built, FakeEmbedder, reports.append, stop),
                         kwargs={"interval": 0.1, "debounce": 0.4})
    t.start()
    try:
        time.sleep(0.3)
        for i in range(3):  # a burst of edits
            (tiny_corpus / f"burst{i}.txt").write_text(f"Burst file {i} about kites.")
            time.sleep(0.1)
        deadline = time.time() + 20
        while not reports and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)
    finally:
        stop.set()
        t.join(10)
    assert len(reports) == 1
    report = reports[0]
    assert isinstance(report, BuildReport)
    assert sorted(report.added) == ["burst0.txt", "burst1.txt", "burst2.txt"]


def test_watch_reports_a_failed_build_and_goes_on(tmp_path: Path, fake_embedder):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha.")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "i")
    build_index(s, lambda: fake_embedder)
    reports: list[BuildReport | QAError] = []
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(s, FakeEmbedder, reports.append, stop),
                         kwargs={"interval": 0.1, "debounce": 0.3})
    t.start()
    try:
        time.sleep(0.2)
        (corpus / "a.txt").unlink()  # nothing readable left: the build must fail cleanly
        deadline = time.time() + 20
        while not reports and time.time() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(10)
    assert reports and isinstance(reports[0], QAError)
