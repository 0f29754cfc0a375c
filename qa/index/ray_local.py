"""A throwaway Ray cluster on this machine: a head and worker nodes as separate processes.

For trying `qa index --ray` without a cluster, and for the tests and benchmarks. Each node is
started with `ray start` in a process group of its own and listens on its own loopback address
(127.0.0.2, 127.0.0.3, ...; Linux routes all of 127/8 to loopback), so nothing leaves the
machine. `stop` ends exactly the processes these nodes started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.errors import QAError


class LocalCluster:
    """`nodes` Ray nodes (the first is the head) with `cpus` CPUs each, on loopback."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_mb: int = 200,
                 temp_dir: Path | None = None, env: dict[str, str] | None = None):
        if not 1 <= nodes <= 200:
            raise ValueError("nodes must be 1 to 200")
        self.nodes, self.cpus, self.object_store_mb = nodes, cpus, object_store_mb
        # Short: Ray's socket paths live under it and must fit in 107 bytes.
        self._own_temp = temp_dir is None  # removed by `stop`, logs and all
        self.temp_dir = temp_dir or Path(tempfile.mkdtemp(prefix="qa-ray-"))
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.address = ""
        self.groups: list[int] = []  # process group of each node

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ray_start(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", f"--num-cpus={self.cpus}",
               f"--object-store-memory={self.object_store_mb * 1_000_000}",
               "--disable-usage-stats", *args]
        log = self.temp_dir / f"node{len(self.groups)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True, stdin=subprocess.DEVNULL)
        self.groups.append(proc.pid)  # its daemons keep its process group after it exits
        try:
            code = proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            code = -1
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise QAError(f"ray start failed ({code}): {' | '.join(tail)}")

    def start(self) -> str:
        """Start the head, then the workers; return the head's address (host:port)."""
        try:
            self._ray_start("--head", "--node-ip-address=127.0.0.2", "--port=0",
                            "--include-dashboard=false", f"--temp-dir={self.temp_dir}")
            self.address = (self.temp_dir / "ray_current_cluster").read_text().strip()
            for n in range(1, self.nodes):
                self.add_node(n)
        except BaseException:  # Ctrl-C or a failed node: leave nothing running
            self.stop()
            raise
        return self.address

    def add_node(self, n: int) -> None:
        """Start worker node `n` (1 on) and join it to the head."""
        self._ray_start(f"--address={self.address}", f"--node-ip-address=127.0.0.{n + 2}")

    def processes(self) -> set[int]:
        """Every live process of the nodes, the workers they started included."""
        return _descendants(self.groups)

    def stop(self, grace: float = 5.0) -> None:
        """End every process the nodes started, workers included: politely, then by force."""
        pids = _descendants(self.groups)
        self.groups = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + grace
            while (pids := pids & _live()) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not pids:
                break
        if self._own_temp and not pids:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _processes() -> dict[int, tuple[str, int, int]]:
    """State, parent and process group of every process (Linux /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces; the fields after its ")" do not.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = (fields[0], int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _live() -> set[int]:
    return {pid for pid, (state, _, _) in _processes().items() if state != "Z"}


def _descendants(groups: list[int]) -> set[int]:
    """Live processes in the process groups, and everything they started (Ray's workers
    start sessions of their own)."""
    procs = _processes()
    found = {pid for pid, (state, _, pgid) in procs.items() if pgid in groups and state != "Z"}
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (state, ppid, _) in procs.items()
                    if ppid in frontier and pid not in found and state != "Z"}
        found |= frontier
    return found
