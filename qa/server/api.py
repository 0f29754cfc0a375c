"""The HTTP app: JSON API, OpenAI-compatible routes and chat pages over one engine."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa import __version__
from qa.config import Settings
from qa.errors import (
    AccessDeniedError,
    BadFilterError,
    BadQuestionError,
    BuildLockedError,
    IndexCorruptError,
    IndexIncompatibleError,
    IndexMissingError,
    NotFoundError,
    QAError,
)
from qa.index.embed import Embedder, load_embedder
from qa.library import Index, shared_embedder
from qa.search.engine import Engine, unavailable
from qa.search.filters import Filter
from qa.search.followup import ask_in_conversation
from qa.server import admin, collections, docs, observability, openai_api, uploads, web
from qa.server.collections import (
    collection_of,
    collection_settings,
    engine_for,
    load_collections,
    poll_index,
)
from qa.server.edge import Edge
from qa.server.limits import LimitError, ProxyClient, StreamGate, Throttle, WorkGate, work
from qa.server.observability import Metrics, RequestLog, note
from qa.server.schemas import (
    MAX_BODY_BYTES,
    AskRequest,
    AskResponse,
    DocumentOut,
    DocumentSummary,
    ErrorResponse,
    Health,
    IndexSummary,
)
from qa.server.sources import describe, get_document, parse_spans

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/healthz", "/openapi.json")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 422, 429, 503)}
# Every page, the API reference pages too (they add a nonce for their one inline script).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _error_status(exc: QAError) -> tuple[int, str]:
    if isinstance(exc, LimitError):
        return exc.status, exc.kind
    if isinstance(exc, BadFilterError):
        return 422, "bad_filter"
    if isinstance(exc, BadQuestionError):
        return 422, "bad_question"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, IndexMissingError | IndexCorruptError | IndexIncompatibleError):
        return 503, "index_unavailable"
    if isinstance(exc, BuildLockedError):
        return 409, "busy"
    if isinstance(exc, AccessDeniedError):
        return 403, "forbidden"
    return 400, "bad_request"


def _log_progress() -> Callable[[str, int, int], None]:
    last = {"read": -1}

    def tick(phase: str, done: int, total: int) -> None:
        if phase == "read" and total:
            tenth = done * 10 // total
            if tenth != last["read"]:
                last["read"] = tenth
                log.info("indexing: %d of %d files read", done, total)
        elif phase == "embed":
            log.info("indexing: %d chunks embedded", done)
        elif phase == "write" and done == 0:
            log.info("indexing: writing the index")

    return tick


def load_index(settings: Settings, embedder_factory: Callable[[], Embedder]) -> Index:
    """The index the server answers from, built first if missing, with the model loaded."""
    index = Index.load(settings, embedder_factory, progress=_log_progress())
    index.load_model()
    if index.engine.serving_name is not None:
        log.info("serving index version %s", index.engine.serving_name)
    return index


def wants_html(request: Request) -> bool:
    """Whether an error should be a page (a browser on a page route) rather than JSON."""
    if request.url.path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(request: Request, status: int, kind: str, message: str,
                   details: list[dict[str, Any]] | None = None) -> Response:
    """The JSON error body, or the friendly page for a browser."""
    if wants_html(request):
        return web.render_error(request, status, message)
    body: dict[str, Any] = {"type": kind, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def limit_response(request: Request, exc: LimitError) -> Response:
    """The error for a request refused under load, with the Retry-After it should wait."""
    response = error_response(request, exc.status, exc.kind, str(exc))
    response.headers["retry-after"] = str(exc.retry_after)
    return response


def _validation_message(errors: list[dict[str, Any]]) -> tuple[int, str, str, list[dict[str, Any]]]:
    details = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                "type": str(e.get("type", ""))} for e in errors]
    if any(d["type"] == "json_invalid" for d in details):
        return 400, "invalid_json", "the request body is not valid JSON", details
    if details and details[0]["loc"] == ["body"] and details[0]["type"] == "missing":
        return 422, "invalid_request", "the request body is empty; send a JSON object", details
    parts = []
    for d in details[:3]:
        where = ".".join(x for x in d["loc"] if x != "body") or "body"
        parts.append(f"{where}: {d['msg']}")
    return 422, "invalid_request", "; ".join(parts) or "invalid request", details


def _install_error_handlers(app: FastAPI) -> None:
    async def on_qa_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QAError)
        if isinstance(exc, LimitError):
            return limit_response(request, exc)
        status, kind = _error_status(exc)
        if exc.public is not None:  # the full message may name server files: log it only
            log.warning("%s %s: %s", request.method, request.url.path, exc)
            return error_response(request, status, kind, exc.public)
        return error_response(request, status, kind, str(exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status, kind, message, details = _validation_message(list(exc.errors()))
        return error_response(request, status, kind, message, details)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        return error_response(request, exc.status_code, kind, message)

    async def on_damaged_index(request: Request, exc: Exception) -> Response:
        # A served SQLite file damaged after it was verified: the index, not the request, is bad.
        log.error("index error on %s %s: %s", request.method, request.url.path, exc)
        error = unavailable(IndexCorruptError(str(exc)))
        return error_response(request, 503, "index_unavailable", str(error))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "internal error; see the server log")

    app.add_exception_handler(QAError, on_qa_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(sqlite3.DatabaseError, on_damaged_index)
    app.add_exception_handler(Exception, on_crash)


class Guard:
    """ASGI middleware: refuses oversized bodies and adds security headers to every response."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES,
                 larger: dict[str, int] | None = None):
        self.app = app
        self.max_body = max_body
        self.larger = larger or {}  # path -> its own limit (file uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_body)
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            msg = f"the request body is over the {limit // 1024} KiB limit"
            resp = JSONResponse({"error": {"type": "too_large", "message": msg}}, status_code=413)
            await resp(scope, receive, send)
            return
        received = 0

        async def receive_limited() -> Message:
            # A chunked body has no Content-Length to check up front, so count it as it arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        413, f"the request body is over the {limit // 1024} KiB limit")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
                # A page that set its own policy (the API reference, with its nonce) keeps it.
                if not any(name.lower() == b"content-security-policy" for name, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive_limited, send_with_headers)


