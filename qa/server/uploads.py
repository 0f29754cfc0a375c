"""The collection's documents in the browser: listed on the empty chat page and the documents
page with example questions, added by upload and removed, by whoever may rebuild the index."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from qa.config import Settings
from qa.errors import AccessDeniedError, BuildLockedError, QAError
from qa.index.ingest import document_id
from qa.server.admin import admin_open, check_token
from qa.server.catalog import Catalog, Catalogs
from qa.server.intake import (
    ALLOWED,
    MAX_FILES,
    Rebuilds,
    UploadError,
    check_content,
    find_path,
    remove_file,
    safe_name,
    write_file,
)
from qa.server.pages import API_ERRORS, templates

log = logging.getLogger(__name__)


class DocumentEntryOut(BaseModel):
    id: str
    title: str
    path: str
    chars: int
    chunks: int
    bytes: int | None
    indexed_at: float | None
    url: str


class CollectionOut(BaseModel):
    """The served index version's documents and example questions (null while worked out)."""

    version: str
    documents: list[DocumentEntryOut]
    examples: list[str] | None


def catalog_of(request: Request) -> Catalog | None:
    """The served version's catalog, or None while no index can be served."""
    catalogs: Catalogs = request.app.state.catalogs
    try:
        return catalogs.get(request.app.state.engine)
    except QAError as exc:
        log.info("no catalog: %s", exc)
        return None


UPLOAD_PATHS = ("/api/documents", "/upload")
MULTIPART_SLACK = 64 * 1024  # the form's boundaries and headers around the files


def max_upload(settings: Settings) -> int:
    """The largest file accepted, in bytes: the size the indexer reads at most."""
    return int(settings.max_file_mb * 1e6)


def body_limits(settings: Settings) -> dict[str, int]:
    """Request body limits of the upload routes (other routes keep the small default)."""
    return {path: max_upload(settings) + MULTIPART_SLACK for path in UPLOAD_PATHS}


def may_change(request: Request, token: str | None = None) -> None:
    """AccessDeniedError unless the caller may rebuild the index: the admin token (a bearer
    header or the form's field), or none set and the server on loopback. Requests from other
    sites' pages were refused before they got here (qa.server.edge)."""
    if token is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value if scheme.lower() == "bearer" else None
    check_token(request.app.state.settings, token or None)


def rebuilds_of(request: Request) -> Rebuilds:
    state = request.app.state
    if getattr(state, "rebuilds", None) is None:
        state.rebuilds = Rebuilds(state.builds)
    rebuilds: Rebuilds = state.rebuilds
    return rebuilds


def library_context(request: Request) -> dict[str, Any]:
    """What the documents part of a page needs: the catalog, and the upload form's settings."""
    from qa.server.web import build_percent

    state = request.app.state
    build = state.builds.status()
    return {"catalog": catalog_of(request),
            "token_required": bool(state.settings.admin_token),
            "uploads_on": bool(state.settings.admin_token) or admin_open(request),
            "accept": ",".join(ALLOWED), "max_mb": state.settings.max_file_mb,
            "build": build, "percent": build_percent(build.state, build.phase,
                                                     build.files_done, build.files_total)}


class UploadedOut(BaseModel):
    """Files written into the corpus; the rebuild that indexes them (null: it starts when the
    running one ends). Follow it at `status_url`."""

    files: list[dict[str, Any]]
    build_id: str | None
    status_url: str = "/api/index/status"
    stream_url: str = "/api/index/status/stream"


