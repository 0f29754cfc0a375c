"""Documents as the API and the pages show them: safe lookup by id, highlight spans, segments."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.errors import NotFoundError
from qa.index.ingest import Document
from qa.index.store import IndexVersion
from qa.server.schemas import Span

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
