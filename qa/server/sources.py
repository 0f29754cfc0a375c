"""Documents as the API and the pages show them: safe lookup by id, highlight spans, segments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from qa.errors import NotFoundError
from qa.index.ingest import Document
from qa.index.store import IndexVersion
from qa.server.schemas import CitationOut, Span

DOC_ID = re.compile(r"[0-9a-f]{16}")  # ingest.document_id: 16 hex characters
MAX_SPANS = 20
_MARKER = re.compile(r"\[(\d{1,3})\]")


def get_document(version: IndexVersion, doc_id: str) -> Document:
    """The document with this id; anything that is not an id is refused before the index is read."""
    if not DOC_ID.fullmatch(doc_id):
        raise NotFoundError("no document with that id (ids are 16 hexadecimal characters)")
    return version.document(doc_id)


def parse_spans(value: str | None, length: int) -> list[tuple[int, int]]:
    """Spans from 'a-b,c-d' inside a text of `length` characters; ValueError says what is wrong."""
    if value is None or not value.strip():
        return []
    parts = value.split(",")
    if len(parts) > MAX_SPANS:
        raise ValueError(f"at most {MAX_SPANS} spans")
    spans = []
    for part in parts:
        m = re.fullmatch(r"\s*(\d{1,9})-(\d{1,9})\s*", part)
        if not m:
            raise ValueError(f"{part.strip()[:40]!r} is not a span; write start-end, e.g. 10-42")
        a, b = int(m.group(1)), int(m.group(2))
        if not a < b <= length:
            raise ValueError(f"span {a}-{b} is not inside the document (0-{length})")
        spans.append((a, b))
    return sorted(spans)


def describe(doc: Document, start: int, end: int) -> Span:
    """A span with its text, page and section."""
    return Span(start=start, end=end, text=doc.text[start:end], page=doc.page_at(start),
                section=doc.section_at(start))


@dataclass
class Segment:
    """A run of document text shown one way: plain, inside the passage, or highlighted."""

    text: str
    kind: str  # "", "passage" or "mark"
    anchor: bool = False  # the first highlighted run, target of '#hl'


def segments(
    text: str, passage: tuple[int, int] | None, marks: list[tuple[int, int]]
) -> list[Segment]:
    """Cut `text` where the passage and highlights begin and end."""
    cuts = {0, len(text)}
    for a, b in marks + ([passage] if passage else []):
        cuts.update((a, b))
    points = sorted(c for c in cuts if 0 <= c <= len(text))
    out: list[Segment] = []
    anchored = False
    for a, b in zip(points, points[1:], strict=False):
        if a == b:
            continue
        if any(s <= a and b <= e for s, e in marks):
            kind = "mark"
        elif passage and passage[0] <= a and b <= passage[1]:
            kind = "passage"
        else:
            kind = ""
        anchor = kind == "mark" and not anchored
        anchored = anchored or anchor
        if out and out[-1].kind == kind and not anchor:
            out[-1].text += text[a:b]
        else:
            out.append(Segment(text[a:b], kind, anchor))
    if not anchored and passage:
        for s in out:
            if s.kind == "passage":
                s.anchor = True
                break
    return out


def answer_parts(text: str, known: set[int]) -> list[tuple[str, int | None]]:
    """An answer's text cut into plain runs and citation markers (only numbers in `known`)."""
    out: list[tuple[str, int | None]] = []
    pos = 0
    for m in _MARKER.finditer(text):
        n = int(m.group(1))
        if n not in known:
            continue
        if m.start() > pos:
            out.append((text[pos:m.start()], None))
        out.append((m.group(0), n))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    return out


# --- links anchored to the text they cite -----------------------------------------------------
#
# A shared link names the cited text itself (W3C text-quote selector: the exact text with a few
# characters before and after it) beside its offsets and the index version. When the document
# has changed since, the quote is looked for again, so an edit above it does not make the link
# highlight the wrong sentence; when it is gone, the page says so.

QUOTE_CONTEXT = 32  # characters of prefix and suffix
MAX_QUOTE = 600  # longer supporting text is quoted by its first sentence only
MAX_MATCHES = 1000  # occurrences of a quote weighed against each other


@dataclass
class TextQuote:
    """The quoted text and what surrounds it (a W3C TextQuoteSelector)."""

    exact: str
    prefix: str = ""
    suffix: str = ""


def quote_of(text: str, start: int, marks: list[tuple[int, int]],
             passage: tuple[int, int]) -> tuple[int, TextQuote]:
    """Where the quote of a citation starts, and the quote: its supporting sentences (or the
    first of them, if together they are long; or the passage's opening, if none), with context
    from the passage `text`, which starts at document offset `start`."""
    if marks:
        a, b = marks[0][0], marks[-1][1]
        if b - a > MAX_QUOTE:
            b = min(marks[0][1], a + MAX_QUOTE)
    else:
        a, b = passage[0], min(passage[1], passage[0] + MAX_QUOTE)
    i, j = max(a - start, 0), max(b - start, 0)
    return a, TextQuote(text[i:j], text[max(i - QUOTE_CONTEXT, 0):i], text[j:j + QUOTE_CONTEXT])


