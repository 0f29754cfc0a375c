"""Bounded load test on loopback: N clients for T seconds against a real `qa serve`.

The clients mix the three things people do: ask through the JSON API, ask through the
OpenAI-compatible route with streaming, and open cited documents. The run happens twice: once
on a quiet server, once while full index rebuilds run back to back through the admin API.

    python bench/load.py                      # 32 clients, 60 s a phase, the real model
    python bench/load.py --fake -c 8 -t 5     # the test embedder (fast, not a real figure)

The server runs in a child process with its own copy of the corpus and index. Rate limits are
off for the run (every client shares one loopback address); every other limit is at its default.
Only loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
MAX_CLIENTS, MAX_SECONDS = 256, 600
KINDS = ("ask", "chat_stream", "document")
QUESTIONS = [
    "When was the EU-Japan Digital Partnership launched?",
    "Which consortium will mass-produce 2-nanometre chips in Japan?",
    "What did the two sides sign at the first Digital Partnership Council?",
    "Why did car plants in Japan and Germany stand idle?",
    "How often does the Digital Partnership Council meet?",
    "What does the partnership say about undersea cables?",
    "Who pays for the quantum computing research?",
    "What is the capital of Australia?",
]

FAKE_CHILD = """
import sys
sys.path.insert(0, {repo!r})
import uvicorn
from qa.server.api import create_app
from qa.config import Settings
from tests.conftest import FakeEmbedder
s = Settings()
uvicorn.run(create_app(s, FakeEmbedder), host=s.host, port=s.port, log_level="warning",
            access_log=False)
