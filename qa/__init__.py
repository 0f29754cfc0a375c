"""qa: answers questions from a document corpus, citing the passage behind every claim.

    from qa import Index

    index = Index.build("corpus", ".qa-index")      # or Index.open(".qa-index")
    answer = index.ask("When was the EU-Japan Digital Partnership launched?")
    answer.text, answer.citations[0].start, answer.confidence
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names load on first use, so `import qa` (and `qa --version`) stays instant.
_PUBLIC = {
    "Index": "qa.library",
    "Settings": "qa.config",
    "Answer": "qa.search.answer",
    "AnswerSpan": "qa.search.answer",
    "Citation": "qa.search.answer",
    "BuildReport": "qa.index.build",
    "Document": "qa.index.ingest",
    "QAError": "qa.errors",
    "IndexMissingError": "qa.errors",
    "NotFoundError": "qa.errors",
    "BadQuestionError": "qa.errors",
}

__all__ = ["Answer", "AnswerSpan", "BadQuestionError", "BuildReport", "Citation", "Document",
           "Index", "IndexMissingError", "NotFoundError", "QAError", "Settings", "__version__"]

if TYPE_CHECKING:
    from qa.config import Settings as Settings
    from qa.errors import BadQuestionError as BadQuestionError
    from qa.errors import IndexMissingError as IndexMissingError
    from qa.errors import NotFoundError as NotFoundError
    from qa.errors import QAError as QAError
    from qa.index.build import BuildReport as BuildReport
    from qa.index.ingest import Document as Document
    from qa.library import Index as Index
    from qa.search.answer import Answer as Answer
    from qa.search.answer import AnswerSpan as AnswerSpan
    from qa.search.answer import Citation as Citation


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
