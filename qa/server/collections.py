"""Collections: the named corpora one server answers from, each with its own index.

Without configured collections the server has one, named "qa", over `corpus_dir` and
`index_dir`. With them (`qa serve --collection name=path ...`), each corpus folder has its
index in `<collection_index_root>/<name>`, or in a hidden `.qa-index` folder inside the corpus
when no root is set. The first is the default: requests that name none use it, and the OpenAI
model name "qa" stands for it unless a collection is called "qa".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from qa.config import COLLECTION_NAME, Settings
from qa.errors import NotFoundError, QAError
from qa.index.build import BuildReport
from qa.index.embed import Embedder
from qa.index.rebuild import BuildManager
from qa.library import Index
from qa.search.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_NAME = "qa"  # the one collection of a server given none, and the default's model alias
INDEX_FOLDER = ".qa-index"


def parse_collection(text: str) -> tuple[str, Path]:
    """`name=path` as given to `qa serve --collection`; ValueError saying what is wrong."""
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise ValueError(f"{text[:100]!r} is not name=path")
    if not COLLECTION_NAME.fullmatch(name):
        raise ValueError(f"collection name {name[:80]!r} must be 1 to 64 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    return name, Path(path)


def collection_settings(settings: Settings) -> list[tuple[str, Settings]]:
    """Each collection's name and settings (its corpus and index folders), default first."""
    if not settings.collections:
        return [(DEFAULT_NAME, settings)]
    out = []
    for name, corpus in settings.collections.items():
        root = settings.collection_index_root
        index_dir = root / name if root is not None else corpus / INDEX_FOLDER
        out.append((name, settings.model_copy(update={"corpus_dir": corpus,
                                                      "index_dir": index_dir})))
    return out


@dataclass
class Collection:
    """One served corpus: its index (and so its engine) and its rebuilds."""

    name: str
    index: Index
    builds: BuildManager
    default: bool = False

    @property
    def engine(self) -> Engine:
        return self.index.engine

    @property
    def settings(self) -> Settings:
        return self.index.settings

    @property
    def link_name(self) -> str | None:
        """The name links to this collection's documents carry; None for the default, whose
        links stay as they were before collections existed."""
        return None if self.default else self.name


class Collections:
    """The served collections in order, found by name; the first is the default."""

    def __init__(self, items: list[Collection]):
        if not items:
            raise ValueError("a server needs at least one collection")
        self._items = items
        self._by_name = {c.name: c for c in items}

    @property
    def default(self) -> Collection:
        return self._items[0]

    def __iter__(self) -> Iterator[Collection]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return [c.name for c in self._items]

    def model_names(self) -> list[str]:
        """The OpenAI model names: "qa" for the default, then every collection's name."""
        return list(dict.fromkeys([DEFAULT_NAME, *self.names()]))

    def get(self, name: str | None) -> Collection:
        """The collection called `name` (the default for None or ""); NotFoundError naming the
        ones served otherwise."""
        if not name:
            return self.default
        found = self._by_name.get(name)
        if found is None and name == DEFAULT_NAME:
            found = self.default
        if found is None:
            served = ", ".join(repr(n) for n in self.names())
            raise NotFoundError(f"no collection named {name[:100]!r}; this server serves {served}")
        return found

    def model(self, name: str) -> Collection:
        """The collection an OpenAI model name stands for; NotFoundError otherwise."""
        try:
            return self.get(name or "\x00")  # an empty model name is no name, not the default
        except NotFoundError:
            served = ", ".join(repr(n) for n in self.model_names())
            raise NotFoundError(f"no model named {name[:100]!r}; this server serves "
                                f"{served}") from None

    def close(self) -> None:
        for c in self._items:
            c.engine.close()


def load_collections(settings: Settings, embedder_factory: Callable[[], Embedder],
                     load: Callable[[Settings, Callable[[], Embedder]], Index]) -> Collections:
    """Every configured collection's index, loaded (built first where missing) with `load`,
    sharing one embedding model."""
    items: list[Collection] = []
    try:
        for i, (name, own) in enumerate(collection_settings(settings)):
            index = load(own, embedder_factory)
            items.append(Collection(name, index, _builds(index, embedder_factory), i == 0))
            if len(settings.collections) > 0:
                log.info("collection %r: %s", name, index.engine.serving_name or "no index")
    except BaseException:
        for c in items:
            c.engine.close()
        raise
    return Collections(items)


async def poll_index(engine: Engine, interval: float) -> None:
    """Switch to a newer index version (say, one a CLI rebuild published) every `interval` s."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(engine.reload_if_changed)
        except QAError as exc:
            log.warning("index version not loaded: %s", exc)
        except Exception:
            log.exception("index reload failed")


def _builds(index: Index, embedder_factory: Callable[[], Embedder]) -> BuildManager:
    engine = index.engine

    def switch(report: BuildReport) -> None:
        engine.reload_if_changed(strict=True)

    return BuildManager(index.settings, embedder_factory, on_success=switch)


def collections_of(request: Request) -> Collections:
    """The collections the app loaded at start-up."""
    served: Collections = request.app.state.collections
    return served


def collection_of(request: Request, name: str | None = None) -> Collection:
    """The collection `name` names, else the request's `collection` query parameter, else the
    default; remembered on `request.state.collection` for the page templates."""
    if name is None:
        name = request.query_params.get("collection")
    found = collections_of(request).get(name)
    request.state.collection = found.name
    return found


def engine_for(request: Request, name: str | None = None) -> Engine:
    """The engine of the collection a request names (see `collection_of`)."""
    return collection_of(request, name).engine


class CollectionOut(BaseModel):
    """A served collection."""

    name: str
    default: bool
    documents: int = Field(description="Documents in the served index version.")
    chunks: int
    index_version: str | None = Field(description="The version served; null when none loads.")
    error: str | None = Field(None, description="Why nothing is served, when nothing is.")


router = APIRouter(tags=["index"])


@router.get("/api/collections", response_model=list[CollectionOut])
async def api_collections(request: Request) -> list[CollectionOut]:
    """The collections this server answers from, default first, with their sizes. Name one
    as `collection` in `/api/ask`, as `?collection=` on the document and index routes, and as
    `model` in `/v1/chat/completions`."""
    out = []
    for c in collections_of(request):
        try:
            version = c.engine.version
        except QAError as exc:
            out.append(CollectionOut(name=c.name, default=c.default, documents=0, chunks=0,
                                     index_version=None, error=str(exc)))
            continue
        counts = version.manifest.get("counts", {})
        out.append(CollectionOut(
            name=c.name, default=c.default,
            documents=counts.get("documents", len(version.manifest.get("documents", {}))),
            chunks=version.n_chunks, index_version=version.name))
    return out
