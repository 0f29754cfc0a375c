"""The page templates and the helpers they use to show answers, citations and previews."""

from __future__ import annotations

import hashlib
import time
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from qa.server.schemas import AnswerSpanOut, AskResponse, CitationOut, ErrorResponse
from qa.server.sources import answer_parts as _answer_parts

# What the pages' JSON routes may answer besides success, for their OpenAPI documentation.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 403, 404, 409, 413, 415, 422, 429, 503)}

# Templates and static files are package data (the top-level web/ folder, installed as qa.web),
# found through the import system so an installed wheel serves them as a checkout does.
ASSETS = "qa.web"

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.PackageLoader(ASSETS, "templates"),
    autoescape=True))  # never turned off: corpus text is never marked safe


@cache
def _static_hash(name: str) -> str:
    data = resources.files(ASSETS).joinpath("static", name).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, carrying its content hash so browsers never keep a stale copy."""
    return f"/static/{name}?v={_static_hash(name)}"


def answer_parts(turn: AskResponse) -> list[tuple[str, Any]]:
    """The answer text as plain runs and (marker, citation) pairs, for the template."""
    by_n = {c.n: c for c in turn.citations}
    return [(text, by_n.get(n) if n is not None else None)
            for text, n in _answer_parts(turn.answer, set(by_n))]


def short_answer(turn: AskResponse) -> AnswerSpanOut | None:
    """The short answer to show above the sentences, if the turn has one."""
    span = turn.answer_span
    return span if span is not None and span.text.strip() and not turn.abstained else None


def _span_in(parts: list[tuple[str, int | None]], turn: AskResponse) -> tuple[int, int, int] | None:
    """Where the short answer sits in the answer's text: (index of the plain run, start, end).

    The run is one that the marker [n] of the span's citation closes. The citation's text and
    highlight give the exact sentence and offset; failing that, the first occurrence of the
    span's text in such a run; failing that, None (the sentence is shown without a mark).
    """
    span = short_answer(turn)
    if span is None:
        return None
    runs: list[int] = []
    for i, (_, n) in enumerate(parts):
        if n != span.n:
            continue
        j = i - 1
        while j >= 0 and parts[j][1] is not None:  # "sentence [1][2]": skip the other markers
            j -= 1
        if j >= 0 and j not in runs:
            runs.append(j)
    cite = next((c for c in turn.citations if c.n == span.n), None)
    size = len(span.text)
    if cite is not None and cite.document_id == span.document_id:
        for a, b in cite.highlight:
            if not (cite.start <= a <= span.start and span.end <= b <= cite.end):
                continue
            sentence = cite.text[a - cite.start:b - cite.start]
            for i in runs:
                run = parts[i][0].rstrip()
                if sentence and run.endswith(sentence):
                    at = len(run) - len(sentence) + span.start - a
                    if parts[i][0][at:at + size] == span.text:
                        return i, at, at + size
    for i in runs:
        at = parts[i][0].find(span.text)
        if at >= 0:
            return i, at, at + size
    return None


def answer_runs(turn: AskResponse) -> list[tuple[str, str, Any]]:
    """The answer text as (kind, text, citation) runs for the template; kind is "text", "cite"
    or "span" (the short answer inside its sentence)."""
    by_n = {c.n: c for c in turn.citations}
    parts = _answer_parts(turn.answer, set(by_n))
    where = _span_in(parts, turn)
    out: list[tuple[str, str, Any]] = []
    for i, (text, n) in enumerate(parts):
        if n is not None:
            out.append(("cite", text, by_n[n]))
        elif where is not None and where[0] == i:
            _, a, b = where
            out += [(kind, piece, None) for kind, piece in
                    (("text", text[:a]), ("span", text[a:b]), ("text", text[b:])) if piece]
        else:
            out.append(("text", text, None))
    return out


def cite_url(turn: AskResponse, cite: CitationOut) -> str:
    """The citation's link, carrying the short answer's span when it lies in this citation."""
    span = short_answer(turn)
    if (span is None or span.n != cite.n or span.document_id != cite.document_id
            or not 0 <= span.start < span.end):
        return cite.url
    url, hash_, fragment = cite.url.partition("#")
    return f"{url}&span={span.start}-{span.end}{hash_}{fragment}"


def shown_citations(turn: AskResponse) -> list[Any]:
    """The citations the answer's text refers to; all (the closest passages) if it abstained."""
    if turn.abstained:
        return list(turn.citations)
    used = {n for _, n in _answer_parts(turn.answer, {c.n for c in turn.citations}) if n}
    return [c for c in turn.citations if c.n in used]


PREVIEW_CHARS = 400


def cited_text(cite: CitationOut) -> str:
    """What a citation's preview shows: its highlighted sentences, else the passage's start."""
    parts = [cite.text[a - cite.start:b - cite.start] for a, b in cite.highlight
             if cite.start <= a < b <= cite.end]
    text = " … ".join(p.strip() for p in parts if p.strip()) or cite.text.strip()
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1].rstrip() + "…"


def place(cite: CitationOut) -> str:
    """A citation's place in words: path, page and section."""
    out = cite.path
    if cite.page is not None:
        out += f" · page {cite.page}"
    if cite.section:
        out += f" · {cite.section}"
    return out


def when(seconds: float | None) -> str:
    """A time stamp as the pages show it (server's local time, to the minute)."""
    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def size(n: int | None) -> str:
    """A byte count in words."""
    if n is None:
        return "—"
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


templates.env.globals.update(static=static_url, answer_parts=answer_parts,
                             answer_runs=answer_runs, short_answer=short_answer,
                             cite_url=cite_url, shown_citations=shown_citations,
                             cited_text=cited_text, place=place, when=when, size=size)


def render_error(request: Request, status: int, message: str) -> Response:
    """The friendly error page."""
    return templates.TemplateResponse(request, "error.html",
                                      {"status": status, "message": message}, status_code=status)


