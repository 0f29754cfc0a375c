"""How failures become responses: the JSON error body or the error page, the handlers that map
qa's errors and FastAPI's to them, and the guard that caps bodies and sets security headers."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from qa.search.engine import unavailable
from qa.server import web
from qa.server.limits import LimitError
from qa.server.schemas import MAX_BODY_BYTES

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/healthz", "/openapi.json")
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


def install_error_handlers(app: FastAPI) -> None:
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
