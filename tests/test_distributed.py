"""Builds on a real Ray cluster: a head and a second node, each its own `ray start` process."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index.build import BuildReport, build_index
from qa.index.index_dir import IndexDir

from .conftest import REPO, FakeEmbedder, free_port

ray = pytest.importorskip("ray")

from qa.index.distributed import RayError, RayPipeline, connect  # noqa: E402
from qa.index.ray_local import LocalCluster  # noqa: E402

pytestmark = pytest.mark.ray


class SlowEmbedder(FakeEmbedder):
    """FakeEmbedder that takes its time and leaves its process id in `pid_dir`."""

    def __init__(self, pid_dir: str, delay: float):
        super().__init__()
        self.delay = delay
        Path(pid_dir, str(os.getpid())).touch()

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        time.sleep(self.delay)
        return super().embed(texts, progress)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """Two Ray nodes of one CPU each; the test process is the driver."""
    # The workers import this package (SlowEmbedder, FakeEmbedder) from the checkout.
    with LocalCluster(nodes=2, cpus=1, object_store_mb=200,
                      env={"PYTHONPATH": str(REPO)}) as c:
        connect(c.address)
        try:
            yield c
        finally:
            ray.shutdown()


def many_files(root: Path, n: int) -> None:
    for i in range(n):
        (root / f"note{i:03d}.txt").write_text(
            f"Note {i}\n\nThe river number {i} runs past {i % 7} mills. " * (1 + i % 4)
            + f"\n\nLater, bridge {i} was built of stone in the year {1700 + i}.\n")


def build_on_ray(settings: Settings, full: bool = False, workers: int = 2,
                 factory: object = FakeEmbedder, progress: object = None,
                 per_batch: int = 4) -> tuple[BuildReport, RayPipeline]:
    with RayPipeline(settings, embedder_factory=factory,  # type: ignore[arg-type]
                     workers=workers, files_per_batch=per_batch) as pipeline:
        report = build_index(settings, FakeEmbedder, full=full, pipeline=pipeline,
                             progress=progress)  # type: ignore[arg-type]
    return report, pipeline


def rows(index_dir: Path) -> tuple[list[tuple], np.ndarray, dict]:
    """Every chunk of the current version, in id order, with its vectors and manifest."""
    version = IndexDir(index_dir).open_current()
    try:
        chunks = [tuple(r) for r in version.db.execute(
            "SELECT id, doc_id, ord, start, \"end\", text, page, section, tokens FROM chunks "
            "ORDER BY id")]
        vectors = version.all_vectors()
        return chunks, vectors, version.manifest
    finally:
        version.close()


def assert_same_index(a: Path, b: Path, atol: float = 1e-6) -> None:
    chunks_a, vec_a, man_a = rows(a)
    chunks_b, vec_b, man_b = rows(b)
    assert chunks_a == chunks_b
    assert vec_a.shape == vec_b.shape and np.allclose(vec_a, vec_b, atol=atol)
    for key in ("documents", "counts", "skipped", "warnings", "model", "chunker"):
        assert man_a[key] == man_b[key], key


def test_ray_build_equals_a_local_build(cluster: LocalCluster, settings: Settings,
                                        tiny_corpus: Path, tmp_path: Path):
    many_files(tiny_corpus, 30)
    local = build_index(settings, FakeEmbedder)
    on_ray = settings.model_copy(update={"index_dir": tmp_path / "ray-index"})
    report, pipeline = build_on_ray(on_ray)
    assert pipeline.submitted == 38  # every file it can read: nothing was built before
    assert_same_index(settings.index_dir, on_ray.index_dir)
    # A file that fails on a worker is reported by name, as locally.
    skipped = {s.path: s.reason for s in report.skipped}
    assert "corrupt PDF" in skipped["broken.pdf"] and "binary" in skipped["binary.txt"]
    assert report.skipped == local.skipped and report.warnings == local.warnings
    assert (report.documents, report.chunks, report.embedded_chunks) == \
        (local.documents, local.chunks, local.embedded_chunks)
    assert report.added == local.added and report.full


def test_incremental_ray_build_sends_only_changed_files(cluster: LocalCluster,
                                                        settings: Settings, tiny_corpus: Path,
                                                        tmp_path: Path):
    many_files(tiny_corpus, 12)
    twin = settings.model_copy(update={"index_dir": tmp_path / "twin"})
    build_index(settings, FakeEmbedder)
    build_index(twin, FakeEmbedder)
    (tiny_corpus / "note003.txt").write_text("Note three\n\nThe mill burned down in 1801.\n")
    (tiny_corpus / "zz-new.txt").write_text("New\n\nA ferry crosses the river at dawn.\n")
    (tiny_corpus / "note007.txt").unlink()
    local = build_index(twin, FakeEmbedder)
    report, pipeline = build_on_ray(settings)
    assert pipeline.submitted == 4  # the two changed files, and the two that never index
    assert not report.full and report.changed == ["note003.txt"]
    assert report.added == ["zz-new.txt"] and report.removed == ["note007.txt"]
    assert report.embedded_chunks == local.embedded_chunks
    assert sorted(report.unchanged) == sorted(local.unchanged)
    assert_same_index(twin.index_dir, settings.index_dir)


def test_a_worker_killed_mid_build_is_retried(cluster: LocalCluster, settings: Settings,
                                              tiny_corpus: Path, tmp_path: Path):
    many_files(tiny_corpus, 40)
    pids = tmp_path / "pids"
    pids.mkdir()
    killed: list[int] = []

    def kill_one(phase: str, done: int, total: int) -> None:
        if phase == "read" and done == 8 and not killed:
            victim = int(next(pids.iterdir()).name)
            os.kill(victim, signal.SIGKILL)  # an encoder actor, busy or about to be
            killed.append(victim)

    factory = functools.partial(SlowEmbedder, str(pids), 0.3)
    on_ray = settings.model_copy(update={"index_dir": tmp_path / "ray-index"})
    report, _ = build_on_ray(on_ray, factory=factory, progress=kill_one, per_batch=2)
    assert killed and not _alive(killed[0])
    # Its batch (it spends its time in `embed`) ran again elsewhere: nothing lost, nothing twice.
    build_index(settings, FakeEmbedder)
    assert_same_index(settings.index_dir, on_ray.index_dir)
    assert report.chunks == len(rows(on_ray.index_dir)[0])


class BrokenEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        raise RuntimeError("no model on this node")


def test_a_failed_ray_build_leaves_the_old_version_serving(cluster: LocalCluster,
                                                            built: Settings, tiny_corpus: Path):
    index = IndexDir(built.index_dir)
    before = index.current_name()
    (tiny_corpus / "comet.txt").write_text("Comets\n\nA comet passed the Earth in March.\n")
    with pytest.raises(RayError, match="the Ray job failed: .*no model on this node"):
        build_on_ray(built, factory=BrokenEmbedder)
    assert index.current_name() == before
    assert not list(index.versions.glob(".tmp-*"))


@pytest.mark.model
def test_real_model_vectors_match_a_local_build(cluster: LocalCluster, settings: Settings):
    from qa.index.embed import load_embedder

    # fp32 ONNX: a vector does not depend on the other texts in its batch. (int8 scales
    # activations per batch, so its vectors move by up to ~0.01 cosine with the batching,
    # on Ray or between two local builds alike; bench/ray_build.py reports it.)
    fp32 = settings.model_copy(update={"embed_backend": "onnx"})
    first = build_index(fp32, lambda: load_embedder(fp32))
    before = rows(fp32.index_dir)
    # The same index folder, so the actors find the ONNX encoder the local build exported.
    with RayPipeline(fp32, workers=2, files_per_batch=2) as pipeline:
        report = build_index(fp32, lambda: load_embedder(fp32), full=True, pipeline=pipeline)
    after = rows(fp32.index_dir)
    assert report.version != first.version and report.embedded_chunks == first.chunks
    assert before[0] == after[0]
    assert before[1].shape == after[1].shape and before[1].shape[1] == 384
    # Stored as float16: equal to its rounding.
    assert np.allclose(before[1], after[1], atol=2e-3)
    assert (before[1].astype(np.float32) * after[1]).sum(axis=1).min() > 0.9999


def test_unreachable_address_fails_fast_without_a_version(tiny_corpus: Path, tmp_path: Path):
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "qa.cli", "index", str(tiny_corpus),
                             "--index", str(tmp_path / "idx"), "--ray", address],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: cannot reach the Ray cluster at {address}: Connection refused"]
    assert not list((tmp_path / "idx").glob("versions/*"))
    assert time.monotonic() - started < 60  # Ray alone would retry for minutes


CANCEL_SCRIPT = """
import functools, sys
from pathlib import Path
from qa.config import Settings
from qa.index.build import build_index
from qa.index.distributed import RayPipeline
from tests.conftest import FakeEmbedder
from tests.test_distributed import SlowEmbedder

