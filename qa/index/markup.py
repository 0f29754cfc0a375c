"""Markup readers: Markdown parsed by markdown-it-py, the main content of HTML pages found by
trafilatura; both to `Block`s, as the other readers give."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree
from lxml.html import HtmlElement
from markdown_it import MarkdownIt
from markdown_it.token import Token
from trafilatura import bare_extraction
from trafilatura.settings import use_config

from qa.index.clean import clean_inline
from qa.index.readers import Block, UnreadableFile, decode_text, table_sentences

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# YAML front matter (Jekyll, Hugo...) is metadata; CommonMark would read it as a rule and a heading.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


def read_markdown(data: bytes, warnings: list[str] | None = None) -> list[Block]:
    """Markdown (CommonMark and GFM tables): ATX and setext headings become headings, each
    paragraph and list item a block, code (fenced or indented) one block as written, links
    their text; each table row becomes a sentence naming its columns."""
    text = decode_text(data, warnings).replace("\r\n", "\n").replace("\r", "\n")
    tokens = _MARKDOWN.parse(_FRONT_MATTER.sub("", text, count=1))
    blocks: list[Block] = []
    number = ""  # an ordered item's number, put before its first paragraph
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            blocks.append(Block(_md_inline(tokens[i + 1]), int(tok.tag[1])))
            i += 2
        elif tok.type == "list_item_open":
            number = f"{tok.info}{tok.markup} " if tok.info else ""
        elif tok.type == "inline":  # a paragraph's text (headings and table cells are taken above)
            blocks.append(Block(number + _md_inline(tok)))
            number = ""
        elif tok.type in ("fence", "code_block"):
            blocks.append(Block(tok.content.strip("\n")))
        elif tok.type == "html_block":
            blocks.append(Block(html_text(tok.content)))
        elif tok.type == "table_open":
            end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
            blocks.extend(Block(row) for row in _md_table(tokens[i:end]))
            i = end
        i += 1
    return [b for b in blocks if b.text.strip()]


def _md_inline(token: Token) -> str:
    """The text a reader sees: markup, link targets and images left out, line breaks kept."""
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "html_inline" and child.content.lower().startswith("<br"):
            parts.append("\n")
    return "".join(parts)


def _md_table(tokens: list[Token]) -> list[str]:
    rows: list[list[str]] = []
    header = False
    for tok in tokens:
        if tok.type == "thead_open":
            header = True
        elif tok.type == "tr_open":
            rows.append([])
        elif tok.type == "inline" and rows:
            rows[-1].append(_md_inline(tok))
    return table_sentences(rows, header)


# Never content, and script or style text must not reach the index even if trafilatura kept it.
_HTML_DROP = ("script", "style", "noscript", "template", "iframe", "svg", "object", "embed",
              "head")
# Navigation, page footers and forms (comment, search, sign-up) are page furniture; trafilatura
# finds most of it, but on a short page it may keep all the page rather than guess.
_HTML_FURNITURE = ("nav", "footer", "form")
_TRAFILATURA = use_config()
# Take what the main extractor finds even on a short page: below the default 250 characters
# trafilatura falls back to its baseline, which runs headings and paragraphs into one block.
_TRAFILATURA.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
# trafilatura's output vocabulary: elements that hold their own block of text.
_TF_BLOCKS = {"head", "p", "quote", "item", "list", "table", "row", "cell", "div"}


# Characters lxml refuses in element text (and cleaning would remove anyway).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _html_tree(text: str) -> HtmlElement | None:
    text = _NOT_XML.sub(" ", text)
    # Bytes, not str: lxml refuses a str that carries an XML encoding declaration.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        return lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError):  # an empty or whitespace-only document
        return None


def html_text(markup: str) -> str:
    """The visible text of an HTML fragment (raw HTML inside Markdown)."""
    tree = _html_tree(markup)
    if tree is None:
        return ""
    etree.strip_elements(tree, *_HTML_DROP, with_tail=False)
    return str(tree.text_content())


_INLINE = {"a", "abbr", "b", "bdi", "br", "cite", "code", "em", "i", "img", "kbd", "mark", "q",
           "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "wbr"}


def _text_div(el: HtmlElement) -> bool:
    """A <div> holding a run of text (and inline markup only): a paragraph in all but name."""
    if any(child.tag not in _INLINE for child in el):
        return False
    return bool((el.text or "").strip() or any((c.tail or "").strip() for c in el))


def read_html(data: bytes, warnings: list[str] | None = None) -> tuple[list[Block], str | None]:
    """HTML: the main content as trafilatura finds it (navigation, footers, forms, comments
    and share bars left out), headings kept, tables as sentences; title from <title>."""
    tree = _html_tree(decode_text(data, warnings))
    if tree is None:
        return [], None
    title = clean_inline(tree.findtext(".//title") or "") or None
    etree.strip_elements(tree, *_HTML_DROP, *_HTML_FURNITURE, with_tail=False)
    for el in tree.iter("figure", "figcaption", "div"):
        if el.tag == "figure":
            # trafilatura drops figures as image holders; documentation keeps code listings
            # and tables in them.
            el.tag = "div"
        elif el.tag == "figcaption" or _text_div(el):
            # trafilatura reads a <div>'s own text only on pages with little <p> text.
            el.tag = "p"
    body = tree.find("body")
    if body is not None and not tree.xpath("//article|//main|//*[@role='main']"):
        # Without a content container trafilatura salvages loose paragraphs and loses the
        # headings; one around the whole body keeps them, and it still prunes the furniture.
        wrapper = etree.Element("body")
        body.addprevious(wrapper)
        body.tag = "article"
        wrapper.append(body)
    try:
        # fast: no second opinion from the readability and jusText ports, which are slower and
        # bring the furniture back; favor_recall: keep lists and code inside table cells.
        found = bare_extraction(tree, fast=True, favor_recall=True, include_comments=False,
                                include_tables=True, config=_TRAFILATURA)
        blocks: list[Block] = []
        content = getattr(found, "body", None)
        if content is not None:
            _tf_blocks(content, blocks)
    except RecursionError as exc:
        raise UnreadableFile("HTML nested too deeply to read") from exc
    return blocks, title


def _tf_inline(el: etree._Element) -> str:
    parts = [el.text or ""]
    for child in el:
        parts.append("\n" if child.tag == "lb" else _tf_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _tf_code_block(el: etree._Element) -> bool:
    """Whether a <code> element is a block of code (from <pre>) rather than code in a line."""
    parent = el.getparent()
    if parent is None or parent.tag in ("p", "head"):
        return False
    return parent.tag == "body" or el.find("code") is not None or "\n" in _tf_inline(el)


def _tf_blocks(el: etree._Element, out: list[Block]) -> None:
    """Blocks from trafilatura's XML (head, p, list/item, quote, code, table/row/cell), in
    document order: each run of inline content between nested blocks is a block of its own."""
    run = [el.text or ""]

    def flush() -> None:
        text = "".join(run)
        if text.strip():
            out.append(Block(text))
        run.clear()

    for child in el:
        tag = child.tag
        if tag == "head":
            flush()
            rend = child.get("rend", "")
            level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
            out.append(Block(_tf_inline(child), level))
        elif tag == "table":
            flush()
            _tf_table(child, out)
        elif tag in _TF_BLOCKS:
            flush()
            _tf_blocks(child, out)
        elif tag == "code" and _tf_code_block(child):
            flush()
            out.append(Block(_tf_inline(child)))
        else:
            run.append("\n" if tag == "lb" else _tf_inline(child))
        run.append(child.tail or "")
    flush()


def _tf_table(table: etree._Element, out: list[Block]) -> None:
    rows = list(table.iter("row"))
    if any(x.tag in _TF_BLOCKS for row in rows for cell in row for x in cell):
        _tf_blocks(table, out)  # a layout table: its cells hold whole sections
        return
    cells = [[_tf_inline(c) for c in row.iter("cell")] for row in rows]
    header = bool(rows) and all(c.get("role") == "head" for c in rows[0].iter("cell"))
    out.extend(Block(s) for s in table_sentences(cells, header))
