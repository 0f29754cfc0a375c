"""The collection's documents in the browser: listed on the empty chat page and the documents
page, with example questions."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from qa.errors import QAError
from qa.server.catalog import Catalog, Catalogs
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


def library_context(request: Request) -> dict[str, Any]:
    """What the documents part of a page needs."""
    return {"catalog": catalog_of(request),
            "token_required": bool(request.app.state.settings.admin_token)}


router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


@router.get("/documents")
async def library_page(request: Request) -> Response:
    """The collection: its documents, and the form to add more."""
    context = await run_in_threadpool(library_context, request)
    return templates.TemplateResponse(request, "library.html", context)


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
