"""The errors qa raises on purpose; everything else is a bug."""


class QAError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    # What a client of the server is told instead, when the message may name server files; the
    # full message goes to the server log.
    public: str | None = None

    def __init__(self, message: str, public: str | None = None):
        super().__init__(message)
        if public is not None:
            self.public = public


class BadQuestionError(QAError):
    """The question is empty, too long or otherwise unusable."""


class BadFilterError(BadQuestionError):
    """A filter names a document the index lacks, a bad path prefix, or matches nothing."""


class CorpusError(QAError):
    """The corpus folder is missing or holds no readable document."""

    public = "the corpus folder is missing or holds no readable document; see the server log"


class IndexMissingError(QAError):
    """No index has been built at the configured location."""

    public = "no index has been built yet; run 'qa index' (the server log has the details)"


class IndexIncompatibleError(QAError):
    """The index was built with another model or chunker and must be rebuilt."""

    public = ("the index was built with other settings or another qa version; run "
              "'qa index --full'")


class IndexCorruptError(QAError):
    """The index folder is damaged or incomplete."""

    public = ("the index is damaged or incomplete; run 'qa index --full' (the server log says "
              "what is wrong)")


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
