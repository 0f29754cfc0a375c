"""Format readers: the bytes of one file to paragraphs and headings (`Block`s), before
cleaning and assembly into a document. Plain text, PDF and DOCX here, Markdown and HTML in
qa.index.markup; text encodings are detected here too. A reader raises UnreadableFile, with the
reason, for a file it cannot read.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from charset_normalizer import from_bytes

from qa.index.clean import clean_inline

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


def table_sentences(rows: list[list[str]], header: bool) -> list[str]:
    """A table as one sentence per row. With a header row, each cell is named by its column,
    so that a row answers on its own: "burst — Default: 20, Description: ...". """
    rows = [[clean_inline(c) for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not header or len(rows) < 2:
        return [" | ".join(c for c in row if c) for row in rows]
    names, out = rows[0], []
    for row in rows[1:]:
        named = ", ".join(f"{h}: {c}" if h else c for h, c in zip(names[1:], row[1:],
                                                                    strict=False) if c)
        first = row[0] if row else ""
        if named:
            out.append(f"{first} — {named.rstrip('.')}." if first else f"{named.rstrip('.')}.")
        else:
            out.append(first)
    return [row for row in out if row.strip(" :.")]


def read_pdf(data: bytes) -> list[Block]:
    """PDF: the text of each page, page numbers kept."""

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
    """DOCX: paragraphs, headings (Title and Heading N styles) and tables, in document order."""

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
    from docx.table import Table

    blocks: list[Block] = []
    style_names: dict[str | None, str] = {}
    # Body paragraphs and tables in document order, so a table stays under its heading.
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.extend(Block(row) for row in _docx_table(item))
            continue
        text = item.text.strip()
        if not text:
            continue
        # `Paragraph.style` scans every style of the document to find the default one, so
        # it is looked up once per style id.
        style_id = item._p.style
        if style_id not in style_names:
            style_names[style_id] = (item.style.name if item.style is not None else "") or ""
        style = style_names[style_id]
        level = 0
        if style == "Title":
            level = 1
        elif style.startswith("Heading"):
            digits = style.removeprefix("Heading").strip()
            level = min(int(digits), 6) if digits.isdigit() else 2
        blocks.append(Block(text, level))
    return blocks


def _docx_table(table: Any) -> list[str]:
    """A Word table as sentences; its first row names the columns when Word marks it as a
    header row, or when all its text is bold."""
    from docx.oxml.ns import qn

    rows: list[list[str]] = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) not in seen:  # a merged cell is returned once per grid column
                seen.add(id(cell._tc))
                cells.append(cell.text)
        rows.append(cells)
    if not table.rows:
        return []
    first = table.rows[0]
    marked = first._tr.trPr is not None and first._tr.trPr.find(qn("w:tblHeader")) is not None
    runs = [r for cell in first.cells for p in cell.paragraphs for r in p.runs if r.text.strip()]
    bold = bool(runs) and all(r.bold for r in runs)
    return table_sentences(rows, marked or bold)
