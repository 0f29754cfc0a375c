"""qa: answers questions from a document corpus, citing the passage behind every claim."""

__version__ = "0.1.0"