async def _read(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadError(f"{upload.filename or 'the file'} is over the {limit / 1e6:g} MB "
                          "limit", 413)
    return data


async def add_files(request: Request, files: list[UploadFile], replace: bool,
                    token: str | None) -> UploadedOut:
    """Check every file, then write them all and ask for one rebuild."""
    may_change(request, token)
    if not files:
        raise UploadError("no file was sent", 400)
    if len(files) > MAX_FILES:
        raise UploadError(f"at most {MAX_FILES} files at once", 400)
    settings = request.app.state.settings
    checked: list[tuple[str, bytes]] = []
    for upload in files:
        name = safe_name(upload.filename or "")
        data = await _read(upload, max_upload(settings))
        await run_in_threadpool(check_content, name, data, max_upload(settings))
        if any(name == n for n, _ in checked):
            raise UploadError(f"{name} was sent twice", 400)
        checked.append((name, data))
    written = [await run_in_threadpool(write_file, settings.corpus_dir, name, data, replace)
               for name, data in checked]
    build_id = await run_in_threadpool(rebuilds_of(request).request)
    return UploadedOut(files=[{"path": w.path, "document_id": document_id(w.path),
                               "replaced": w.replaced} for w in written], build_id=build_id)


async def remove_document(request: Request, doc_id: str, token: str | None) -> str:
    """Delete an indexed document's file and ask for a rebuild; its path."""
    may_change(request, token)
    with request.app.state.engine.lease() as version:
        path = find_path(version.documents(), doc_id)
    await run_in_threadpool(remove_file, request.app.state.settings.corpus_dir, path)
    await run_in_threadpool(rebuilds_of(request).request)
    return path


KINDS = {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "exists",
         413: "too_large", 415: "unsupported_type", 422: "unreadable", 500: "internal_error"}


def _refusal(exc: QAError) -> JSONResponse:
    status = exc.status if isinstance(exc, UploadError) else (
        403 if isinstance(exc, AccessDeniedError) else 409)
    return JSONResponse({"error": {"type": KINDS.get(status, "bad_request"),
                                   "message": str(exc)}}, status_code=status)


router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/documents")
async def library_page(request: Request, added: str = "", removed: str = "") -> Response:
    """The collection: its documents, the form to add more, the rebuild's progress."""
    context = await run_in_threadpool(library_context, request)
    context |= {"added": added[:200], "removed": removed[:200]}
    return templates.TemplateResponse(request, "library.html", context)


async def _library_error(request: Request, status: int, message: str) -> Response:
    context = await run_in_threadpool(library_context, request)
    context |= {"error": message}
    return templates.TemplateResponse(request, "library.html", context, status_code=status)


@router.post("/upload")
async def upload_form(
    request: Request,
    files: Annotated[list[UploadFile], File()],
    token: Annotated[str, Form(max_length=1000)] = "",
    replace: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Files sent by the plain form."""
    try:
        done = await add_files(request, files, bool(replace), token)
    except (UploadError, AccessDeniedError, BuildLockedError) as exc:
        return await _library_error(request, _refusal(exc).status_code, str(exc))
    names = ", ".join(f["path"] for f in done.files)
    return RedirectResponse(f"/documents?{urlencode({'added': names})}", status_code=303)


@router.post("/documents/{doc_id}/delete")
async def delete_form(request: Request, doc_id: str,
                      token: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """A document removed by the plain form."""
    try:
        path = await remove_document(request, doc_id, token)
    except (UploadError, AccessDeniedError, BuildLockedError) as exc:
        return await _library_error(request, _refusal(exc).status_code, str(exc))
    return RedirectResponse(f"/documents?{urlencode({'removed': path})}", status_code=303)


api = APIRouter(tags=["documents"], responses=API_ERRORS)


@api.get("/api/collection", response_model=CollectionOut)
async def api_collection(request: Request) -> CollectionOut:
    """The documents of the served version, and example questions drawn from them."""
    catalog = await run_in_threadpool(catalog_of, request)
    if catalog is None:
        engine = request.app.state.engine
        engine.version  # noqa: B018 - raises the index error (503) saying why
        raise QAError("no collection")
    docs = [DocumentEntryOut(**vars(d), url=f"/documents/{d.id}") for d in catalog.documents]
    return CollectionOut(version=catalog.version, documents=docs, examples=catalog.examples)


@api.post("/api/documents", response_model=UploadedOut, status_code=202)
async def api_upload(
    request: Request,
    files: Annotated[list[UploadFile], File(description="txt, md, html, pdf or docx files.")],
    replace: Annotated[bool, Form()] = False,
) -> Response:
    """Add documents to the corpus and index them (admin: the token, or loopback without one).
    Names are reduced to a plain file name at the corpus folder's top level."""
    try:
        done = await add_files(request, files, replace, None)
    except (UploadError, AccessDeniedError, BuildLockedError) as exc:
        return _refusal(exc)
    return JSONResponse(done.model_dump(), status_code=202)


class RemovedOut(BaseModel):
    path: str
    status_url: str = "/api/index/status"
    stream_url: str = "/api/index/status/stream"


@api.delete("/api/documents/{doc_id}", response_model=RemovedOut, status_code=202)
async def api_remove(request: Request, doc_id: str) -> Response:
    """Remove a document's file from the corpus and index the change (admin, as upload)."""
    try:
        path = await remove_document(request, doc_id, None)
    except (UploadError, AccessDeniedError, BuildLockedError) as exc:
        return _refusal(exc)
    return JSONResponse(RemovedOut(path=path).model_dump(), status_code=202)
