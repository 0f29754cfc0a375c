"""The chat pages, rendered on the server so they work without JavaScript."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter, ValidationError

from qa.admin import check_token
from qa.errors import AccessDeniedError, BadQuestionError, BuildLockedError
from qa.followup import ask_in_conversation
from qa.limits import work
from qa.observability import note
from qa.schemas import MAX_HISTORY_TURNS, MAX_MESSAGE_CHARS, AskResponse
from qa.sources import answer_parts as _answer_parts
from qa.sources import get_document, parse_spans, segments

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"
THREAD = TypeAdapter(list[AskResponse])

templates = Jinja2Templates(directory=WEB_DIR / "templates")
# Starlette turns autoescaping on for .html templates; say so explicitly all the same.
templates.env.autoescape = True


@cache
def _static_hash(name: str, mtime_ns: int) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, carrying its content hash so browsers never keep a stale copy."""
    path = STATIC_DIR / name
    return f"/static/{name}?v={_static_hash(name, path.stat().st_mtime_ns)}"


def answer_parts(turn: AskResponse) -> list[tuple[str, Any]]:
    """The answer text as plain runs and (marker, citation) pairs, for the template."""
    by_n = {c.n: c for c in turn.citations}
    return [(text, by_n.get(n) if n is not None else None)
            for text, n in _answer_parts(turn.answer, set(by_n))]


def shown_citations(turn: AskResponse) -> list[Any]:
    """The citations the answer's text refers to; all (the closest passages) if it abstained."""
    if turn.abstained:
        return list(turn.citations)
    used = {n for _, n in _answer_parts(turn.answer, {c.n for c in turn.citations}) if n}
    return [c for c in turn.citations if c.n in used]


templates.env.globals.update(static=static_url, answer_parts=answer_parts,
                             shown_citations=shown_citations)


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
) -> Response:
    """A question posted by the plain form: the whole thread rendered again with its answer."""
    turns = _thread(thread)
    try:
        answer = await work(request, ask_in_conversation, request.app.state.engine,
                            question, _history(turns))
    except BadQuestionError as exc:
        return _chat(request, turns, status=422, error=str(exc), draft=question[:10_000])
    note(request, abstained=answer.abstained, index_version=answer.index_version)
    return _chat(request, [*turns, AskResponse.of(answer)][-MAX_HISTORY_TURNS:])


@router.get("/documents/{doc_id}")
async def document_page(request: Request, doc_id: str, highlight: str | None = None,
                        passage: str | None = None) -> Response:
    """A document with a cited passage and its supporting sentences highlighted."""
    doc = get_document(request.app.state.engine.version, doc_id)
    try:
        marks = parse_spans(highlight, len(doc.text))
        passages = parse_spans(passage, len(doc.text))[:1]
    except ValueError as exc:
        return render_error(request, 422, f"Cannot highlight that: {exc}")
    span = passages[0] if passages else None
    focus = marks[0] if marks else span
    context = {
        "doc": doc,
        "segments": segments(doc.text, span, marks),
        "page": doc.page_at(focus[0]) if focus else None,
        "section": doc.section_at(focus[0]) if focus else None,
        "focused": focus is not None,
    }
    return templates.TemplateResponse(request, "document.html", context)


def _admin(request: Request, status: int = 200, error: str | None = None) -> Response:
    state = request.app.state
    build = state.builds.status()
    context = {"build": build, "serving": state.engine.version.name, "error": error,
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


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site (browsers send Origin on cross-site posts)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


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
        if not same_origin(request):
            raise AccessDeniedError("a rebuild can only be started from this site's own page")
        check_token(request.app.state.settings, token or None)
        await run_in_threadpool(request.app.state.builds.start, bool(full))
    except AccessDeniedError as exc:
        return _admin(request, 403, str(exc))
    except BuildLockedError as exc:
        return _admin(request, 409, str(exc))
    return RedirectResponse("/admin", status_code=303)


def mount(app: FastAPI) -> None:
    """Add the pages and the static files to the app."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
