"""Building an index version: scan, read, chunk, embed only what changed, publish atomically."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa import __version__
from qa.config import Settings
from qa.errors import BuildLockedError, BuildTimeoutError, CorpusError, QAError
from qa.index import encoder_files
from qa.index.chunk import Chunk, TokenCounter, chunk_document, embedding_text
from qa.index.embed import Embedder, load_counter, model_id
from qa.index.index_dir import IndexDir
from qa.index.ingest import (
    READER_VERSION,
    Document,
    SkippedFile,
    UnreadableFile,
    document_id,
    file_hash,
    iter_corpus_files,
    parse_file,
    read_corpus_file,
)
from qa.index.store import IndexVersion
from qa.index.writer import VersionWriter

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
EMBED_GROUP = 256  # chunks embedded and written together


@dataclass
class BuildReport:
    """What a build did, for the CLI, the API and the manifest."""

    version: str = ""
    full: bool = True
    full_reason: str | None = None
    files: int = 0
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    # Files indexed, but not as written: text that was not UTF-8 and was decoded by a guess.
    warnings: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prepared:
    """A changed file parsed and chunked, with its chunks' vectors if it was embedded already."""

    digest: str
    doc: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    error: str | None = None  # why the file cannot be indexed; it is reported as skipped


def prepare_file(relpath: str, data: bytes, counter: TokenCounter, settings: Settings) -> Prepared:
    """Parse and chunk one file's bytes; an unreadable file comes back with its error."""
    warnings: list[str] = []
    try:
        doc = parse_file(relpath, data, warnings)
    except UnreadableFile as exc:
        return Prepared(file_hash(data), error=str(exc))
    chunks = chunk_document(doc, counter, settings.chunk_tokens, settings.chunk_overlap)
    return Prepared(doc.content_hash, doc, chunks, warnings)


class FilePipeline(Protocol):
    """Parses, chunks and embeds a build's changed files elsewhere, say on a cluster.

    `build_index` calls `start` once, `take` for each changed file in corpus order, and `close`
    at the end, also when the build fails or is interrupted."""

    def start(self, files: Sequence[Path], known: dict[str, str]) -> None:
        """Begin on every file whose content hash is not `known[document_id]`."""

    def take(self, relpath: str, digest: str) -> Prepared | None:
        """The file's result (blocking until it is ready); None: prepare it locally instead."""

    def close(self) -> None:
        """Stop any work still running."""


def chunker_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape chunks; a change of any forces a full rebuild."""
    return {
        "splitter": "syntok",
        "budget_tokens": settings.chunk_tokens,
        "overlap_sentences": settings.chunk_overlap,
        "embed_context": settings.embed_context,
    }


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's build lock; a second build fails at once instead of waiting."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / "build.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildLockedError(f"another build of {index_dir} is running; try again later",
                                   public="another build is running; try again later") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _previous(index: IndexDir, settings: Settings,
              full: bool) -> tuple[IndexVersion | None, str | None]:
    """The current version if its chunks and vectors can be reused, with the reason if not."""
    if full:
        return None, "--full requested"
    try:
        prev = index.open_current()
    except QAError as exc:
        return None, f"no usable previous index ({exc})"
    try:
        prev.check_compatible(model_id(settings.model), chunker_settings(settings))
    except QAError as exc:
        prev.close()
        return None, f"settings changed: {exc}"
    reader = prev.manifest.get("reader", 1)
    if reader != READER_VERSION:
        prev.close()
        # Files read by older rules would keep their old text: read everything again.
        return None, f"the document reader changed (version {reader} -> {READER_VERSION})"
    backend = prev.manifest.get("model", {}).get("backend")
    if backend != settings.embed_backend:
        prev.close()
        # Vectors from two encoders differ slightly; never mix them in one index.
        return None, f"encoder backend changed from {backend!r} to {settings.embed_backend!r}"
    if backend != "torch" and "encoder" not in prev.manifest.get("model", {}):
        prev.close()
        # Made before versions kept their encoder: the encoder of its vectors is not at hand
        # to match new ones with.
        return None, "the previous version keeps no record of its encoder"
    return prev, None


def _keep_encoder(embedder: Embedder | None, prev: IndexVersion | None,
                  folder: Path) -> dict[str, Any] | None:
    """Copy the encoder the vectors were made with into the new version; its manifest record.

    That is the embedder's own folder, or, when nothing new was embedded, the previous
    version's. Embedders without files (torch, test fakes) keep none."""
    source: Path | None = getattr(embedder, "encoder_dir", None) if embedder else None
    expected: str | None = getattr(embedder, "encoder_hash", None) if embedder else None
    if embedder is None and prev is not None and (record := encoder_files.entry(prev.manifest)):
        source, expected = prev.folder / encoder_files.ENCODER_DIR, record.get("sha256")
    if source is None:
        return None
    target = folder / encoder_files.ENCODER_DIR
    digest = encoder_files.install(source, target)
    if expected is not None and digest != expected:
        # The source changed after it was loaded (an export racing this build).
        raise encoder_files.mismatch(target, expected, digest)
    return {"sha256": digest, "files": list(encoder_files.FILES)}


