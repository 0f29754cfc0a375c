"""Rebuilds in the background of a running server, with live status for the API and the page."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from qa.config import Settings
from qa.errors import BuildLockedError, QAError
from qa.index.build import BuildReport, build_index, build_lock
from qa.index.embed import Embedder

log = logging.getLogger(__name__)


# An absolute path inside a message: the status is readable without a token, so it names none.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s'\"():,;]+/?)+")


def redact(message: str) -> str:
    """A message with absolute server paths replaced by "<path>"."""
    return _ABSOLUTE_PATH.sub("<path>", message)


class BuildCancelledError(QAError):
    """The server is shutting down; the build stopped before publishing."""


@dataclass
class BuildStatus:
    """A snapshot of the current or last build, safe to serialise."""

    state: str = "idle"  # idle | running | succeeded | failed
    build_id: str | None = None
    full: bool = False
    phase: str | None = None
    files_done: int = 0
    files_total: int = 0
    chunks_embedded: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None
    error: str | None = None
    last_report: dict[str, Any] | None = None
    version: str | None = None
    updates: int = field(default=0, repr=False)


class BuildManager:
    """Runs at most one build at a time in a thread and tracks its progress."""

    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder],
                 on_success: Callable[[BuildReport], None] | None = None):
        self.settings = settings
        self.embedder_factory = embedder_factory
        self.on_success = on_success
        self._status = BuildStatus()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def stopping(self) -> bool:
        """Whether `cancel` was called: the server is shutting down."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop a running build at its next progress step, and refuse new ones."""
        self._cancel.set()
        with self._cond:
            self._cond.notify_all()

    def status(self) -> BuildStatus:
        with self._cond:
            s = self._status
            if s.state == "running" and s.started_at is not None:
                s.elapsed_seconds = round(time.time() - s.started_at, 2)
                if s.files_total and s.files_done:
                    rate = s.elapsed_seconds / s.files_done
                    s.eta_seconds = round(rate * (s.files_total - s.files_done), 1)
            return BuildStatus(**{k: getattr(s, k) for k in s.__dataclass_fields__})

    def wait_for_update(self, seen: int, timeout: float) -> BuildStatus:
        """Block until the status changes past `seen` updates, or `timeout` seconds pass."""
        with self._cond:
            self._cond.wait_for(lambda: self._status.updates > seen, timeout)
        return self.status()

    def _update(self, **changes: Any) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(self._status, k, v)
            self._status.updates += 1
            self._cond.notify_all()

    def start(self, full: bool = False) -> str:
        """Start a rebuild in the background and return its id; BuildLockedError if one runs."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                raise BuildLockedError("a rebuild is already running")
            if self._cancel.is_set():
                raise BuildLockedError("the server is shutting down")
            # Take the index lock now, so a CLI build cannot slip in before the thread starts.
            lock = build_lock(self.settings.index_dir)
            lock.__enter__()
            build_id = uuid.uuid4().hex[:12]
            self._status = BuildStatus(state="running", build_id=build_id, full=full,
                                       phase="starting", started_at=time.time(),
                                       last_report=self._status.last_report,
                                       updates=self._status.updates + 1)
            self._thread = threading.Thread(target=self._run, args=(full, lock), daemon=True,
                                            name=f"rebuild-{build_id}")
            try:
                self._thread.start()
            except BaseException:
                lock.__exit__(None, None, None)  # no thread will release it
                raise
            self._cond.notify_all()
        return build_id

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _progress(self, phase: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise BuildCancelledError("the server is shutting down")
        if phase == "read":
            self._update(phase="reading", files_done=done, files_total=total)
        elif phase == "embed":
            self._update(phase="embedding", chunks_embedded=done)
        elif phase == "write":
            self._update(phase="writing")

    def _run(self, full: bool, lock: AbstractContextManager[None]) -> None:
        try:
            report = build_index(self.settings, self.embedder_factory, full=full,
                                 progress=self._progress, lock_held=True)
        except QAError as exc:
            log.warning("rebuild failed: %s", exc)
            self._update(state="failed", phase=None, error=exc.public or str(exc),
                         finished_at=time.time())
            return
        except Exception as exc:  # a bug: report it, keep serving the old version
            log.exception("rebuild crashed")
            self._update(state="failed", phase=None, error=redact(f"{type(exc).__name__}: {exc}"),
                         finished_at=time.time())
            return
        finally:
            lock.__exit__(None, None, None)
        if self.on_success is not None:
            try:
                self.on_success(report)
            except Exception as exc:
                log.exception("new index version could not be loaded")
                public = getattr(exc, "public", None) or redact(f"{type(exc).__name__}: {exc}")
                self._update(state="failed", error=f"built but not loaded: {public}",
                             finished_at=time.time(), last_report=report.as_dict())
                return
        self._update(state="succeeded", phase=None, finished_at=time.time(),
                     last_report=report.as_dict(), version=report.version,
                     files_done=report.files, files_total=report.files)
