"""Rebuild the index when corpus files change: file-system events (watchfiles), debounced, never
two builds at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.errors import CorpusError, QAError
from qa.index.build import BuildReport, build_index
from qa.index.embed import Embedder
from qa.index.ingest import iter_corpus_files

log = logging.getLogger(__name__)

Snapshot = dict[str, tuple[int, int]]
# Changes closer together than this are one burst however long it lasts, up to this cap.
MAX_BURST_SECONDS = 60.0


def snapshot(corpus: Path) -> Snapshot:
    """(mtime, size) of every supported file; an empty dict if the folder is gone."""
    out: Snapshot = {}
    try:
        for path in iter_corpus_files(corpus):
            try:
                st = path.stat()
            except OSError:
                continue
            out[path.relative_to(corpus).as_posix()] = (st.st_mtime_ns, st.st_size)
    except QAError:
        return {}
    return out


def watch(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    on_report: Callable[[BuildReport | QAError], None],
    stop: threading.Event,
    debounce: float = 2.0,
    force_polling: bool | None = None,
) -> None:
    """Build whenever corpus files change, once they have been quiet for `debounce` s, until
    `stop` is set.

    Events come from the operating system (inotify, FSEvents, ReadDirectoryChangesW) through
    watchfiles; on file systems that send none (some network shares) set `force_polling`, or
    WATCHFILES_FORCE_POLLING=1. An event that leaves the supported files as they were (an
    editor's swap file, a hidden file, a touch of a folder) builds nothing.
    """
    from watchfiles import watch as file_events

    corpus = settings.corpus_dir
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus}")
    seen = snapshot(corpus)
    # Wait until the files stop changing, so a copy in progress is built once, complete.
    quiet_ms = max(1, int(debounce * 1000))
    for _changes in file_events(corpus, stop_event=stop, step=quiet_ms,
                                debounce=max(quiet_ms, int(MAX_BURST_SECONDS * 1000)),
                                force_polling=force_polling, raise_interrupt=False):
        current = snapshot(corpus)
        if current == seen:
            continue
        seen = current
        try:
            on_report(build_index(settings, embedder_factory))
        except QAError as exc:
            log.warning("rebuild after change failed: %s", exc)
            on_report(exc)
