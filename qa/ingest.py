"""Read a corpus folder into clean documents; unreadable files are skipped with a reason."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from warnings import catch_warnings, simplefilter

from charset_normalizer import from_bytes

from qa.boilerplate import furniture_blocks
from qa.clean import clean_inline, clean_text
from qa.errors import CorpusError

log = logging.getLogger(__name__)

# Raised whenever the same bytes would be read into different text (a new rule for headings,
# furniture, tables...): the next build then reads every file again instead of reusing chunks.
# Version 3: page furniture left out, heading lines in plain text, Markdown tables and fences.
READER_VERSION = 3

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
# A DOCX is a zip; refuse ones that would expand far beyond their size (zip bombs).
MAX_DOCX_EXPANSION = 100
MAX_DOCX_UNPACKED = 200 * 1024 * 1024


class UnreadableFile(Exception):
    """A file that cannot be turned into text; the message is the reason."""


@dataclass
class Block:
    """A paragraph or heading as a reader found it, before assembly."""

    text: str
    heading_level: int = 0  # 0 for body text, 1..6 for headings
    page: int | None = None


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


def decode_text(data: bytes, warnings: list[str] | None = None) -> str:
    """Bytes to str: UTF-8 first, then the most likely other encoding; binary is refused.

    Text that is not valid UTF-8 is still indexed, decoded by the guessed encoding (never with
    replacement characters: when no encoding fits, the file is refused); the guess is added to
    `warnings`, which the build report shows for that file.
    """
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise UnreadableFile("undecodable text: no character encoding fits")
    text, encoding = str(best), best.encoding
    if best.encoding.startswith(("cp125", "latin", "iso8859")):
        # Single-byte Western guesses are unreliable on short texts; Windows-1252 is by far
        # the most common of them, so take it when it decodes cleanly.
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    if warnings is not None:
        warnings.append(f"not valid UTF-8: decoded as {encoding} (a guess)")
    return text


_SENTENCE_END = ".?!:;,\"'”)]。！？"


def _title_case(line: str) -> bool:
    """Most longer words capitalised, as in "The Verdict: A Marriage of Convenience"."""
    words = [w for w in re.findall(r"[^\W\d_]+", line) if len(w) >= 4]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def looks_like_heading(line: str) -> bool:
    """A short line without closing punctuation, or a title-cased one ending in ? or !."""
    if not 0 < len(line) <= 120 or "\n" in line:
        return False
    if line[-1] not in _SENTENCE_END:
        return len(line) <= 80 or _title_case(line)
    return line[-1] in "?!" and len(line) <= 100 and _title_case(line)


def _split_lines(para: str) -> list[str]:
    """A paragraph's lines regrouped: a heading line stands alone, and a line that ends a
    sentence before one that starts a new one ends the paragraph (pages saved as text put
    one paragraph on each line); hard-wrapped lines stay together."""
    out: list[list[str]] = [[]]
    lines = [ln.strip() for ln in para.split("\n") if ln.strip()]
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        heading = len(lines) > 1 and looks_like_heading(line) and _title_case(line)
        if heading and out[-1]:
            out.append([])
        out[-1].append(line)
        ends = line[-1] in ".?!”\"。！？" and (nxt[:1].isupper() or nxt[:1] in "“\"")
        if heading or ends:
            out.append([])
    return ["\n".join(group) for group in out if group]


def read_plain(data: bytes, warnings: list[str] | None = None) -> list[Block]:
    """Plain text: paragraphs split on blank lines (and on lines that end a paragraph); short
    unpunctuated or title-cased lines are headings."""
    text = decode_text(data, warnings).replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[Block] = []
    for para in text.split("\n\n"):
        for part in _split_lines(para):
            level = 2 if looks_like_heading(part) else 0
            if level and not blocks:
                level = 1
            blocks.append(Block(part, level))
    return blocks


def read_markdown(data: bytes, warnings: list[str] | None = None) -> list[Block]:
    """Markdown: ATX headings (#) become headings, fenced code stays one block, each table row
    becomes a sentence naming its columns ("rate — Default: 10, Description: ..."), the rest stays
    as written."""
    text = decode_text(data, warnings).replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[Block] = []
    para: list[str] = []
    fence: str | None = None
    table: list[list[str]] = []

    def flush() -> None:
        if para:
            blocks.append(Block("\n".join(para)))
            para.clear()
        if table:
            blocks.extend(Block(row) for row in _table_rows(table))
            table.clear()

    for line in text.split("\n"):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
                flush()
            else:
                para.append(line)
            continue
        if stripped.startswith(("```", "~~~")):
            flush()
            fence = stripped[:3]
            continue
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            if para:
                flush()
            table.append([c.strip() for c in stripped[1:-1].split("|")])
            continue
        if table:
            flush()
        if stripped.startswith("#"):
            hashes = len(stripped) - len(stripped.lstrip("#"))
            if 1 <= hashes <= 6 and (len(stripped) == hashes or stripped[hashes] == " "):
                flush()
                title = stripped[hashes:].strip().rstrip("#").strip()
                if title:
                    blocks.append(Block(title, hashes))
                continue
        if not stripped:
            flush()
        else:
            para.append(line)
    flush()
    return blocks


_TABLE_RULE = re.compile(r"^:?-{2,}:?$")


def _table_rows(rows: list[list[str]]) -> list[str]:
    """A Markdown table as one sentence per row, each cell named by its column's header, so
    that a row answers on its own ("burst — Default: 20, Description: ...")."""
    rows = [[c.replace("`", "").replace("**", "") for c in r] for r in rows]
    if len(rows) >= 2 and all(_TABLE_RULE.match(c.replace(" ", "")) for c in rows[1] if c):
        header, body = rows[0], rows[2:]
    else:
        return [" | ".join(r) for r in rows]
    out = []
    for r in body:
        named = [f"{h}: {c}" if h else c for h, c in zip(header[1:], r[1:], strict=False) if c]
        first = r[0] if r else ""
        out.append(f"{first} — {', '.join(named).rstrip('.')}." if named else first)
    return [row for row in out if row.strip(" :.")]


# Navigation, page footers and forms (comment, search, sign-up) are page furniture, not content.
_HTML_DROP = ("script", "style", "noscript", "template", "iframe", "svg", "head", "object", "embed",
              "nav", "footer", "form")
_HTML_BLOCK = {
    "p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "li", "ul",
    "ol", "dl", "dt", "dd", "table", "tr", "td", "th", "blockquote", "pre", "figure",
    "figcaption", "br", "hr", "form", "address", "details", "summary",
}


def read_html(data: bytes, warnings: list[str] | None = None) -> tuple[list[Block], str | None]:
    """HTML: visible text only, headings kept, title from <title> or the first <h1>."""
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag
    from bs4.element import Comment, Doctype, ProcessingInstruction

    with catch_warnings():
        # A page whose whole text looks like a file name or URL is still a page.
        simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(decode_text(data, warnings), "lxml")
    title_tag = soup.find("title")
    title = clean_inline(title_tag.get_text()) if title_tag else None
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    root = soup.body or soup
    blocks: list[Block] = []
    buf: list[str] = []

    def flush() -> None:
        text = "".join(buf).strip()
        if text:
            blocks.append(Block(text))
        buf.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                buf.append(str(child))
            elif isinstance(child, Tag):
                name = child.name.lower()
                if name in {"h1", "h2", "h3", "h4", "h5", "h6"}:
                    flush()
                    text = clean_inline(child.get_text(" "))
                    if text:
                        blocks.append(Block(text, int(name[1])))
                elif name in _HTML_BLOCK:
                    flush()
                    walk(child)
                    flush()
                else:
                    walk(child)

    walk(root)
    flush()
    if not title:
        title = next((b.text for b in blocks if b.heading_level == 1), None)
    return blocks, title


def read_pdf(data: bytes) -> list[Block]:
    """PDF: the text of each page, page numbers kept."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile("encrypted PDF")
        blocks = []
        for number, page in enumerate(reader.pages, start=1):
            for para in (page.extract_text() or "").split("\n\n"):
                if para.strip():
                    blocks.append(Block(para, 0, number))
        return blocks
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UnreadableFile(f"corrupt PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises many ad-hoc errors on broken files
        raise UnreadableFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc


def read_docx(data: bytes) -> list[Block]:
    """DOCX: paragraphs and headings (Title and Heading N styles), table cells as text."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("corrupt DOCX: not a zip archive") from exc
    if unpacked > MAX_DOCX_UNPACKED or unpacked > MAX_DOCX_EXPANSION * max(len(data), 1):
        raise UnreadableFile(f"DOCX expands to {unpacked} bytes: refused as a zip bomb")
    try:
        import docx

        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx surfaces KeyError, lxml errors and more
        raise UnreadableFile(f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    blocks = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        level = 0
        if style == "Title":
            level = 1
        elif style.startswith("Heading"):
            digits = style.removeprefix("Heading").strip()
            level = min(int(digits), 6) if digits.isdigit() else 2
        blocks.append(Block(text, level))
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(Block(" | ".join(cells)))
    return blocks


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
    return Document(document_id(relpath), relpath, clean_inline(title), body, digest, pages, headings)


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


def read_file(path: Path, corpus_dir: Path, max_bytes: int) -> Document:
    """Read and parse one file of the corpus; raise UnreadableFile with the reason."""
    relpath = path.relative_to(corpus_dir).as_posix()
    return parse_file(relpath, read_corpus_file(path, corpus_dir, max_bytes))
