"""The chat pages, rendered on the server so they work without JavaScript."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError

from qa.errors import AccessDeniedError, BadQuestionError, BuildLockedError
from qa.search.followup import ask_in_conversation
from qa.server.admin import check_token
from qa.server.collections import collection_of, engine_for
from qa.server.limits import work
from qa.server.observability import note
from qa.server.schemas import (
    MAX_HISTORY_TURNS,
    MAX_MESSAGE_CHARS,
    AnswerSpanOut,
    AskResponse,
    CitationOut,
)
from qa.server.sources import Segment, get_document, parse_spans, segments
from qa.server.sources import answer_parts as _answer_parts

log = logging.getLogger(__name__)

# Templates and static files are package data (the top-level web/ folder, installed as qa.web),
# found through the import system so an installed wheel serves them as a checkout does.
ASSETS = "qa.web"
THREAD = TypeAdapter(list[AskResponse])

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


templates.env.globals.update(static=static_url, answer_parts=answer_parts,
                             answer_runs=answer_runs, short_answer=short_answer,
                             cite_url=cite_url, shown_citations=shown_citations)


def render_error(request: Request, status: int, message: str) -> Response:
    """The friendly error page."""
    return templates.TemplateResponse(request, "error.html",
                                      {"status": status, "message": message}, status_code=status)


def _thread(raw: str | None) -> list[AskResponse]:
    """Earlier turns carried in the form; a damaged or forged field starts a new conversation."""
    if not raw:
        return []
    try:
        return THREAD.validate_json(raw)[-MAX_HISTORY_TURNS:]
    except ValidationError:
        log.info("ignored an unreadable conversation field")
        return []


def _history(thread: list[AskResponse]) -> list[tuple[str, str]]:
    history: list[tuple[str, str]] = []
    for t in thread:
        history += [("user", t.question[:MAX_MESSAGE_CHARS]),
                    ("assistant", t.answer[:MAX_MESSAGE_CHARS])]
    return history[-MAX_HISTORY_TURNS:]


def _chat(request: Request, thread: list[AskResponse], status: int = 200,
          error: str | None = None, draft: str = "") -> Response:
    thread_json = json.dumps([t.model_dump(mode="json") for t in thread], ensure_ascii=False)
    return templates.TemplateResponse(
        request, "chat.html",
        {"thread": thread, "thread_json": thread_json, "error": error, "draft": draft,
         "max_chars": request.app.state.settings.max_question_chars},
        status_code=status)


router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/")
async def chat_page(request: Request) -> Response:
    """An empty conversation."""
    return _chat(request, [])


@router.post("/")
async def chat_post(
    request: Request,
    question: Annotated[str, Form(max_length=100_000)] = "",
    thread: Annotated[str, Form(max_length=400_000)] = "",
    collection: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A question posted by the plain form: the whole thread rendered again with its answer."""
    turns = _thread(thread)
    served = collection_of(request, collection)
    try:
        answer = await work(request, ask_in_conversation, served.engine,
                            question, _history(turns))
    except BadQuestionError as exc:
        return _chat(request, turns, status=422, error=str(exc), draft=question[:10_000])
    note(request, abstained=answer.abstained, index_version=answer.index_version)
    turn = AskResponse.of(answer, served.link_name, served.name)
    return _chat(request, [*turns, turn][-MAX_HISTORY_TURNS:])


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


@dataclass
class Shown:
    """A segment of the document page, cut again where the short answer begins and ends."""

    kind: str
    anchor: bool
    pieces: list[tuple[str, bool]]  # (text, is the short answer)


def with_span(segs: list[Segment], span: tuple[int, int] | None) -> list[Shown]:
    """The segments with the short answer marked inside the highlighted ones."""
    out: list[Shown] = []
    pos = 0
    for s in segs:
        a, b = pos, pos + len(s.text)
        pos = b
        pieces = [(s.text, False)]
        if span is not None and s.kind == "mark" and a < span[1] and span[0] < b:
            x, y = max(span[0], a) - a, min(span[1], b) - a
            pieces = [(piece, strong) for piece, strong in
                      ((s.text[:x], False), (s.text[x:y], True), (s.text[y:], False)) if piece]
        out.append(Shown(s.kind, s.anchor, pieces))
    return out


@router.get("/documents/{doc_id}")
async def document_page(request: Request, doc_id: str, highlight: str | None = None,
                        passage: str | None = None, span: str | None = None) -> Response:
    """A document with a cited passage, its supporting sentences highlighted and the short
    answer marked inside them."""
    with engine_for(request).lease() as version:  # ?collection= names one
        doc = get_document(version, doc_id)
    try:
        marks = parse_spans(highlight, len(doc.text))
        passages = parse_spans(passage, len(doc.text))[:1]
    except ValueError as exc:
        return render_error(request, 422, f"Cannot highlight that: {exc}")
    where = passages[0] if passages else None
    focus = marks[0] if marks else where
    context = {
        "doc": doc,
        "segments": with_span(segments(doc.text, where, marks),
                              answer_span(span, len(doc.text), marks)),
        "page": doc.page_at(focus[0]) if focus else None,
        "section": doc.section_at(focus[0]) if focus else None,
        "focused": focus is not None,
    }
    return templates.TemplateResponse(request, "document.html", context)


def _admin(request: Request, status: int = 200, error: str | None = None) -> Response:
    state = request.app.state
    build = state.builds.status()
    context = {"build": build, "serving": state.engine.serving_name or "none", "error": error,
               "token_required": bool(state.settings.admin_token),
               "percent": build_percent(build.state, build.phase, build.files_done,
                                        build.files_total)}
    return templates.TemplateResponse(request, "admin.html", context, status_code=status)


def build_percent(state: str, phase: str | None, done: int, total: int) -> int:
    """A rough share of the build done, for the progress bar (the page's script does the same)."""
    if state in ("succeeded", "failed"):
        return 100
    if state != "running":
        return 0
    if phase == "reading":
        return 5 + (60 * done // total if total else 0)
    return {"starting": 2, "embedding": 75, "writing": 95}.get(phase or "", 5)


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    """Rebuild the index and watch the build's progress."""
    return _admin(request)


@router.post("/admin")
async def admin_post(
    request: Request,
    token: Annotated[str, Form(max_length=1000)] = "",
    full: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """A rebuild started by the plain form (the page's script uses the JSON API instead)."""
    try:
        check_token(request.app.state.settings, token or None)
        await run_in_threadpool(request.app.state.builds.start, bool(full))
    except AccessDeniedError as exc:
        return _admin(request, 403, str(exc))
    except BuildLockedError as exc:
        return _admin(request, 409, exc.public or str(exc))
    return RedirectResponse("/admin", status_code=303)


def mount(app: FastAPI) -> None:
    """Add the pages and the static files to the app."""
    app.mount("/static", StaticFiles(packages=[(ASSETS, "static")]), name="static")
    app.include_router(router)
