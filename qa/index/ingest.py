"""Read a corpus folder into clean documents; unreadable files are skipped with a reason.

The per-format readers live in qa/index/readers.py and qa/index/markup.py; this module walks
the corpus, reads files safely, and assembles a reader's blocks into one clean Document with
heading and page offsets."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError
from qa.index.boilerplate import furniture_blocks
from qa.index.clean import clean_inline, clean_text
from qa.index.markup import read_html, read_markdown
from qa.index.readers import Block, UnreadableFile, read_docx, read_pdf, read_plain

log = logging.getLogger(__name__)

# Raised whenever the same bytes would be read into different text (a new rule for headings,
# furniture, tables...): the next build then reads every file again instead of reusing chunks.
# Version 3: page furniture left out, heading lines in plain text, Markdown tables and fences.
# Version 4: Markdown through markdown-it-py, HTML main content through trafilatura, DOCX tables
# in document order.
READER_VERSION = 4

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


@dataclass
class Heading:
    start: int
    end: int
    level: int
    title: str


@dataclass
class Document:
    """One source file as clean text; every chunk is an exact slice of `text`."""

    id: str
    path: str  # relative to the corpus folder, with forward slashes
    title: str
    text: str
    content_hash: str
    pages: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, page)
    headings: list[Heading] = field(default_factory=list)

    def page_at(self, offset: int) -> int | None:
        for start, end, page in self.pages:
            if start <= offset < end or (offset == end and start == end):
                return page
        return self.pages[-1][2] if self.pages and offset >= self.pages[-1][1] else None

    def section_at(self, offset: int) -> str | None:
        """The heading path (\"A > B\") in force at `offset`, skipping the document title."""
        path: list[Heading] = []
        for h in self.headings:
            if h.start > offset:
                break
            while path and path[-1].level >= h.level:
                path.pop()
            path.append(h)
        names = [h.title for h in path if h.title != self.title or h.level > 1]
        return " > ".join(names) or None


@dataclass
class SkippedFile:
    path: str
    reason: str


def document_id(relpath: str) -> str:
    """A stable, URL-safe id for a document, derived from its path in the corpus."""
    return hashlib.sha256(relpath.encode("utf-8")).hexdigest()[:16]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iter_corpus_files(corpus_dir: Path, skipped: list[SkippedFile] | None = None) -> Iterator[Path]:
    """Supported files under `corpus_dir`, in a stable order, hidden files excluded.

    Symlinked folders are never entered (so a walk cannot loop or leave the corpus), nor are
    hidden ones or folders that resolve outside the corpus. Each such folder, and each hidden
    file of a supported type, is added to `skipped` with the reason; files of unsupported types
    are left out silently. Symlinked files are yielded: `read_corpus_file` refuses the ones
    whose target is not a regular file inside the corpus.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    root = Path(os.path.realpath(corpus_dir))

    def skip(path: Path, reason: str) -> None:
        if skipped is not None:
            skipped.append(SkippedFile(path.relative_to(corpus_dir).as_posix(), reason))

    def unreadable(exc: OSError) -> None:
        skip(Path(exc.filename), f"cannot read folder: {exc.strerror or exc}")

    for top, dirs, files in os.walk(corpus_dir, onerror=unreadable):
        here = Path(top)
        if not Path(os.path.realpath(here)).is_relative_to(root):
            # Only if a folder was swapped for a symlink during the walk.
            skip(here, "folder outside the corpus: not entered")
            dirs.clear()
            continue
        kept = []
        for name in sorted(dirs):
            path = here / name
            if name.startswith("."):
                skip(path, "hidden folder: not indexed")
            elif path.is_symlink():
                inside = Path(os.path.realpath(path)).is_relative_to(root)
                skip(path, "symlink to a folder inside the corpus: not followed" if inside
                     else "symlink to a folder outside the corpus: not followed")
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() not in SUPPORTED:
                continue
            if name.startswith("."):
                skip(path, "hidden file: not indexed")
                continue
            yield path


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"not a regular file: {kind}"


def read_corpus_file(path: Path, corpus_dir: Path, max_bytes: int) -> bytes:
    """The bytes of one corpus file, or UnreadableFile with the reason.

    Only regular files inside the corpus are read: a symlink whose target lies outside it is
    refused, and FIFOs, sockets and devices are never opened (the target is checked before
    opening, and again on the open file, which is opened non-blocking). At most `max_bytes` + 1
    bytes are read, so a file that grows, or lies about its size, is refused without filling
    memory.
    """
    limit = f"over the {max_bytes / 1e6:g} MB limit"
    try:
        real = Path(os.path.realpath(path, strict=True))
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from exc
    if not real.is_relative_to(Path(os.path.realpath(corpus_dir))):
        raise UnreadableFile("symlink to a file outside the corpus: not followed")
    try:
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(_not_regular(st.st_mode))
        if st.st_size > max_bytes:
            raise UnreadableFile(f"file is {st.st_size / 1e6:.1f} MB, {limit}")
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        flags |= getattr(os, "O_NOFOLLOW", 0)  # `real` is resolved: a symlink now is a swap
        with open(os.open(real, flags), "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if not stat.S_ISREG(mode):  # swapped between the check and the open
                raise UnreadableFile(_not_regular(mode))
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise UnreadableFile(f"file grew while read: {limit}")
    return data


def assemble(relpath: str, blocks: list[Block], title: str | None, digest: str) -> Document:
    """Join cleaned blocks into one text, recording heading and page offsets."""
    parts: list[str] = []
    headings: list[Heading] = []
    pages: list[tuple[int, int, int]] = []
    pos = 0
    furniture = furniture_blocks([b.text for b in blocks])
    if furniture:
        log.debug("%s: %d blocks of page furniture left out", relpath, len(furniture))
    for i, block in enumerate(blocks):
        if i in furniture:
            continue
        text = clean_inline(block.text) if block.heading_level else clean_text(block.text)
        if not text:
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        start, pos = pos, pos + len(text)
        parts.append(text)
        if block.heading_level:
            headings.append(Heading(start, pos, block.heading_level, text))
        if block.page is not None:
            if pages and pages[-1][2] == block.page:
                pages[-1] = (pages[-1][0], pos, block.page)
            else:
                pages.append((start, pos, block.page))
    body = "".join(parts)
    if not title:
        first_h1 = next((h.title for h in headings if h.level == 1), None)
        title = first_h1 or Path(relpath).stem.replace("_", " ").replace("-", " ")
    return Document(document_id(relpath), relpath, clean_inline(title), body, digest, pages,
                    headings)


def parse_file(relpath: str, data: bytes, warnings: list[str] | None = None) -> Document:
    """Turn one file's bytes into a Document, or raise UnreadableFile with the reason.

    What was read but is worth knowing (text that was not UTF-8) is added to `warnings`.
    """
    suffix = Path(relpath).suffix.lower()
    title = None
    if suffix in {".html", ".htm"}:
        blocks, title = read_html(data, warnings)
    elif suffix == ".pdf":
        blocks = read_pdf(data)
    elif suffix == ".docx":
        blocks = read_docx(data)
    elif suffix in {".md", ".markdown"}:
        blocks = read_markdown(data, warnings)
    else:
        blocks = read_plain(data, warnings)
    doc = assemble(relpath, blocks, title, file_hash(data))
    if not doc.text.strip():
        raise UnreadableFile("no text found")
    return doc
