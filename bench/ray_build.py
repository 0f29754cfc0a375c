"""Full build of the same corpus locally and on Ray with 1 and 2 workers, as ratios in one run.

    python bench/ray_build.py SCIFACT_DIR [--limit 300] [--small 20] [--backend onnx-int8]

The first `--limit` abstracts of a BEIR corpus are written out as one .txt file each. A local
Ray cluster is started (a head and a second node, one CPU each, on loopback, as the tests do),
then, on one index folder (so the ONNX encoder is exported once):

1. local: `build_index` with the model loaded inside the timed build, as the CLI does;
2. ray 1 / ray 2: the same full build through `RayPipeline` with 1 and 2 encoder actors
   (their start, model load included);
3. the same three builds on the first `--small` abstracts: the Ray overhead.

Prints wall and CPU seconds (this process and every process of the cluster: on a shared
machine wall time depends on the neighbours, CPU time much less), ratios to local, the int8
vectors' agreement with local, and per-chunk costs. Needs the 'ray' extra.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.index.build import build_index
from qa.index.distributed import RayPipeline, connect
from qa.index.embed import load_embedder
from qa.index.index_dir import IndexDir
from qa.index.ray_local import LocalCluster

TICK = os.sysconf("SC_CLK_TCK")


def write_corpus(dataset: Path, root: Path, limit: int) -> int:
    root.mkdir(parents=True)
    n = 0
    with open(dataset / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            (root / f"{d['_id']}.txt").write_text(f"{d.get('title', '')}\n\n{d.get('text', '')}\n",
                                                  encoding="utf-8")
            n += 1
            if n >= limit:
                break
    return n


def vectors(settings: Settings) -> np.ndarray:
    """The current version's vectors, in chunk id order."""
    return keyed_vectors(settings)[1]


def keyed_vectors(settings: Settings) -> tuple[list[tuple[str, int]], np.ndarray]:
    """(document, chunk number) of each chunk id, and the vectors in chunk id order."""
    version = IndexDir(settings.index_dir).open_current()
    try:
        keys = [(d, o) for d, o in version.db.execute("SELECT doc_id, ord FROM chunks ORDER BY id")]
        return keys, version.all_vectors().astype(np.float32)
    finally:
        version.close()


def two_halves(work: Path, full: Settings, v_full: np.ndarray) -> None:
    """Vectors of one corpus built locally in one go (`v_full`) and in two halves (an
    incremental history): how far batching alone moves them, with no Ray involved."""
    keys = keyed_vectors(full)[0]  # chunk ids mean the same in every full build
    folder = work / "halves"
    folder.mkdir()
    files = sorted(full.corpus_dir.glob("*.txt"))
    settings = full.model_copy(update={"corpus_dir": folder})
    half = len(files) // 2
    for first, part in ((True, files[:half]), (False, files[half:])):
        for f in part:
            (folder / f.name).write_bytes(f.read_bytes())
        # The first half in full (the index holds the whole corpus), then the rest on top.
        build_index(settings, lambda: load_embedder(settings), full=first)
    keys2, v_two = keyed_vectors(settings)
    row = {k: i for i, k in enumerate(keys2)}
    cos = np.array([v_full[i] @ v_two[row[k]] for i, k in enumerate(keys)])
    print(f"  vectors local in two halves vs local in one go: cosine min {cos.min():.4f} "
          f"mean {cos.mean():.5f}")


class CpuMeter:
    """CPU time of this process and of every process of the cluster during a run: the machine
    is shared, so wall time alone says little. Cluster processes are polled, so the time of
    actors that end during the run is counted too (up to the last poll)."""

    def __init__(self, cluster: LocalCluster, every: float = 0.25):
        self.cluster, self.every = cluster, every
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> dict[int, float]:
        out = {}
        for pid in self.cluster.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        return out

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            self.last.update(self._sample())

    def __enter__(self) -> CpuMeter:
        self.first = self._sample()
        self.last = dict(self.first)
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.own = own.ru_utime + own.ru_stime
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(self._sample())
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.seconds = (own.ru_utime + own.ru_stime - self.own) + sum(
            t - self.first.get(pid, 0.0) for pid, t in self.last.items())


def run(settings: Settings, label: str, workers: int | None,
        cluster: LocalCluster) -> tuple[float, float, int, np.ndarray]:
    started = time.perf_counter()
    with CpuMeter(cluster) as meter:
        if workers is None:
            report = build_index(settings, lambda: load_embedder(settings), full=True)
        else:
            with RayPipeline(settings, workers=workers) as pipeline:
                report = build_index(settings, lambda: load_embedder(settings), full=True,
                                     pipeline=pipeline)
    seconds = time.perf_counter() - started
    cpu = meter.seconds
    print(f"  {label:<8} {seconds:8.1f} s wall  {cpu:8.1f} s CPU  {report.chunks} chunks  "
          f"({report.chunks / seconds:.1f} chunks/s)", flush=True)
    return seconds, cpu, report.chunks, vectors(settings)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path, help="a BEIR folder with corpus.jsonl")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--small", type=int, default=20)
    ap.add_argument("--backend", default="onnx-int8")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qa-raybench-"))
    with LocalCluster(nodes=2, cpus=1, object_store_mb=300) as cluster:
        connect(cluster.address)
        try:
            measure(args, work, cluster)
        finally:
            import ray

            ray.shutdown()  # before the nodes stop, so the driver hears no shutdown alarms


def measure(args: argparse.Namespace, work: Path, cluster: LocalCluster) -> None:
    """The three builds on each corpus, printed as they finish."""
    for name, limit in (("corpus", args.limit), ("small", args.small)):
        n = write_corpus(args.dataset, work / name, limit)
        settings = Settings(corpus_dir=work / name, index_dir=work / "index",
                            embed_backend=args.backend)
        load_embedder(settings)  # export the ONNX encoder once, outside the timings
        print(f"{name}: {n} documents, backend {args.backend}")
        local, c_local, chunks, v_local = run(settings, "local", None, cluster)
        ray1, c_ray1, _, v_ray1 = run(settings, "ray 1", 1, cluster)
        ray2, c_ray2, _, v_ray2 = run(settings, "ray 2", 2, cluster)
        print(f"  wall ratios  local 1.00 : ray-1 {ray1 / local:.2f} : ray-2 "
              f"{ray2 / local:.2f}")
        print(f"  CPU ratios   local 1.00 : ray-1 {c_ray1 / c_local:.2f} : ray-2 "
              f"{c_ray2 / c_local:.2f}")
        print(f"  ray overhead  wall {ray1 - local:+.1f} s, CPU {c_ray1 - c_local:+.1f} s "
              f"({(c_ray1 - c_local) / max(n, 1) * 1000:+.1f} ms CPU a document)")
        for label, v in (("ray 1", v_ray1), ("ray 2", v_ray2)):
            cos = (v_local * v).sum(axis=1)
            print(f"  vectors {label} vs local: cosine min {cos.min():.4f} "
                  f"mean {cos.mean():.5f}")
        if name == "corpus":
            current = IndexDir(settings.index_dir)
            folder = current.versions / str(current.current_name())
            size = folder_bytes(folder)
            print(f"  per chunk: local build {local / chunks * 1000:.1f} ms wall, "
                  f"{c_local / chunks * 1000:.1f} ms CPU; index on disk "
                  f"{size / chunks:.0f} bytes ({size / 1e6:.1f} MB)")
            two_halves(work, settings, v_local)


if __name__ == "__main__":
    main()
