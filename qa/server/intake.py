"""Documents added and removed from the browser: names made safe, content checked, files
written atomically inside the corpus folder, and a rebuild asked for (again, if one runs)."""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import threading
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from qa.errors import BuildLockedError, NotFoundError, QAError
from qa.index.ingest import parse_file
from qa.index.readers import UnreadableFile
from qa.index.rebuild import BuildManager

log = logging.getLogger(__name__)

ALLOWED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
MAX_NAME = 120
MAX_FILES = 20
_UNSAFE = re.compile(r"[^\w .,()+=@&-]")


class UploadError(QAError):
    """A file that cannot be added: `status` says which HTTP status tells it best."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_name(raw: str) -> str:
    """A plain file name for the corpus folder's top level, from whatever the browser sent.

    Only the last component of any path is kept (both slash kinds), control and unusual
    characters become "_", leading dots and spaces go (no hidden files, no '..'), and the
    extension must be one the indexer reads."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in name)
    name = _UNSAFE.sub("_", " ".join(name.split())).lstrip(" .-_")
    stem, dot, ext = name.rpartition(".")
    if not dot or f".{ext.lower()}" not in ALLOWED:
        shown = raw[-60:] if raw else "(no name)"
        raise UploadError(f"{shown!r} is not a supported file type; send one of "
                          + ", ".join(ALLOWED), 415)
    stem = stem.rstrip(" .")[: MAX_NAME - len(ext) - 1]
    if not stem:
        raise UploadError(f"{raw[-60:]!r} has no usable file name", 400)
    return f"{stem}.{ext.lower()}"


def check_content(name: str, data: bytes, max_bytes: int) -> None:
    """UploadError unless `data` is a readable document of the type its name says."""
    if len(data) > max_bytes:
        raise UploadError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is "
                          f"{max_bytes / 1e6:g} MB", 413)
    if not data.strip():
        raise UploadError(f"{name} is empty", 422)
    ext = Path(name).suffix.lower()
    if ext == ".pdf" and not data.startswith(b"%PDF-"):
        raise UploadError(f"{name} is not a PDF file", 415)
    if ext == ".docx":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                ok = "word/document.xml" in z.namelist()
        except zipfile.BadZipFile:
            ok = False
        if not ok:
            raise UploadError(f"{name} is not a Word (.docx) file", 415)
    if ext not in (".pdf", ".docx") and b"\x00" in data[:65536]:
        raise UploadError(f"{name} holds binary data, not text", 415)
    try:
        parse_file(name, data)
    except UnreadableFile as exc:
        raise UploadError(f"{name} cannot be read: {exc}", 422) from exc


def _inside(corpus: Path, name: str) -> Path:
    """The path `name` takes at the corpus folder's top level, checked to stay there."""
    root = Path(os.path.realpath(corpus))
    if not root.is_dir():
        raise UploadError("the corpus folder is missing", 500)
    target = root / name
    if target.parent != root or name in ("", ".", ".."):
        raise UploadError(f"{name!r} would leave the corpus folder", 400)
    return target


@dataclass
class Written:
    """A file written into the corpus: its path relative to the corpus and whether it
    replaced one."""

    path: str
    replaced: bool


def write_file(corpus: Path, name: str, data: bytes, replace: bool) -> Written:
    """Write a checked file into the corpus folder atomically: a hidden temporary file (which
    the indexer skips) renamed into place; never through a symlink, never over a folder."""
    target = _inside(corpus, name)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise UploadError(f"{name} exists in the corpus and is not a plain file", 409)
        if not replace:
            raise UploadError(f"{name} is already in the corpus; send replace to replace it",
                              409)
    fd = -1
    temp = target.parent / f".upload-{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
        with open(fd, "wb") as fh:
            fd = -1
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(temp, target)
        else:
            os.link(temp, target)  # fails if the name was taken meanwhile
            os.unlink(temp)
    except FileExistsError as exc:
        raise UploadError(f"{name} is already in the corpus; send replace to replace it",
                          409) from exc
    finally:
        if fd >= 0:
            os.close(fd)
        temp.unlink(missing_ok=True)
    return Written(name, st is not None)


def remove_file(corpus: Path, relpath: str) -> bool:
    """Delete an indexed document's file from the corpus; False if it was already gone."""
    root = Path(os.path.realpath(corpus))
    target = root / relpath
    if not Path(os.path.realpath(target.parent)).is_relative_to(root) or ".." in Path(
            relpath).parts:
        raise UploadError("that document's file is not inside the corpus folder", 400)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise UploadError("that document's path is a folder now; not removed", 409)
    os.unlink(target)  # a symlink is removed itself, never what it points to
    return True


def find_path(documents: list[dict[str, object]], doc_id: str) -> str:
    """The corpus path of an indexed document, or NotFoundError."""
    for row in documents:
        if row["id"] == doc_id:
            return str(row["path"])
    raise NotFoundError("no document with that id")


class Rebuilds:
    """Asks the build manager for an incremental rebuild; while one runs, asks again when it
    ends, so a file added during a build is indexed by the next one."""

    def __init__(self, builds: BuildManager, wait: float = 600.0):
        self.builds = builds
        self.wait = wait
        self._lock = threading.Lock()
        self._waiting = False

    def request(self) -> str | None:
        """Start a rebuild now (its id), or None if it will start after the running one."""
        try:
            return self.builds.start(False)
        except BuildLockedError:
            if self.builds.stopping:
                raise
        with self._lock:
            if not self._waiting:
                self._waiting = True
                threading.Thread(target=self._later, daemon=True, name="rebuild-next").start()
        return None

    def _later(self) -> None:
        try:
            for _ in range(int(self.wait / 0.5)):
                self.builds.join(0.5)
                if self.builds.stopping:
                    return
                try:
                    self.builds.start(False)
                    return
                except BuildLockedError:
                    continue
            log.warning("a rebuild for added or removed documents could not start")
        finally:
            with self._lock:
                self._waiting = False