corpus, index, pids, address = sys.argv[1:5]
settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index))
build_index(settings, FakeEmbedder)
for p in Path(corpus).glob("note*.txt"):
    p.write_text(p.read_text() + " Changed.")

def tick(phase, done, total):
    if phase == "read" and done == 3:
        print("building", flush=True)

with RayPipeline(settings, address, functools.partial(SlowEmbedder, pids, 1.0), workers=2,
                 files_per_batch=2) as pipeline:
    build_index(settings, FakeEmbedder, pipeline=pipeline, progress=tick)
print("finished", flush=True)
"""


def test_ctrl_c_cancels_the_cluster_job(cluster: LocalCluster, tiny_corpus: Path,
                                        tmp_path: Path):
    many_files(tiny_corpus, 40)
    pids = tmp_path / "pids"
    pids.mkdir()
    index = tmp_path / "idx"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CANCEL_SCRIPT),
                             str(tiny_corpus), str(index), str(pids), cluster.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "building\n", proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "finished" not in out
    assert "KeyboardInterrupt" in err
    index_dir = IndexDir(index)
    assert len(list(index_dir.versions.glob("v*"))) == 1  # the first, local build only
    assert not list(index_dir.versions.glob(".tmp-*"))
    # The job's actors end with it.
    actors = [int(p.name) for p in pids.iterdir()]
    assert actors
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in actors) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in actors)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
