"""The errors qa raises on purpose; everything else is a bug."""


class QAError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class BadQuestionError(QAError):
    """The question is empty, too long or otherwise unusable."""


class CorpusError(QAError):
    """The corpus folder is missing or holds no readable document."""


class IndexMissingError(QAError):
    """No index has been built at the configured location."""


class IndexIncompatibleError(QAError):
    """The index was built with another model or chunker and must be rebuilt."""


class IndexCorruptError(QAError):
    """The index folder is damaged or incomplete."""


class BuildLockedError(QAError):
    """Another build holds the index lock."""


class BuildTimeoutError(QAError):
    """A build ran past its time limit and was abandoned."""


class NotFoundError(QAError):
    """An id names nothing in the index."""


class DatasetError(QAError):
    """An evaluation dataset is malformed; the message names the file and line."""


class AccessDeniedError(QAError):
    """An admin request without the right token, or admin access is switched off."""
