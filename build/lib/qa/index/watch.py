"""Rebuild the index when corpus files change: polling, debounced, never two builds at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import BuildReport, build_index
from qa.index.embed import Embedder
from qa.index.ingest import iter_corpus_files

log = logging.getLogger(__name__)

Snapshot = dict[str, tuple[int, int]]


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
    interval: float = 1.0,
    debounce: float = 2.0,
) -> None:
    """Poll the corpus every `interval` s; once changes have been quiet for `debounce` s, build."""
    seen = snapshot(settings.corpus_dir)
    while not stop.wait(interval):
        current = snapshot(settings.corpus_dir)
        if current == seen:
            continue
        # Wait until the files stop changing, so a copy in progress is built once, complete.
        while not stop.wait(debounce):
            later = snapshot(settings.corpus_dir)
            if later == current:
                break
            current = later
        if stop.is_set():
            return
        seen = current
        try:
            on_report(build_index(settings, embedder_factory))
        except QAError as exc:
            log.warning("rebuild after change failed: %s", exc)
            on_report(exc)
