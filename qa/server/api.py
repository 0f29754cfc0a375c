"""The HTTP app: JSON API, OpenAI-compatible routes and chat pages over one engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa import __version__
from qa.config import Settings
from qa.errors import (
    IndexCorruptError,
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
from qa.server.responses import (
    CSP,
    Guard,
    error_response,
    install_error_handlers,
    limit_response,
)
from qa.server.schemas import (
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

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 413, 422, 429, 503)}
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
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(collections.router, responses=ERRORS)
    app.include_router(openai_api.router)
    app.include_router(admin.router, responses=ERRORS)
    app.include_router(observability.router)
    docs.mount(app, CSP)
    web.mount(app)
    return app