def engine_of(request: Request) -> Engine:
    """The engine the app loaded at start-up."""
    engine: Engine = request.app.state.engine
    return engine


router = APIRouter(responses=ERRORS)
CollectionParam = Annotated[str | None, Query(
    max_length=64, description="The collection to read (see /api/collections); default the "
    "first.")]


@router.post("/api/ask", response_model=AskResponse, tags=["ask"],
             summary="Answer a question with citations")
async def api_ask(body: AskRequest, request: Request) -> AskResponse:
    """Answer from the corpus; `[n]` in `answer` refers to `citations[n-1]`. `collection`
    picks the corpus, `filters` the documents searched within it."""
    history = [(m.role, m.content) for m in body.history]
    served = collection_of(request, body.collection)
    where = Filter.of(body.filters.documents, body.filters.paths) if body.filters else None
    answer = await work(request, ask_in_conversation, served.engine, body.question,
                        history, body.k, where)
    note(request, abstained=answer.abstained, index_version=answer.index_version)
    return AskResponse.of(answer, served.link_name, served.name)


@router.get("/api/documents", response_model=list[DocumentSummary], tags=["documents"])
async def api_documents(request: Request,
                        collection: CollectionParam = None) -> list[DocumentSummary]:
    """Every indexed document, by path."""
    with engine_for(request, collection).lease() as version:
        rows = version.documents()
    return [DocumentSummary(**r) for r in rows]


@router.get("/api/documents/{doc_id}", response_model=DocumentOut, tags=["documents"])
async def api_document(
    doc_id: str, request: Request,
    highlight: Annotated[str | None, Query(
        max_length=1000, description="Spans to echo with their page and section: 'a-b[,c-d]'.",
        examples=["120-245"])] = None,
    collection: CollectionParam = None,
) -> DocumentOut:
    """A document's full clean text (the text citation offsets point into)."""
    with engine_for(request, collection).lease() as version:
        doc = get_document(version, doc_id)
    try:
        spans = parse_spans(highlight, len(doc.text))
    except ValueError as exc:
        raise StarletteHTTPException(422, f"highlight: {exc}") from exc
    return DocumentOut(id=doc.id, title=doc.title, path=doc.path, text=doc.text,
                       pages=[(a, b, n) for a, b, n in doc.pages],
                       highlight=[describe(doc, a, b) for a, b in spans])


