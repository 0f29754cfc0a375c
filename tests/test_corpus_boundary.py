"""The corpus folder is a boundary: only its regular files are read, never blocking, never
unbounded, and every entry left out is named in the build report with the reason."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import BuildTimeoutError
from qa.index.build import BuildReport, build_index, build_lock
from qa.index.index_dir import IndexDir
from qa.index.ingest import UnreadableFile, read_corpus_file

from .conftest import FakeEmbedder

SECRET = "The vault combination is swordfish."


@contextmanager
def deadline(seconds: int = 20) -> Iterator[None]:
    """Fail instead of hanging: a build that blocks is interrupted by an alarm."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: something blocked")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "harbour.txt").write_text("The harbour handled nine ships in March.\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the corpus holding a file that must never be indexed."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    (folder / "secret.md").write_text(f"# Vault\n\n{SECRET}\n")
    return folder


def build(corpus: Path, tmp_path: Path, **overrides) -> tuple[BuildReport, Settings]:
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", min_confidence=0.0, **overrides)
    with deadline():
        report = build_index(s, FakeEmbedder)
    return report, s


def indexed(s: Settings) -> dict[str, str]:
    """Path -> text of every document in the current index version."""
    version = IndexDir(s.index_dir).open_current()
    try:
        return {d["path"]: version.document(d["id"]).text for d in version.documents()}
    finally:
        version.close()


def skipped(report: BuildReport) -> dict[str, str]:
    return {s.path: s.reason for s in report.skipped}


def test_symlink_to_file_outside_corpus_is_refused(corpus: Path, outside: Path, tmp_path: Path):
    (corpus / "passwords.txt").symlink_to(outside / "secret.txt")
    (corpus / "nested").mkdir()
    (corpus / "nested" / "up.txt").symlink_to(Path("..") / ".." / "outside" / "secret.txt")
    report, s = build(corpus, tmp_path)
    reasons = skipped(report)
    assert "outside the corpus" in reasons["passwords.txt"]
    assert "outside the corpus" in reasons["nested/up.txt"]
    docs = indexed(s)
    assert set(docs) == {"harbour.txt"}
    assert not any("swordfish" in text for text in docs.values())


def test_symlinked_folder_outside_corpus_is_not_entered(corpus: Path, outside: Path,
                                                       tmp_path: Path):
    (corpus / "shared").symlink_to(outside, target_is_directory=True)
    report, s = build(corpus, tmp_path)
    assert skipped(report) == {"shared": "symlink to a folder outside the corpus: not followed"}
    assert set(indexed(s)) == {"harbour.txt"}


def test_symlinks_inside_corpus_files_followed_folders_not_and_loops_end(corpus: Path,
                                                                         tmp_path: Path):
    (corpus / "alias.txt").symlink_to("harbour.txt")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "tides.md").write_text("# Tides\n\nTides rise twice a day.\n")
    (corpus / "sub" / "loop").symlink_to(corpus, target_is_directory=True)
    (corpus / "mirror").symlink_to("sub", target_is_directory=True)
    (corpus / "self.txt").symlink_to("self.txt")  # a symlink loop of its own
    report, s = build(corpus, tmp_path)
    reasons = skipped(report)
    assert reasons["sub/loop"] == reasons["mirror"] == (
        "symlink to a folder inside the corpus: not followed")
    assert "cannot read" in reasons["self.txt"]
    docs = indexed(s)
    assert set(docs) == {"harbour.txt", "alias.txt", "sub/tides.md"}
    assert docs["alias.txt"] == docs["harbour.txt"]


def test_fifo_is_skipped_without_blocking_and_lock_is_free(corpus: Path, tmp_path: Path):
    os.mkfifo(corpus / "pipe.txt")  # opening it for reading would wait for a writer forever
    report, s = build(corpus, tmp_path)
    assert skipped(report) == {"pipe.txt": "not a regular file: a named pipe (FIFO)"}
    assert set(indexed(s)) == {"harbour.txt"}
    with build_lock(s.index_dir):  # the build let go of its lock
        pass


def test_fifo_reached_through_a_symlink_is_skipped(corpus: Path, tmp_path: Path):
    (corpus / "pipes").mkdir()
    os.mkfifo(corpus / "pipes" / "feed")
    (corpus / "feed.md").symlink_to(Path("pipes") / "feed")
    report, _ = build(corpus, tmp_path)
    assert skipped(report) == {"feed.md": "not a regular file: a named pipe (FIFO)"}


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_symlink_to_dev_zero_is_refused(corpus: Path, tmp_path: Path):
    (corpus / "zero.txt").symlink_to("/dev/zero")
    report, s = build(corpus, tmp_path)
    assert "outside the corpus" in skipped(report)["zero.txt"]
    assert set(indexed(s)) == {"harbour.txt"}


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_never_read_even_inside_the_corpus():
    # A corpus that is /dev itself: /dev/zero is inside it, and still refused as a device.
    with deadline(), pytest.raises(UnreadableFile, match="not a regular file: a character device"):
        read_corpus_file(Path("/dev/zero"), Path("/dev"), 1000)


def test_oversized_file_is_skipped_with_reason(corpus: Path, tmp_path: Path):
    (corpus / "huge.txt").write_bytes(b"lighthouse " * 200)  # 2,200 bytes
    report, s = build(corpus, tmp_path, max_file_mb=0.002)
    assert skipped(report) == {"huge.txt": "file is 0.0 MB, over the 0.002 MB limit"}
    assert set(indexed(s)) == {"harbour.txt"}