def build_index(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    full: bool = False,
    progress: Progress | None = None,
    lock_held: bool = False,
    pipeline: FilePipeline | None = None,
) -> BuildReport:
    """Build a new index version from `settings.corpus_dir` and make it current.

    `lock_held` says the caller already holds the build lock (see `build_lock`). A build that
    runs past `settings.build_timeout` seconds stops with BuildTimeoutError between files or
    embedding groups; the current version keeps serving. A `pipeline` prepares changed files
    elsewhere; chunks are written in the same order either way, so the version is the same.
    """
    started = time.perf_counter()
    deadline = started + settings.build_timeout if settings.build_timeout else None

    def check_time() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise BuildTimeoutError(f"build stopped after {settings.build_timeout:g} s "
                                    "(QA_BUILD_TIMEOUT); the previous version keeps serving")

    corpus = settings.corpus_dir
    if not corpus.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus}")
    report = BuildReport(full=full)
    tick = progress or (lambda phase, done, total: None)
    index = IndexDir(settings.index_dir)
    with nullcontext() if lock_held else build_lock(settings.index_dir):
        for name in index.remove_stale_temps():
            log.info("removed stale build folder %s", name)
        prev, reason = _previous(index, settings, full)
        report.full = prev is None
        report.full_reason = reason
        counter = load_counter(settings)
        files = list(iter_corpus_files(corpus, report.skipped))
        report.files = len(files)
        if not files:
            raise CorpusError(f"no supported files (txt, md, html, pdf, docx) in {corpus}")
        prev_hashes = {} if prev is None else {
            d: v["hash"] for d, v in prev.manifest.get("documents", {}).items()}
        embedder: Embedder | None = None
        temp = index.new_temp()
        writer: VersionWriter | None = None
        pending: list[tuple[Document, list[Chunk], np.ndarray | None]] = []
        seen: dict[str, dict[str, Any]] = {}

        def flush() -> None:
            nonlocal embedder
            if not pending:
                return
            check_time()
            # Only chunks not embedded by the pipeline already.
            texts = [embedding_text(c, d.title, settings.embed_context)
                     for d, cs, v in pending if v is None for c in cs]
            if texts and embedder is None:
                embedder = embedder_factory()
            vectors = embedder.embed(texts) if texts and embedder else np.zeros((0, 1), np.float32)
            row = 0
            for d, cs, v in pending:
                assert writer is not None
                if v is None:
                    v, row = vectors[row : row + len(cs)], row + len(cs)
                writer.add(d, cs, v)
                report.embedded_chunks += len(cs)
            pending.clear()
            tick("embed", report.embedded_chunks, report.embedded_chunks)

        try:
            dim = prev.faiss.d if prev is not None else None
            if dim is None:
                embedder = embedder_factory()
                dim = embedder.dim
            writer = VersionWriter(temp, dim, settings.ann_threshold, settings.graph_threshold)
            if pipeline is not None:
                pipeline.start(files, prev_hashes)
            for i, path in enumerate(files):
                check_time()
                tick("read", i, len(files))
                relpath = path.relative_to(corpus).as_posix()
                doc_id = document_id(relpath)
                try:
                    data = read_corpus_file(path, corpus, int(settings.max_file_mb * 1e6))
                except UnreadableFile as exc:
                    report.skipped.append(SkippedFile(relpath, str(exc)))
                    log.warning("skipped %s: %s", relpath, exc)
                    continue
                digest = file_hash(data)
                if prev is not None and prev_hashes.get(doc_id) == digest:
                    doc = prev.document(doc_id)
                    rows = prev.doc_chunk_rows(doc_id)
                    chunks = [Chunk(r["doc_id"], r["ord"], r["start"], r["end"], r["text"],
                                    r["page"], r["section"], r["tokens"]) for r in rows]
                    # Sentences and stems as stored (format 3 on); older ones are split again.
                    stored = [r["sentences"] for r in rows] if prev.format >= 3 else None
                    writer.add(doc, chunks, prev.vectors([r["id"] for r in rows]), stored)
                    report.unchanged.append(relpath)
                    warnings: list[str] = prev.manifest["documents"][doc_id].get("warnings", [])
                else:
                    prepared = pipeline.take(relpath, digest) if pipeline is not None else None
                    if prepared is None:
                        prepared = prepare_file(relpath, data, counter, settings)
                    if prepared.doc is None:
                        report.skipped.append(SkippedFile(relpath, str(prepared.error)))
                        log.warning("skipped %s: %s", relpath, prepared.error)
                        continue
                    doc, chunks, warnings = prepared.doc, prepared.chunks, prepared.warnings
                    (report.changed if doc_id in prev_hashes else report.added).append(relpath)
                    pending.append((doc, chunks, prepared.vectors))
                    if sum(len(p[1]) for p in pending) >= EMBED_GROUP:
                        flush()
                seen[doc_id] = {"path": relpath, "hash": digest, "chunks": len(chunks)}
                if warnings:
                    seen[doc_id]["warnings"] = warnings
                    report.warnings.extend(SkippedFile(relpath, w) for w in warnings)
                    log.warning("%s: %s", relpath, "; ".join(warnings))
            flush()
            tick("read", len(files), len(files))
            if not seen:
                raise CorpusError(f"no readable document in {corpus}: "
                                  + "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5]))
            report.removed = sorted(prev.manifest["documents"][d]["path"]
                                    for d in prev_hashes if d not in seen) if prev else []
            report.documents = len(seen)
            report.chunks = writer.n_chunks
            report.seconds = round(time.perf_counter() - started, 3)
            tick("write", 0, 1)
            encoder = _keep_encoder(embedder, prev, temp)
            writer.finish({
                "qa_version": __version__,
                "model": {"id": model_id(settings.model), "dim": dim,
                          "backend": settings.embed_backend, "encoder": encoder},
                "chunker": chunker_settings(settings),
                "reader": READER_VERSION,
                "documents": seen,
                "counts": {"documents": len(seen), "chunks": writer.n_chunks,
                           "skipped": len(report.skipped)},
                "skipped": [asdict(s) for s in report.skipped],
                "warnings": [asdict(w) for w in report.warnings],
                "corpus_dir": str(corpus.resolve()),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": report.seconds,
            })
            check = IndexVersion(temp)  # self-check: the new version must load before it serves
            check.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            else:
                import shutil

                shutil.rmtree(temp, ignore_errors=True)
            raise
        finally:
            if pipeline is not None:
                pipeline.close()
            if prev is not None:
                prev.close()
        report.version = index.publish(temp)
        index.prune(settings.keep_versions)
        tick("write", 1, 1)
    report.seconds = round(time.perf_counter() - started, 3)
    return report
