"""Admin endpoints: start a rebuild, read its status, follow it live; guarded by a token."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from qa.config import Settings
from qa.errors import AccessDeniedError
from qa.index.rebuild import BuildManager, BuildStatus
from qa.server.collections import collection_of
from qa.server.limits import stream
from qa.server.schemas import AskResponse, ErrorResponse


class RebuildRequest(BaseModel):
    """Options of a rebuild."""

    model_config = ConfigDict(extra="forbid")

    full: bool = Field(False, strict=True, description="Rebuild every document, not only changes.")


class RebuildStarted(BaseModel):
    build_id: str
    status_url: str = "/api/index/status"
    stream_url: str = "/api/index/status/stream"


class StatusOut(BaseModel):
    """The current or last build: state, phase, progress, timing and the last report."""

    state: str
    build_id: str | None
    full: bool
    phase: str | None
    files_done: int
    files_total: int
    chunks_embedded: int
    elapsed_seconds: float
    eta_seconds: float | None
    error: str | None
    version: str | None
    serving_version: str
    last_report: dict[str, Any] | None


class ReloadOut(BaseModel):
    """Whether the server switched versions, and the version it serves now."""

    reloaded: bool
    serving_version: str


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(settings: Settings, given: str | None) -> None:
    """AccessDeniedError unless `given` is the configured token (or none is set, on loopback)."""
    token = settings.admin_token
    if not token:
        if is_loopback(settings.host):
            return
        raise AccessDeniedError("admin endpoints are off: set QA_ADMIN_TOKEN, or bind to 127.0.0.1")
    # Constant-time comparison, so response timing says nothing about the token.
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise AccessDeniedError("a valid 'Authorization: Bearer <token>' header is required")


def check_admin(request: Request) -> None:
    """Allow the request if it carries the configured token, or no token is set on loopback."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    check_token(request.app.state.settings, value if scheme.lower() == "bearer" else None)


def _status_out(request: Request, status: BuildStatus) -> StatusOut:
    data = {k: v for k, v in asdict(status).items() if k in StatusOut.model_fields}
    return StatusOut(**data, serving_version=collection_of(request).engine.serving_name or "")


def builds_of(request: Request) -> BuildManager:
    """The builds of the collection named by `?collection=` (the default without one)."""
    return collection_of(request).builds


router = APIRouter(tags=["index"], responses={403: {"model": ErrorResponse},
                                              409: {"model": ErrorResponse}})


@router.post("/api/index/rebuild", response_model=RebuildStarted, status_code=202)
async def rebuild(request: Request, body: RebuildRequest | None = None) -> RebuildStarted:
    """Start a background rebuild (incremental unless `full`); 409 if one is running."""
    check_admin(request)
    build_id = await run_in_threadpool(builds_of(request).start, bool(body and body.full))
    named = collection_of(request).link_name
    where = f"?collection={named}" if named else ""
    return RebuildStarted(build_id=build_id, status_url=f"/api/index/status{where}",
                          stream_url=f"/api/index/status/stream{where}")


@router.post("/api/index/reload", response_model=ReloadOut)
async def reload(request: Request) -> ReloadOut:
    """Switch now to the index version CURRENT names (say, after a CLI rebuild)."""
    check_admin(request)
    engine = collection_of(request).engine
    reloaded = await run_in_threadpool(engine.reload_if_changed, True)
    return ReloadOut(reloaded=reloaded, serving_version=engine.version.name)


@router.get("/api/index/status", response_model=StatusOut)
async def status(request: Request) -> StatusOut:
    """State, phase, progress and timing of the current or last build."""
    return _status_out(request, builds_of(request).status())


@router.get("/api/index/status/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def status_stream(request: Request) -> EventSourceResponse:
    """The same status as server-sent events, one event per change (and one a second while a
    build runs), until the build ends."""
    manager = builds_of(request)

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Polled on the event loop: a stream holds no thread, only a cheap status read; it ends
        # when the client leaves or the server stops (sse-starlette cancels it).
        loop = asyncio.get_running_loop()
        seen, sent = -1, 0.0
        while True:
            current = manager.status()
            if current.updates != seen or (current.state == "running"
                                           and loop.time() - sent >= 1.0):
                seen, sent = current.updates, loop.time()
                payload = _status_out(request, current).model_dump()
                yield ServerSentEvent(json.dumps(payload), event="status")
            if current.state != "running" or manager.stopping:
                return
            await asyncio.sleep(0.2)

    return stream(request, events(), headers={"Cache-Control": "no-store"})


class FeedbackEntryOut(BaseModel):
    """Feedback on one answer, with the answer as it was given."""

    conversation_id: str
    n: int
    rating: Literal["up", "down"]
    comment: str
    updated: float
    turn: AskResponse


def admin_open(request: Request) -> bool:
    """Whether admin pages may show their content without a token (no token set, loopback)."""
    try:
        check_token(request.app.state.settings, None)
    except AccessDeniedError:
        return False
    return True


@router.get("/api/feedback", response_model=list[FeedbackEntryOut], tags=["feedback"])
async def feedback_list(
    request: Request,
    rating: Literal["up", "down"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FeedbackEntryOut]:
    """Feedback given on answers, newest first (admin only: it holds users' questions)."""
    check_admin(request)
    entries = await run_in_threadpool(request.app.state.feedback.entries, rating, limit)
    return [FeedbackEntryOut(conversation_id=e.conversation, n=e.n, rating=e.rating,
                             comment=e.comment, updated=e.updated, turn=e.turn)
            for e in entries]
