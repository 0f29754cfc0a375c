import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import BuildReport, build_index
from qa.index.watch import watch

from .conftest import FakeEmbedder

Reports = list[BuildReport | QAError]


@contextmanager
def watching(settings: Settings, debounce: float) -> Iterator[Reports]:
    """`watch` in a thread; stopped (and checked to stop promptly) on exit."""
    reports: Reports = []
    stop = threading.Event()
    t = threading.Thread(target=watch, args=(settings, FakeEmbedder, reports.append, stop),
                         kwargs={"debounce": debounce})
    t.start()
    time.sleep(0.5)  # the watch is in place
    try:
        yield reports
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive(), "watch did not stop"


def wait_for_reports(reports: Reports, n: int = 1, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while len(reports) < n and time.time() < deadline:
        time.sleep(0.05)


def test_watch_rebuilds_once_after_changes_settle(built: Settings, tiny_corpus: Path):
    with watching(built, debounce=0.4) as reports:
        for i in range(3):  # a burst of edits
            (tiny_corpus / f"burst{i}.txt").write_text(f"Burst file {i} about kites.")
            time.sleep(0.1)
        wait_for_reports(reports)
        time.sleep(0.8)
    assert len(reports) == 1
    report = reports[0]
    assert isinstance(report, BuildReport)
    assert sorted(report.added) == ["burst0.txt", "burst1.txt", "burst2.txt"]


def test_changes_that_touch_no_corpus_file_build_nothing(built: Settings, tiny_corpus: Path):
    with watching(built, debounce=0.2) as reports:
        (tiny_corpus / ".notes.txt.swp").write_text("editor state")
        (tiny_corpus / ".hidden.md").write_text("# Not indexed")
        (tiny_corpus / "data.csv").write_text("a,b\n1,2\n")
        (tiny_corpus / "empty-folder").mkdir()
        time.sleep(1.5)
        assert reports == []
        (tiny_corpus / "sub" / "bees.md").unlink()  # a real change inside a subfolder
        wait_for_reports(reports)
        time.sleep(0.5)
    assert len(reports) == 1 and isinstance(reports[0], BuildReport)
    assert reports[0].removed == ["sub/bees.md"]


def test_watch_reports_a_failed_build_and_goes_on(tmp_path: Path, fake_embedder):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha.")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "i")
    build_index(s, lambda: fake_embedder)
    with watching(s, debounce=0.3) as reports:
        (corpus / "a.txt").unlink()  # nothing readable left: the build must fail cleanly
        wait_for_reports(reports)
        assert reports and isinstance(reports[0], QAError)
        (corpus / "b.txt").write_text("Beta is back.")
        wait_for_reports(reports, 2)
    assert len(reports) == 2 and isinstance(reports[1], BuildReport)
    assert reports[1].added == ["b.txt"]
