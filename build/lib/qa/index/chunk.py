"""Sentence-aware chunking: sentences packed to a word-piece budget, with overlap and offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import syntok.segmenter as segmenter

from qa.index.ingest import Document


class TokenCounter(Protocol):
    """Measures text in the embedding model's word pieces."""

    def count(self, texts: Sequence[str]) -> list[int]: ...

    def cut(self, text: str, budget: int) -> list[tuple[int, int]]: ...


@dataclass
class Chunk:
    """A slice of a document: `doc.text[start:end] == text`."""

    doc_id: str
    ord: int
    start: int
    end: int
    text: str
    page: int | None = None
    section: str | None = None
    tokens: int = 0
    # Sentence spans inside the chunk, in document offsets (an over-long sentence's pieces count
    # as sentences); empty when unknown, and then recomputed where needed.
    sentences: tuple[tuple[int, int], ...] = ()


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, shifted by `offset`; never crosses a blank line."""
    spans: list[tuple[int, int]] = []
    for paragraph in segmenter.analyze(text):
        for sentence in paragraph:
            tokens = [t for t in sentence if t.value]
            if not tokens:
                continue
            start = tokens[0].offset
            last = tokens[-1]
            end = last.offset + len(last.value)
            if text[last.offset : end] != last.value:
                # syntok rewrote the token (e.g. joined a hyphenated line break): find its end.
                end = min(len(text), max(end, last.offset + 1))
            end = min(end, len(text))
            if end > start:
                spans.append((start + offset, end + offset))
    return _cover_gaps(text, spans, offset)


def _cover_gaps(text: str, spans: list[tuple[int, int]], offset: int) -> list[tuple[int, int]]:
    """Keep any non-space text syntok dropped, so no content falls between sentences."""
    out: list[tuple[int, int]] = []
    pos = offset
    for start, end in spans:
        if start < pos:
            start = pos
        if end <= start:
            continue
        gap = text[pos - offset : start - offset]
        if gap.strip():
            lead = len(gap) - len(gap.lstrip())
            out.append((pos + lead, pos + len(gap.rstrip())))
        out.append((start, end))
        pos = end
    tail = text[pos - offset :]
    if tail.strip():
        lead = len(tail) - len(tail.lstrip())
        out.append((pos + lead, pos + len(tail.rstrip())))
    return out


def _sections(doc: Document) -> list[tuple[int, int]]:
    """Spans of text between headings; each heading opens the section that follows it."""
    heading_ends = {h.start: h.end for h in doc.headings}
    cuts = sorted({0, *heading_ends})
    bounds = [*cuts, len(doc.text)]
    sections: list[tuple[int, int]] = []
    pending: int | None = None  # start of a run of headings with no text of their own
    for a, b in zip(bounds, bounds[1:], strict=False):
        if not doc.text[a:b].strip():
            continue
        start = a if pending is None else pending
        if a in heading_ends and not doc.text[heading_ends[a]:b].strip():
            pending = start
            continue
        sections.append((start, b))
        pending = None
    if pending is not None:
        sections.append((pending, len(doc.text)))
    return sections


def chunk_document(
    doc: Document, counter: TokenCounter, budget: int = 128, overlap: int = 1
) -> list[Chunk]:
    """Pack a document's sentences into chunks of at most `budget` word pieces."""
    text = doc.text
    chunks: list[Chunk] = []
    for sec_start, sec_end in _sections(doc):
        spans = sentence_spans(text[sec_start:sec_end], sec_start)
        if not spans:
            continue
        sizes = counter.count([text[a:b] for a, b in spans])
        units: list[tuple[int, int, int]] = []
        for (a, b), n in zip(spans, sizes, strict=True):
            if n <= budget:
                units.append((a, b, n))
                continue
            # A sentence over budget (a huge line, a table) is cut between words.
            pieces = [(a + p, a + q) for p, q in counter.cut(text[a:b], budget)]
            piece_sizes = counter.count([text[p:q] for p, q in pieces])
            units.extend((p, q, m) for (p, q), m in zip(pieces, piece_sizes, strict=True))
        i = 0
        while i < len(units):
            j, total = i, 0
            while j < len(units) and (j == i or total + units[j][2] <= budget):
                total += units[j][2]
                j += 1
            start, end = units[i][0], units[j - 1][1]
            chunks.append(
                Chunk(
                    doc_id=doc.id,
                    ord=len(chunks),
                    start=start,
                    end=end,
                    text=text[start:end],
                    page=doc.page_at(start),
                    section=doc.section_at(units[j - 1][0]),
                    tokens=total,
                    sentences=tuple((u[0], u[1]) for u in units[i:j]),
                )
            )
            if j >= len(units):
                break
            # Step back `overlap` sentences, but always move forward.
            i = max(i + 1, j - overlap)
    return chunks


def embedding_text(chunk: Chunk, title: str, with_context: bool) -> str:
    """What the encoder sees for a chunk: optionally its title and section first."""
    if not with_context:
        return chunk.text
    context = " > ".join(x for x in (title, chunk.section) if x)
    return f"{context}\n{chunk.text}" if context else chunk.text