def test_file_larger_than_it_claims_is_read_only_to_the_cap(corpus: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    path = corpus / "growing.txt"
    path.write_bytes(b"x" * 5000)
    real_stat = os.stat

    def lying_stat(p, *args, **kwargs):
        st = real_stat(p, *args, **kwargs)
        if str(p).endswith("growing.txt"):  # says 10 bytes, as a file still being written might
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid,
                                   st.st_gid, 10, st.st_atime, st.st_mtime, st.st_ctime))
        return st

    monkeypatch.setattr(os, "stat", lying_stat)
    with pytest.raises(UnreadableFile, match="grew while read: over the 0.001 MB limit"):
        read_corpus_file(path, corpus, 1000)
    monkeypatch.undo()
    assert read_corpus_file(path, corpus, 5000) == b"x" * 5000


def test_hidden_entries_are_named_in_the_report(corpus: Path, tmp_path: Path):
    (corpus / ".draft.txt").write_text(SECRET)
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.md").write_text(SECRET)
    (corpus / ".DS_Store").write_bytes(b"\x00\x01")  # not a supported type: left out silently
    (corpus / "data.csv").write_text("a,b\n")
    report, s = build(corpus, tmp_path)
    assert skipped(report) == {".draft.txt": "hidden file: not indexed",
                               ".git": "hidden folder: not indexed"}
    assert set(indexed(s)) == {"harbour.txt"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_folder_are_named_in_the_report(corpus: Path, tmp_path: Path):
    (corpus / "locked.txt").write_text(SECRET)
    (corpus / "locked.txt").chmod(0)
    (corpus / "closed").mkdir()
    (corpus / "closed" / "inner.txt").write_text(SECRET)
    (corpus / "closed").chmod(0)
    try:
        report, s = build(corpus, tmp_path)
    finally:
        (corpus / "closed").chmod(0o755)
    reasons = skipped(report)
    assert reasons["locked.txt"] == "cannot read: Permission denied"
    assert reasons["closed"] == "cannot read folder: Permission denied"
    assert set(indexed(s)) == {"harbour.txt"}


def test_invalid_utf8_is_indexed_by_guess_and_reported(corpus: Path, tmp_path: Path):
    (corpus / "cafe.txt").write_bytes(
        "Café culture in Vienna dates back to the siege of 1683, señor.".encode("cp1252"))
    (corpus / "utf8.txt").write_text("Crème brûlée is served cold.", encoding="utf-8")
    report, s = build(corpus, tmp_path)
    assert [(w.path, w.reason) for w in report.warnings] == [
        ("cafe.txt", "not valid UTF-8: decoded as cp1252 (a guess)")]
    assert not report.skipped
    docs = indexed(s)
    assert "Café culture" in docs["cafe.txt"] and "\ufffd" not in docs["cafe.txt"]
    manifest = IndexDir(s.index_dir).open_current().manifest
    assert manifest["warnings"] == [{"path": "cafe.txt",
                                     "reason": "not valid UTF-8: decoded as cp1252 (a guess)"}]
    again = build_index(s, FakeEmbedder)  # incremental: the file is reused, the warning stays
    assert "cafe.txt" in again.unchanged
    assert [w.path for w in again.warnings] == ["cafe.txt"]


def test_report_prints_every_skipped_entry_and_warning(corpus: Path, outside: Path,
                                                      tmp_path: Path, capsys):
    from qa.cli import _print_report

    (corpus / "passwords.txt").symlink_to(outside / "secret.txt")
    (corpus / "latin.txt").write_bytes("Señor Müller".encode("cp1252"))
    report, s = build(corpus, tmp_path)
    _print_report(report, s, as_json=False)
    out = capsys.readouterr().out
    assert "skipped passwords.txt: symlink to a file outside the corpus: not followed" in out
    assert "warning latin.txt: not valid UTF-8" in out


def test_interrupted_build_releases_lock_and_keeps_serving(corpus: Path, tmp_path: Path):
    _, s = build(corpus, tmp_path)
    before = IndexDir(s.index_dir).current_name()
    (corpus / "new.txt").write_text("A new note about comets.")

    class Interrupted(FakeEmbedder):
        def embed(self, texts, progress=False):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(s, Interrupted, full=True)
    index = IndexDir(s.index_dir)
    assert index.current_name() == before
    assert not list(index.versions.glob(".tmp-*"))
    with build_lock(s.index_dir):
        pass


def test_build_timeout_aborts_cleanly(corpus: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch):
    _, s = build(corpus, tmp_path)
    before = IndexDir(s.index_dir).current_name()
    monkeypatch.setenv("QA_BUILD_TIMEOUT", "0.000001")
    slow = Settings(corpus_dir=corpus, index_dir=s.index_dir)
    assert slow.build_timeout == 1e-6
    with pytest.raises(BuildTimeoutError, match="QA_BUILD_TIMEOUT"):
        build_index(slow, FakeEmbedder, full=True)
    index = IndexDir(s.index_dir)
    assert index.current_name() == before
    assert not list(index.versions.glob(".tmp-*"))
    with build_lock(s.index_dir):
        pass
