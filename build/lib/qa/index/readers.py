"""Format readers: the bytes of one file to paragraphs and headings (`Block`s), before
cleaning and assembly into a document. Plain text, Markdown, HTML, PDF and DOCX; text encodings
are detected here too. A reader raises UnreadableFile, with the reason, for a file it cannot read.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from warnings import catch_warnings, simplefilter

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
