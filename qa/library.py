"""The library surface: build an index folder from a corpus, open it, and ask it questions.

    from qa import Index

    with Index.build("corpus", ".qa-index") as index:   # or Index.open(".qa-index")
        answer = index.ask("When was the EU-Japan Digital Partnership launched?")
        print(answer.text, answer.citations[0].start, answer.confidence)

The CLI and the HTTP server are thin layers over this class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from qa.config import Settings
from qa.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from qa.index import embed
from qa.index.build import BuildReport, FilePipeline, Progress, build_index
from qa.index.embed import Embedder
from qa.index.ingest import Document
from qa.search.answer import Answer
from qa.search.engine import Engine
from qa.search.filters import Filter
from qa.search.followup import ask_in_conversation

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]


def shared_embedder(factory: EmbedderFactory) -> EmbedderFactory:
    """A factory that makes its embedder once, on first use, so that building and answering
    share one loaded model."""
    lock = threading.Lock()
    made: list[Embedder] = []

    def get() -> Embedder:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return get


def _settings(settings: Settings | None, **paths: str | Path | None) -> Settings:
    """`settings` (or the environment's) with the given folders set."""
    base = settings if settings is not None else Settings()
    update = {k: Path(v) for k, v in paths.items() if v is not None}
    return base.model_copy(update=update) if update else base


class Index:
    """An index folder that answers questions: the served version, the model, and the corpus
    it is rebuilt from. A new index version published by anyone (another process, `update`)
    is picked up by the next question when `settings.reload_interval` is above 0."""

    def __init__(self, settings: Settings, embedder: EmbedderFactory | None = None,
                 *, strict: bool = True):
        self.settings = settings
        self.embedder_factory: EmbedderFactory = shared_embedder(
            embedder or (lambda: embed.load_embedder(settings)))
        self.engine = Engine(settings, self.embedder_factory, strict=strict)
        self.last_build: BuildReport | None = None

    @classmethod
    def open(cls, index_dir: str | Path | None = None, *, settings: Settings | None = None,
             embedder: EmbedderFactory | None = None) -> Index:
        """The index in `index_dir`; IndexMissingError if none was built there."""
        return cls(_settings(settings, index_dir=index_dir), embedder)

    @classmethod
    def build(cls, corpus_dir: str | Path | None = None, index_dir: str | Path | None = None,
              *, full: bool = False, settings: Settings | None = None,
              embedder: EmbedderFactory | None = None, progress: Progress | None = None,
              pipeline: FilePipeline | None = None) -> Index:
        """Index `corpus_dir` into `index_dir` (only what changed, unless `full`) and open it;
        what the build did is in `last_build`. A `pipeline` (say, `qa.index.distributed.
        RayPipeline`) prepares the changed files elsewhere."""
        settings = _settings(settings, corpus_dir=corpus_dir, index_dir=index_dir)
        factory = shared_embedder(embedder or (lambda: embed.load_embedder(settings)))
        report = build_index(settings, factory, full=full, progress=progress, pipeline=pipeline)
        index = cls(settings, factory)
        index.last_build = report
        return index

    @classmethod
    def load(cls, settings: Settings, embedder: EmbedderFactory | None = None,
             progress: Progress | None = None) -> Index:
        """For a server: the index, built first if there is none. A damaged or incompatible
        index is logged, and every question raises the index error until a good version is
        published (the old files are never overwritten)."""
        factory = shared_embedder(embedder or (lambda: embed.load_embedder(settings)))
        try:
            index = cls(settings, factory)
        except (IndexCorruptError, IndexIncompatibleError):
            index = cls(settings, factory, strict=False)  # the engine logs why
        except IndexMissingError:
            log.info("no index at %s; building one from %s", settings.index_dir,
                     settings.corpus_dir)
            report = build_index(settings, factory, progress=progress)
            log.info("built index version %s: %d documents, %d chunks, %d skipped, %.1f s",
                     report.version, report.documents, report.chunks, len(report.skipped),
                     report.seconds)
            index = cls(settings, factory)
            index.last_build = report
        return index

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (),
            k: int | None = None, *, documents: Sequence[str] | None = None,
            paths: Sequence[str] | None = None) -> Answer:
        """Answer `question` with citations, or abstain with a reason. `history` holds earlier
        turns as (role, text) pairs, role "user" or "assistant", so follow-ups resolve.
        `documents` (ids) and `paths` (prefixes such as "reports/") limit the search to those
        documents; BadFilterError if one names nothing in the index."""
        where = Filter.of(documents, paths)
        return ask_in_conversation(self.engine, question, history, k, where)

    def update(self, full: bool = False, progress: Progress | None = None) -> BuildReport:
        """Re-index the corpus (only what changed, unless `full`) and serve the new version."""
        report = build_index(self.settings, self.embedder_factory, full=full, progress=progress)
        self.engine.reload_if_changed(strict=True)
        self.last_build = report
        return report

    def documents(self) -> list[dict[str, Any]]:
        """Every indexed document: id, path, title and size."""
        with self.engine.lease() as version:
            return version.documents()

    def document(self, doc_id: str) -> Document:
        """A document's clean text, the text citation offsets point into; NotFoundError if
        no document has that id."""
        with self.engine.lease() as version:
            return version.document(doc_id)

    @property
    def version(self) -> str:
        """The name of the index version being served."""
        return self.engine.version.name

    @property
    def manifest(self) -> dict[str, Any]:
        """What the served version was built from: model, chunker, counts, build time."""
        return dict(self.engine.version.manifest)

    def load_model(self) -> None:
        """Load the embedding model now rather than on the first question."""
        self.engine.embedder  # noqa: B018 - the property loads it

    def close(self) -> None:
        """Stop serving; the version's files close once the last question using them ends."""
        self.engine.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        serving = self.engine.serving_name or "nothing"
        return f"Index({str(self.settings.index_dir)!r}, serving {serving})"