"""


@dataclass
class Tally:
    """Requests, failures and latencies of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after_missing: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, status: int, seconds: float, ok: bool, note: str = "") -> None:
        """Count one request."""
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not ok:
            self.errors += 1
            if len(self.examples) < 3:
                self.examples.append(f"{status} {note}"[:200])

    def summary(self) -> dict[str, Any]:
        """Counts and latency percentiles in milliseconds."""
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0

        return {"requests": len(lat), "errors": self.errors, "p50_ms": pct(0.50),
                "p99_ms": pct(0.99), "max_ms": round(1000 * lat[-1], 1) if lat else 0.0,
                "statuses": dict(sorted(self.statuses.items())),
                "retry_after_missing": self.retry_after_missing, "examples": self.examples}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(corpus: Path, fake: bool, log_path: Path) -> Iterator[str]:
    """A `qa serve` child process over a private copy of `corpus`; yields its base URL."""
    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    shutil.copytree(corpus, work / "corpus")
    port = free_port()
    env = {**os.environ, "QA_CORPUS_DIR": str(work / "corpus"), "QA_INDEX_DIR": str(work / "index"),
           "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "QA_ASK_RATE": "0", "QA_ADMIN_RATE": "0",
           "HF_HUB_OFFLINE": "1"}
    if fake:
        cmd = [sys.executable, "-c", FAKE_CHILD.format(repo=str(REPO))]
    else:
        cmd = [sys.executable, "-c", "from qa.cli import main; main()", "serve"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {log_path}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 300 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


async def one_request(client: httpx.AsyncClient, kind: str, rng: random.Random,
                      doc_ids: list[str]) -> tuple[int, bool, str, httpx.Headers | None]:
    """Send one request of `kind`; (status, ok, note, headers)."""
    question = rng.choice(QUESTIONS)
    if kind == "ask":
        r = await client.post("/api/ask", json={"question": question})
        ok = r.status_code == 200 and "citations" in r.json()
        return r.status_code, ok, r.text[:120], r.headers
    if kind == "chat_stream":
        body = {"model": "qa", "stream": True, "messages": [{"role": "user", "content": question}]}
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            text = (await r.aread()).decode()
        ok = r.status_code == 200 and text.rstrip().endswith("data: [DONE]")
        return r.status_code, ok, text[:120], r.headers
    doc = rng.choice(doc_ids)
    path = f"/documents/{doc}" if rng.random() < 0.5 else f"/api/documents/{doc}"
    r = await client.get(path, params={"highlight": "0-40"})
    return r.status_code, r.status_code == 200, r.text[:120], r.headers


async def run_clients(url: str, clients: int, seconds: float, rebuild: bool,
                      seed: int = 7) -> dict[str, Any]:
    """`clients` concurrent clients for `seconds`; with `rebuild`, full rebuilds run throughout."""
    tallies = {k: Tally() for k in KINDS}
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        doc_ids = [d["id"] for d in (await client.get("/api/documents")).json()]
        versions_before = (await client.get("/healthz")).json()["index_version"]
        deadline = time.monotonic() + seconds
        builds = {"started": 0, "succeeded": 0, "refused_409": 0, "failed": 0}

        async def worker(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            n = i
            while time.monotonic() < deadline:
                kind = KINDS[n % len(KINDS)]
                n += 1
                started = time.perf_counter()
                try:
                    status, ok, note, headers = await one_request(client, kind, rng, doc_ids)
                except (httpx.HTTPError, ValueError) as exc:
                    status, ok, note, headers = 0, False, f"{type(exc).__name__}: {exc}", None
                tally = tallies[kind]
                tally.add(status, time.perf_counter() - started, ok, note)
                if status in (429, 503) and headers is not None and "retry-after" not in headers:
                    tally.retry_after_missing += 1

        async def rebuilder() -> None:
            while time.monotonic() < deadline:
                r = await client.post("/api/index/rebuild", json={"full": True})
                if r.status_code == 409:
                    builds["refused_409"] += 1
                    await asyncio.sleep(0.5)
                    continue
                r.raise_for_status()
                builds["started"] += 1
                while True:
                    await asyncio.sleep(0.25)
                    state = (await client.get("/api/index/status")).json()["state"]
                    if state != "running":
                        builds["succeeded" if state == "succeeded" else "failed"] += 1
                        break

        tasks = [worker(i) for i in range(clients)] + ([rebuilder()] if rebuild else [])
        began = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - began
        versions_after = (await client.get("/healthz")).json()["index_version"]
        metrics = (await client.get("/metrics")).text
    out: dict[str, Any] = {k: t.summary() for k, t in tallies.items()}
    every = Tally()
    for t in tallies.values():
        every.latencies += t.latencies
        every.errors += t.errors
        every.retry_after_missing += t.retry_after_missing
        for s, n in t.statuses.items():
            every.statuses[s] = every.statuses.get(s, 0) + n
    out["all"] = every.summary()
    out["all"]["requests_per_second"] = round(len(every.latencies) / elapsed, 1)
    out["seconds"] = round(elapsed, 1)
    if rebuild:
        out["rebuilds"] = builds
        out["index_version"] = {"before": versions_before, "after": versions_after}
    out["server_5xx"] = sum(n for s, n in every.statuses.items() if s >= 500)
    out["metrics_lines"] = len(metrics.splitlines())
    return out


def table(name: str, result: dict[str, Any]) -> str:
    """A plain-text table of one phase."""
    lines = [f"{name} ({result['seconds']} s, {result['all']['requests_per_second']} req/s)",
             f"  {'kind':<12}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
             "  statuses"]
    for kind in (*KINDS, "all"):
        r = result[kind]
        lines.append(f"  {kind:<12}{r['requests']:>9}{r['errors']:>8}{r['p50_ms']:>9}"
                     f"{r['p99_ms']:>9}{r['max_ms']:>9}  {r['statuses']}")
    if "rebuilds" in result:
        lines.append(f"  rebuilds: {result['rebuilds']}, index version {result['index_version']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both phases and print the figures; exit 1 if any request failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--clients", type=int, default=32)
    p.add_argument("-t", "--seconds", type=float, default=60.0, help="per phase")
    p.add_argument("--corpus", type=Path, default=REPO / "corpus")
    p.add_argument("--fake", action="store_true", help="the hashing test embedder, not the model")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "qa-load-server.log")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.seconds <= MAX_SECONDS:
        p.error(f"clients must be 1..{MAX_CLIENTS} and seconds 0..{MAX_SECONDS}")
    results: dict[str, Any] = {"clients": args.clients, "seconds_per_phase": args.seconds,
                               "embedder": "fake" if args.fake else "bundled model"}
    with server(args.corpus, args.fake, args.log) as url:
        for phase, rebuild in (("steady", False), ("during_rebuilds", True)):
            results[phase] = asyncio.run(run_clients(url, args.clients, args.seconds, rebuild))
            print(table(phase, results[phase]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    failed = sum(results[ph]["all"]["errors"] for ph in ("steady", "during_rebuilds"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
