"""Distributed builds on Ray: changed files are read, chunked and encoded by a pool of actors.

`RayPipeline` plugs into `build_index` (its `pipeline` argument). The driver lists the corpus and
hashes every file as a local build does; only files whose hash changed go to the cluster, as a
Ray Data dataset of file names in blocks. A pool of encoder actors (one per node by default)
reads, parses, chunks and embeds them in batches, and the results stream back in corpus order,
so the version written is the one a local build writes: same chunk ids, offsets and manifest.
Vectors equal a local build's within float tolerance with the fp32 encoder; the int8 one scales
activations per batch, so there they move as much as between two local builds with different
batching (docs/SCALE.md).

Every node must reach the corpus folder at the same path (shared storage) and have qa installed
with the same version. Ray is imported only when a RayPipeline is made.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qa import __version__
from qa.config import Settings
from qa.errors import QAError
from qa.index.build import Prepared, prepare_file
from qa.index.chunk import embedding_text
from qa.index.embed import Embedder, load_counter, load_embedder, resolve_model_path
from qa.index.ingest import (
    UnreadableFile,
    document_id,
    file_hash,
    read_corpus_file,
)

log = logging.getLogger(__name__)

FILES_PER_BATCH = 16  # files an actor reads, chunks and embeds in one call
PREFLIGHT_TIMEOUT = 120.0  # seconds for every node to start a worker and answer


class RayError(QAError):
    """The Ray cluster cannot be reached or used, or the job on it failed."""

    public = "the distributed build failed; see the log"


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at a host:port address.

    Ray itself retries an unreachable address for minutes; a refused or silent port is told
    at once."""
    if address in {"auto", "local"} or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise RayError(f"bad Ray address {address!r}: give host:port, 'auto' or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def connect(address: str | None) -> bool:
    """Connect this process to a Ray cluster; True if it did, False if already connected."""
    try:
        import ray
    except ImportError as exc:
        raise RayError("Ray is not installed; install qa with the 'ray' extra: "
                       "pip install 'qa[ray]'") from exc
    if ray.is_initialized():
        return False
    if address is not None:
        check_reachable(address)
    # No usage reports, nor Ray Data's metric queries for them.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
    try:
        # Worker logs stay on the cluster; the build's own report says what happened. Ray's
        # core prints notices (one per actor, about arguments it keeps for restarts) and
        # connection retries on stderr; its errors arrive as exceptions, told in one line.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        with _quiet_stderr():  # where the core says, once, that it read the level above
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     include_dashboard=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayError(f"cannot connect to the Ray cluster at {address or 'auto'}: {first}") \
            from exc
    return True


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 (where Ray's C++ core logs) to /dev/null for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _node_check(corpus: str) -> dict[str, Any]:
    """What one node has: qa's version and whether it sees the corpus folder."""
    import qa

    return {"qa": qa.__version__, "corpus": Path(corpus).is_dir(), "host": socket.gethostname()}


def preflight(settings: Settings, timeout: float = PREFLIGHT_TIMEOUT) -> int:
    """Check every alive node can run the build; return how many nodes have CPUs."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    if not nodes:
        raise RayError("the Ray cluster has no node with CPUs")
    check = ray.remote(num_cpus=0, max_retries=1)(_node_check)
    refs = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(str(settings.corpus_dir)) for n in nodes]
    try:
        answers = ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise RayError(f"the Ray cluster's nodes did not answer within {timeout:g} s") from None
    except ray.exceptions.RayError as exc:
        raise RayError(f"a Ray node cannot run qa (is it installed there?): "
                       f"{str(exc).strip().splitlines()[-1]}") from exc
    for node, answer in zip(nodes, answers, strict=True):
        where = f"Ray node {node.get('NodeManagerAddress')} ({answer['host']})"
        if answer["qa"] != __version__:
            raise RayError(f"{where} runs qa {answer['qa']}, this one {__version__}")
        if not answer["corpus"]:
            raise RayError(f"{where} cannot see the corpus folder {settings.corpus_dir}; "
                           "it must be on storage every node mounts at the same path")
    return len(nodes)


def portable(settings: Settings) -> Settings:
    """The settings with every path absolute, so they mean the same on every node."""
    model = resolve_model_path(settings.model)
    update: dict[str, Any] = {"corpus_dir": settings.corpus_dir.resolve(),
                              "index_dir": settings.index_dir.resolve()}
    if model is not None and Path(settings.model).expanduser().is_dir():
        update["model"] = str(model.resolve())
    return settings.model_copy(update=update)


class FileEncoder:
    """A Ray Data actor: reads, parses, chunks and embeds a batch of corpus files."""

    def __init__(self, settings: Settings,
                 embedder_factory: Callable[[], Embedder] | None = None):
        self.settings = settings
        self.counter = load_counter(settings)
        self.embedder = embedder_factory() if embedder_factory else load_embedder(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        s = self.settings
        done: list[Prepared] = []
        for relpath in batch["relpath"]:
            try:
                data = read_corpus_file(s.corpus_dir / str(relpath), s.corpus_dir,
                                        int(s.max_file_mb * 1e6))
            except UnreadableFile as exc:
                # Read on the driver but not here: the driver then reads it itself.
                done.append(Prepared("", error=str(exc)))
                continue
            done.append(prepare_file(str(relpath), data, self.counter, s))
        texts = [embedding_text(c, p.doc.title, s.embed_context)
                 for p in done if p.doc is not None for c in p.chunks]
        vectors = self.embedder.embed(texts) if texts else None
        row = 0
        for p in done:
            if p.doc is not None and vectors is not None:
                p.vectors, row = vectors[row : row + len(p.chunks)], row + len(p.chunks)
        return {"i": batch["i"], "result": [pickle.dumps(p, protocol=5) for p in done]}


class RayPipeline:
    """Parses, chunks and embeds a build's changed files on a Ray cluster (a FilePipeline).

    Connects at once, so a bad address fails before anything is written. `workers` encoder
    actors are started (default: one per node with CPUs, or `settings.ray_workers`)."""

    def __init__(self, settings: Settings, address: str | None = None,
                 embedder_factory: Callable[[], Embedder] | None = None,
                 workers: int | None = None, files_per_batch: int = FILES_PER_BATCH):
        self.corpus = settings.corpus_dir  # as given: the build's file paths start with it
        self.settings = portable(settings)
        self.embedder_factory = embedder_factory
        self.files_per_batch = files_per_batch
        self._owns_ray = connect(address)
        self._rows: Iterator[dict[str, Any]] | None = None
        self._order: dict[str, int] = {}  # changed file -> its row number in the job
        self._waiting: set[int] = set()  # rows not taken yet
        self._ready: dict[int, bytes] = {}  # rows come back before their file is taken
        self.submitted = 0
        try:
            nodes = preflight(self.settings)
        except BaseException:
            self.close()
            raise
        self.workers = workers or settings.ray_workers or nodes

    def __enter__(self) -> RayPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _changed(self, files: Sequence[Path], known: dict[str, str]) -> list[str]:
        """Files whose content hash differs from `known`; unreadable ones are left to the
        build, which reports them."""
        limit = int(self.settings.max_file_mb * 1e6)
        changed = []
        for path in files:
            relpath = path.relative_to(self.corpus).as_posix()
            try:
                data = read_corpus_file(path, self.corpus, limit)
            except UnreadableFile:
                continue
            if known.get(document_id(relpath)) != file_hash(data):
                changed.append(relpath)
        return changed

    def start(self, files: Sequence[Path], known: dict[str, str]) -> None:
        """Send every changed file to the cluster; results are read by `take`."""
        import ray
        import ray.data

        changed = self._changed(files, known)
        self._order = {relpath: i for i, relpath in enumerate(changed)}
        self._waiting = set(range(len(changed)))
        self.submitted = len(changed)
        if not changed:
            return
        # The build reports progress itself; Ray Data's notices would only interleave with it.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results come back in corpus order
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        items = [{"i": i, "relpath": r} for i, r in enumerate(changed)]
        # Enough blocks for every actor to have one; no more actors than blocks.
        blocks = max(-(-len(items) // self.files_per_batch), min(len(items), self.workers))
        actors = min(self.workers, blocks)
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            FileEncoder,
            fn_constructor_args=(self.settings, self.embedder_factory),
            batch_size=self.files_per_batch,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,  # Ray Data restarts an actor that dies and runs its batches again
        )
        self._rows = iter(dataset.iter_rows())
        log.info("sent %d changed files to %d Ray workers", len(changed), actors)

    def take(self, relpath: str, digest: str) -> Prepared | None:
        """The cluster's result for a changed file; None if the file changed since it was sent
        or was not sent (the build then prepares it locally)."""
        i = self._order.pop(relpath, None)
        if i is None:
            return None
        while i not in self._ready:
            row = self._next_row(relpath)
            if int(row["i"]) in self._waiting:  # a retried batch's rows never count twice
                self._ready[int(row["i"])] = row["result"]
        self._waiting.discard(i)
        prepared: Prepared = pickle.loads(self._ready.pop(i))
        if prepared.digest != digest:
            log.info("%s changed while the build ran; preparing it here", relpath)
            return None
        return prepared

    def _next_row(self, relpath: str) -> dict[str, Any]:
        if self._rows is None:
            raise RayError("the distributed build was not started")
        try:
            return next(self._rows)
        except StopIteration:
            raise RayError(f"the Ray job ended without a result for {relpath}") from None
        except Exception as exc:  # Ray's errors, or the workers' own, wrapped by Ray Data
            lines = [x for x in str(exc).strip().splitlines() if x.strip()]
            raise RayError(f"the Ray job failed: {lines[-1] if lines else type(exc).__name__}") \
                from exc

    def close(self) -> None:
        """Stop the job if it still runs, and disconnect if this pipeline connected."""
        rows, self._rows = self._rows, None
        closer = getattr(rows, "close", None)
        if callable(closer):
            closer()  # stops the streaming executor and its actors
        self._ready.clear()
        if self._owns_ray:
            import ray

            self._owns_ray = False
            started = time.perf_counter()
            ray.shutdown()
            log.debug("disconnected from Ray in %.2f s", time.perf_counter() - started)
