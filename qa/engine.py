"""The question-answering core: a loaded index version plus an embedder, answering questions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from qa.answer import Answer, compose
from qa.build import chunker_settings
from qa.calibrate import baseline
from qa.config import Settings
from qa.embed import Embedder, load_embedder, model_id
from qa.errors import BadQuestionError
from qa.index_dir import IndexDir
from qa.retrieve import Retriever, query_terms
from qa.store import IndexVersion

log = logging.getLogger(__name__)


def check_question(question: str, max_chars: int) -> str:
    """The question stripped, or BadQuestionError if it is empty or too long."""
    if not isinstance(question, str) or not question.strip():
        raise BadQuestionError("the question is empty")
    if len(question) > max_chars:
        raise BadQuestionError(f"the question has {len(question)} characters; the limit is {max_chars}")
    return question.strip()


# How much surer the answer to a rewritten follow-up must be than the answer to the question as
# written before the rewrite is kept: a standalone question asked mid-chat keeps its own answer.
REWRITE_MARGIN = 0.05


class Engine:
    """Answers questions from the current index version; reloads when the version changes."""

    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder] | None = None):
        self.settings = settings
        self.index_dir = IndexDir(settings.index_dir)
        self._embedder_factory = embedder_factory or (lambda: load_embedder(settings))
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self.version: IndexVersion = self._open()

    def _open(self) -> IndexVersion:
        version = self.index_dir.open_current()
        version.check_compatible(model_id(self.settings.model), chunker_settings(self.settings))
        return version

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    def reload_if_changed(self) -> bool:
        """Switch to the version CURRENT names if it is new; running requests keep theirs."""
        name = self.index_dir.current_name()
        if name is None or name == self.version.name:
            return False
        version = self._open()
        with self._lock:
            self.version = version
        log.info("now serving index version %s", version.name)
        return True

    def ask(self, question: str, k: int | None = None, query: str | None = None,
            leans_on_context: bool = False) -> Answer:
        """Answer `question`. A `query` (a follow-up rewritten by the caller) is searched beside
        the question as written, and kept only when it wins on evidence: its answer does not
        abstain and is surer by REWRITE_MARGIN, or the question alone finds nothing. For a
        question that `leans_on_context` (a pronoun with nothing before it to point at), the
        rewrite wins unless it is less sure by REWRITE_MARGIN."""
        question = check_question(question, self.settings.max_question_chars)
        k = k or self.settings.default_k
        version = self.version  # one version for the whole request
        own = self._answer(question, question, k, version)
        query = (query or "").strip()
        if not query or query == question:
            return own
        rewritten = self._answer(question, query, k, version)
        if rewritten.abstained:
            return own
        margin = -REWRITE_MARGIN if leans_on_context else REWRITE_MARGIN
        if own.abstained or rewritten.confidence > own.confidence + margin:
            return rewritten
        return own

    def _answer(self, question: str, query: str, k: int, version: IndexVersion) -> Answer:
        if not query_terms(query):
            # Only stop words or punctuation: nothing to search for, so abstain without a search.
            return compose(question, query, [], version, self.settings.min_confidence)
        embedder = self.embedder
        qvec = embedder.embed([query])[0]
        candidates = Retriever(version, self.settings.candidates).search(query, qvec, k)
        return compose(question, query, candidates, version, self.settings.min_confidence,
                       baseline=baseline(version, embedder))
