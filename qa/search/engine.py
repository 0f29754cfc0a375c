"""The question-answering core: a loaded index version plus an embedder, answering questions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from qa.config import Settings
from qa.errors import (
    BadQuestionError,
    IndexCorruptError,
    IndexIncompatibleError,
    IndexMissingError,
    QAError,
)
from qa.index.build import chunker_settings
from qa.index.embed import Embedder, load_embedder, model_id
from qa.index.index_dir import IndexDir
from qa.index.store import IndexVersion
from qa.search.answer import Answer, compose
from qa.search.calibrate import baseline
from qa.search.filters import Filter
from qa.search.retrieve import Retriever, query_terms

log = logging.getLogger(__name__)


def check_question(question: str, max_chars: int) -> str:
    """The question stripped, or BadQuestionError if it is empty or too long."""
    if not isinstance(question, str) or not question.strip():
        raise BadQuestionError("the question is empty")
    if len(question) > max_chars:
        raise BadQuestionError(
            f"the question has {len(question)} characters; the limit is {max_chars}")
    return question.strip()


# How much surer the answer to a rewritten follow-up must be than the answer to the question as
# written before the rewrite is kept: a standalone question asked mid-chat keeps its own answer.
REWRITE_MARGIN = 0.05

INDEX_ERRORS = (IndexMissingError, IndexCorruptError, IndexIncompatibleError)


def unavailable(exc: QAError) -> QAError:
    """The error a client sees for an index that cannot be loaded: same kind, but no server
    paths or details (those go to the log)."""
    if isinstance(exc, IndexMissingError):
        return IndexMissingError("no index has been built yet; run 'qa index'")
    if isinstance(exc, IndexIncompatibleError):
        return IndexIncompatibleError("the index was built with other settings or another qa "
                                      "version; run 'qa index --full'")
    return IndexCorruptError("the index is damaged or incomplete; run 'qa index --full' "
                             "(the server log says what is wrong)")


class Engine:
    """Answers questions from the current index version; reloads when the version changes.

    A version that fails to load is never switched to: the old one keeps serving and the
    failure is logged. With `strict=False` the engine also starts without a loadable version,
    and every use of it raises the index error (a 503) until a good one is published."""

    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder] | None = None,
                 strict: bool = True):
        self.settings = settings
        self.index_dir = IndexDir(settings.index_dir)
        self._embedder_factory = embedder_factory or (lambda: load_embedder(settings))
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._switch_lock = threading.Lock()  # one load at a time
        self._version_lock = threading.Lock()
        self._served: IndexVersion | None = None
        self._error: QAError | None = None  # why nothing is served, for clients
        self._failed: tuple[str | None, str] | None = None  # CURRENT and error of the last failure
        try:
            self._served = self._open()
        except INDEX_ERRORS as exc:
            if strict:
                raise
            self._fail(None, exc)

    def _open(self) -> IndexVersion:
        version = self.index_dir.open_current()
        try:
            version.check_compatible(model_id(self.settings.model), chunker_settings(self.settings))
        except BaseException:
            version.close()
            raise
        return version

    def _fail(self, name: str | None, exc: QAError) -> None:
        if self._failed != (name, str(exc)):
            serving = self._served.name if self._served is not None else "nothing"
            log.error("index version not loaded (still serving %s): %s", serving, exc)
        self._failed = (name, str(exc))
        if self._served is None:
            self._error = unavailable(exc)

    @property
    def version(self) -> IndexVersion:
        """The served version, or the index error if none could be loaded. Fine for its name and
        manifest; a request that queries it holds it with `lease`."""
        served = self._served
        if served is None:
            error = self._error or IndexMissingError("no index has been built yet; run 'qa index'")
            raise type(error)(str(error))
        return served

    @property
    def serving_name(self) -> str | None:
        """The served version's name, or None."""
        served = self._served
        return served.name if served is not None else None

    @contextmanager
    def lease(self) -> Iterator[IndexVersion]:
        """The served version, kept open until the block ends even if a reload replaces it."""
        with self._version_lock:
            version = self.version.acquire()
        try:
            yield version
        finally:
            version.release()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    def reload_if_changed(self, strict: bool = False) -> bool:
        """Switch to the version CURRENT names if it is new; running requests keep theirs, and
        the replaced version closes when the last of them ends. A version that fails to load is
        logged and skipped (until CURRENT changes, or a `strict` call, which raises the error)."""
        with self._switch_lock:
            name: str | None = None
            try:
                name = self.index_dir.current_name()
                if name is None:
                    if self._served is None:
                        raise IndexMissingError(
                            f"no index at {self.index_dir.path}; run 'qa index' first")
                    return False
                if self._served is not None and name == self._served.name:
                    return False
                if not strict and self._failed is not None and self._failed[0] == name:
                    return False
                version = self._open()
            except INDEX_ERRORS as exc:
                self._fail(name, exc)
                if strict:
                    raise unavailable(exc) from exc
                return False
            with self._version_lock:
                old, self._served = self._served, version
                self._error = self._failed = None
        if old is not None:
            old.retire()
        log.info("now serving index version %s", version.name)
        return True

    def close(self) -> None:
        """Stop serving: the version closes once its last request ends."""
        with self._version_lock:
            old, self._served = self._served, None
        if old is not None:
            old.retire()

    def ask(self, question: str, k: int | None = None, query: str | None = None,
            leans_on_context: bool = False, where: Filter | None = None) -> Answer:
        """Answer `question`. A `query` (a follow-up rewritten by the caller) is searched beside
        the question as written, and kept only when it wins on evidence: its answer does not
        abstain and is surer by REWRITE_MARGIN, or the question alone finds nothing. For a
        question that `leans_on_context` (a pronoun with nothing before it to point at), the
        rewrite wins unless it is less sure by REWRITE_MARGIN. With `where`, only the documents
        it allows are searched (BadFilterError if it names one the index lacks)."""
        question = check_question(question, self.settings.max_question_chars)
        k = k or self.settings.default_k
        with self.lease() as version:  # one version for the whole request
            if where is not None:
                where.chunk_ids(version)  # refuse a bad filter even when nothing is searched
            return self._ask(question, k, query, version, leans_on_context, where)

    def _ask(self, question: str, k: int, query: str | None, version: IndexVersion,
             leans_on_context: bool, where: Filter | None = None) -> Answer:
        own = self._answer(question, question, k, version, where)
        query = (query or "").strip()
        if not query or query == question:
            return own
        rewritten = self._answer(question, query, k, version, where)
        if rewritten.abstained:
            return own
        margin = -REWRITE_MARGIN if leans_on_context else REWRITE_MARGIN
        if own.abstained or rewritten.confidence > own.confidence + margin:
            return rewritten
        return own

    def _answer(self, question: str, query: str, k: int, version: IndexVersion,
                where: Filter | None = None) -> Answer:
        if not query_terms(query):
            # Only stop words or punctuation: nothing to search for, so abstain without a search.
            return compose(question, query, [], version, self.settings.min_confidence)
        embedder = self.embedder
        qvec = embedder.embed([query])[0]
        candidates = Retriever(version, self.settings.candidates, where=where).search(
            query, qvec, k)
        return compose(question, query, candidates, version, self.settings.min_confidence,
                       baseline=baseline(version, embedder))