@router.get("/api/index", response_model=IndexSummary, tags=["index"])
async def api_index(request: Request, collection: CollectionParam = None) -> IndexSummary:
    """What the served index was built from."""
    version = engine_for(request, collection).version
    m = version.manifest
    counts = m.get("counts", {})
    return IndexSummary(version=version.name, qa_version=m.get("qa_version"),
                        model=m.get("model", {}), chunker=m.get("chunker", {}),
                        documents=counts.get("documents", len(m.get("documents", {}))),
                        chunks=counts.get("chunks", version.n_chunks),
                        skipped=m.get("skipped", []), built_at=m.get("built_at"),
                        build_seconds=m.get("build_seconds"))


@router.get("/healthz", response_model=Health, tags=["index"])
async def healthz(request: Request) -> Health:
    """Ready: the index and model are loaded; 503 while the index cannot answer."""
    version = engine_of(request).version  # the index error (503) if none is loaded
    if not version.intact():
        raise unavailable(IndexCorruptError("served files changed"))
    counts = version.manifest.get("counts", {})
    return Health(status="ok", index_version=version.name,
                  documents=counts.get("documents", 0), chunks=version.n_chunks)


def create_app(
    settings: Settings, embedder_factory: Callable[[], Embedder] | None = None
) -> FastAPI:
    """The web app; the index (built if missing) and the model load once, at start-up."""
    # One model for every collection; its ONNX export is cached beside the first one's index.
    first = collection_settings(settings)[0][1]
    factory = shared_embedder(embedder_factory or (lambda: load_embedder(first)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served = await run_in_threadpool(load_collections, settings, factory, load_index)
        app.state.collections = served
        # The default collection's parts, for code that knows of one corpus only.
        app.state.index = served.default.index
        app.state.engine = served.default.engine
        app.state.builds = served.default.builds
        app.state.gate = WorkGate(settings.workers, settings.max_queue, settings.ask_timeout)
        app.state.streams = StreamGate(settings.max_streams)
        pollers = []
        if settings.reload_interval > 0:
            pollers = [asyncio.create_task(poll_index(c.engine, settings.reload_interval))
                       for c in served]
        try:
            yield
        finally:
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            # A running build is cancelled, and abandoned if it does not stop at once (say, it
            # hangs in the model): its thread is a daemon and its temporary folder is removed
            # by the next build.
            for c in served:
                c.builds.cancel()
            for c in served:
                c.builds.join(timeout=2)
            await run_in_threadpool(app.state.gate.close)
            served.close()

    app = FastAPI(
        title="qa",
        version=__version__,
        summary="Answers questions from a document corpus, citing the passage behind every claim.",
        description=(
            f"Limits: a question has at most {settings.max_question_chars} characters; `history` "
            "at most 20 turns of at most 4000 characters; `k` is 1 to 20; request bodies at most "
            f"512 KiB. Each client may ask {settings.ask_rate:g} questions a second "
            f"(bursts of {settings.ask_burst}); beyond that the answer is 429 with `Retry-After`. "
            "When every worker is busy and the waiting line is full the answer is 503 with "
            "`Retry-After`. Errors are `{\"error\": {\"type\", \"message\"}}`."),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.metrics.watch(app.state)

    async def refuse(scope: Any, exc: LimitError) -> Response:
        return limit_response(Request(scope), exc)

    async def reject(scope: Any, status: int, kind: str, message: str) -> Response:
        return error_response(Request(scope), status, kind, message)

    # Added innermost first: the log sees every response, the headers go on every response, and
    # the client's address is settled (behind a trusted proxy) before anything looks at it.
    app.add_middleware(Throttle, settings=settings, refuse=refuse)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-request-id"],
                           expose_headers=["x-request-id", "retry-after"], max_age=600)
    app.add_middleware(Edge, settings=settings, refuse=reject)
    app.add_middleware(Guard, larger=uploads.body_limits(settings))
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    app.add_middleware(ProxyClient, proxies=settings.trusted_proxies)
    _install_error_handlers(app)
    app.include_router(router)
    app.include_router(collections.router, responses=ERRORS)
    app.include_router(openai_api.router)
    app.include_router(admin.router, responses=ERRORS)
    app.include_router(observability.router)
    docs.mount(app, CSP)
    web.mount(app)
    return app