def _common_tail(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _common_head(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def locate(text: str, quote: TextQuote, hint: int) -> int | None:
    """Where `quote` is in `text`: of its exact occurrences, the one whose surroundings agree
    most with its prefix and suffix, then the nearest to `hint`; None if it occurs nowhere."""
    exact = quote.exact
    if not exact:
        return None
    best: tuple[int, int, int] | None = None  # (-agreement, distance, position)
    pos = text.find(exact)
    seen = 0
    while pos >= 0 and seen < MAX_MATCHES:
        agree = (_common_tail(text[max(pos - len(quote.prefix), 0):pos], quote.prefix)
                 + _common_head(text[pos + len(exact):pos + len(exact) + len(quote.suffix)],
                                quote.suffix))
        key = (-agree, abs(pos - hint), pos)
        if best is None or key < best:
            best = key
        seen += 1
        pos = text.find(exact, pos + 1)
    return None if best is None else best[2]


@dataclass
class Anchored:
    """Spans of a link after its quote was looked for in the document as it is now."""

    status: str  # "exact" (where the link said), "moved" (found elsewhere) or "gone"
    passage: tuple[int, int] | None
    marks: list[tuple[int, int]]
    span: tuple[int, int] | None


def _shift(span: tuple[int, int], delta: int, length: int) -> tuple[int, int] | None:
    a, b = max(span[0] + delta, 0), min(span[1] + delta, length)
    return (a, b) if a < b else None


def anchor(text: str, quote: TextQuote, passage: tuple[int, int] | None,
           marks: list[tuple[int, int]], span: tuple[int, int] | None) -> Anchored:
    """The link's spans moved to where its quote is now (all by the same distance), or none
    if the quote is no longer in `text`. Spans are as the link gave them, unchecked."""
    hint = marks[0][0] if marks else passage[0] if passage else 0
    at = locate(text, quote, hint)
    if at is None:
        return Anchored("gone", None, [], None)
    delta = at - hint
    status = "exact" if delta == 0 else "moved"
    moved = [_shift(m, delta, len(text)) for m in marks]
    return Anchored(status, _shift(passage, delta, len(text)) if passage else None,
                    [m for m in moved if m], _shift(span, delta, len(text)) if span else None)


def anchored_url(c: CitationOut, version: str, collection: str | None = None) -> str:
    """The document page's link for a citation: its offsets, the index version they belong to,
    and the quote that finds the text again after the document changes; it names the
    collection when that is not the default."""
    marks = sorted((a, b) for a, b in c.highlight)
    _, q = quote_of(c.text, c.start, marks, (c.start, c.end))
    params = [("collection", collection)] if collection else []
    params.append(("passage", f"{c.start}-{c.end}"))
    if marks:
        params.append(("highlight", ",".join(f"{a}-{b}" for a, b in marks)))
    params += [("v", version), ("prefix", q.prefix), ("quote", q.exact), ("suffix", q.suffix)]
    return f"/documents/{c.document_id}?{urlencode(params, quote_via=quote)}#hl"


MAX_OFFSET = 10**9


def answer_span(value: str | None, length: int,
                marks: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The short answer's span from `start-end`, if it is one span inside a highlighted
    sentence; anything else (malformed, out of range, outside the marks) is ignored."""
    if not value or len(value) > 40:
        return None
    try:
        spans = parse_spans(value, length)
    except ValueError:
        return None
    if len(spans) != 1:
        return None
    a, b = spans[0]
    return (a, b) if any(s <= a and b <= e for s, e in marks) else None


def resolve_link(text: str, highlight: str | None, passage: str | None, span: str | None,
                 quote: TextQuote | None) -> Anchored:
    """The spans a link asks for, in the document as it is now. Without a quote the offsets
    must fit the text (ValueError says why not); with one they are moved to where the quote
    is, or dropped if it is gone."""
    if quote is None or not quote.exact:
        marks = parse_spans(highlight, len(text))
        passages = parse_spans(passage, len(text))[:1]
        return Anchored("exact", passages[0] if passages else None, marks,
                        answer_span(span, len(text), marks))
    marks = parse_spans(highlight, MAX_OFFSET)
    passages = parse_spans(passage, MAX_OFFSET)[:1]
    short = answer_span(span, MAX_OFFSET, marks)
    found = anchor(text, quote, passages[0] if passages else None, marks, short)
    if found.span is not None and not any(a <= found.span[0] and found.span[1] <= b
                                          for a, b in found.marks):
        found.span = None
    return found
