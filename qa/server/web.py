"""The document page (a cited passage in its document) and the admin page; `mount` adds
every page, the static files and the stores the pages keep beside the index."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from qa.errors import AccessDeniedError, BuildLockedError, NotFoundError
from qa.server.admin import admin_open, check_token
from qa.server.collections import engine_for
from qa.server.pages import API_ERRORS, ASSETS, render_error, static_url, templates
from qa.server.schemas import Span
from qa.server.sources import (
    Anchored,
    Segment,
    TextQuote,
    describe,
    get_document,
    resolve_link,
    segments,
)

log = logging.getLogger(__name__)

__all__ = ["mount", "render_error", "static_url"]

QuoteParam = Annotated[str | None, Query(max_length=2000)]
ContextParam = Annotated[str | None, Query(max_length=200)]
SpansParam = Annotated[str | None, Query(max_length=1000)]

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


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


def _quote(quote: str | None, prefix: str | None, suffix: str | None) -> TextQuote | None:
    return TextQuote(quote, prefix or "", suffix or "") if quote else None


@router.get("/documents/{doc_id}")
async def document_page(request: Request, doc_id: str, highlight: SpansParam = None,
                        passage: SpansParam = None, span: SpansParam = None, v: ContextParam = None,
                        quote: QuoteParam = None, prefix: ContextParam = None,
                        suffix: ContextParam = None) -> Response:
    """A document with a cited passage, its supporting sentences highlighted and the short
    answer marked inside them. A link with a quote finds its text again if the document
    changed since the link was made."""
    try:
        with engine_for(request).lease() as version:  # ?collection= names one
            doc = get_document(version, doc_id)
            serving = version.name
    except NotFoundError:
        if not quote:
            raise
        return render_error(request, 404, "The linked document is no longer in the corpus. "
                            f"The link quoted: “{quote[:300]}”")
    try:
        found = resolve_link(doc.text, highlight, passage, span, _quote(quote, prefix, suffix))
    except ValueError as exc:
        return render_error(request, 422, f"Cannot highlight that: {exc}")
    where = found.passage
    focus = found.marks[0] if found.marks else where
    context = {
        "doc": doc,
        "segments": with_span(segments(doc.text, where, found.marks), found.span),
        "page": doc.page_at(focus[0]) if focus else None,
        "section": doc.section_at(focus[0]) if focus else None,
        "focused": focus is not None,
        "status": found.status,
        "quote": quote,
        "linked_version": v if v and v != serving else None,
        "token_required": bool(request.app.state.settings.admin_token),
        "uploads_on": bool(request.app.state.settings.admin_token) or admin_open(request),
    }
    return templates.TemplateResponse(request, "document.html", context)


class LocatedOut(BaseModel):
    """A document and the spans a link asks for, found again if the document changed:
    `status` is "exact", "moved" (the quote was found elsewhere) or "gone"."""

    status: str
    id: str
    title: str
    path: str
    text: str
    version: str
    passage: tuple[int, int] | None
    highlight: list[Span]
    span: tuple[int, int] | None


api = APIRouter(tags=["documents"], responses=API_ERRORS)


@api.get("/api/documents/{doc_id}/locate", response_model=LocatedOut)
async def api_locate(request: Request, doc_id: str, highlight: SpansParam = None,
                     passage: SpansParam = None, span: SpansParam = None, quote: QuoteParam = None,
                     prefix: ContextParam = None, suffix: ContextParam = None) -> LocatedOut:
    """What the document page shows for a citation link, as JSON (the page's source panel)."""
    with engine_for(request).lease() as version:  # ?collection= names one
        doc = get_document(version, doc_id)
        serving = version.name
    try:
        found: Anchored = resolve_link(doc.text, highlight, passage, span,
                                       _quote(quote, prefix, suffix))
    except ValueError as exc:
        from starlette.exceptions import HTTPException

        raise HTTPException(422, f"highlight: {exc}") from exc
    return LocatedOut(status=found.status, id=doc.id, title=doc.title, path=doc.path,
                      text=doc.text, version=serving, passage=found.passage,
                      highlight=[describe(doc, a, b) for a, b in found.marks], span=found.span)


def _admin(request: Request, status: int = 200, error: str | None = None,
           token: str | None = None) -> Response:
    state = request.app.state
    build = state.builds.status()
    # Thumbs-down answers hold users' questions: shown when admin pages are open, or to
    # whoever gave the token.
    shown = admin_open(request)
    if not shown and token:
        try:
            check_token(state.settings, token)
            shown = True
        except AccessDeniedError:
            pass
    context = {"build": build, "serving": state.engine.serving_name or "none", "error": error,
               "token_required": bool(state.settings.admin_token),
               "percent": build_percent(build.state, build.phase, build.files_done,
                                        build.files_total),
               "feedback": state.feedback.entries("down", 50) if shown else None}
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
    """Rebuild the index, watch the build's progress, read the answers marked wrong."""
    return await run_in_threadpool(_admin, request)


@router.post("/admin/feedback")
async def admin_feedback(request: Request,
                         token: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """The admin page with the answers marked wrong, for whoever gives the token."""
    try:
        check_token(request.app.state.settings, token or None)
    except AccessDeniedError as exc:
        return await run_in_threadpool(_admin, request, 403, str(exc))
    return await run_in_threadpool(_admin, request, 200, None, token)


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
    """Add the pages, their JSON routes, the static files and the stores kept beside the index
    (conversations, feedback, the catalog of documents) to the app."""
    from qa.server import chat, uploads
    from qa.server.catalog import Catalogs
    from qa.server.conversations import FILE_NAME as CONVERSATIONS
    from qa.server.conversations import ConversationStore
    from qa.server.feedback import FILE_NAME as FEEDBACK
    from qa.server.feedback import FeedbackStore

    settings = app.state.settings
    app.state.conversations = ConversationStore(settings.index_dir / CONVERSATIONS)
    app.state.feedback = FeedbackStore(settings.index_dir / FEEDBACK)
    app.state.catalogs = Catalogs(settings)
    app.mount("/static", StaticFiles(packages=[(ASSETS, "static")]), name="static")
    for r in (chat.api, uploads.api, api):
        app.include_router(r)
    for r in (chat.router, uploads.router, router):
        app.include_router(r)
