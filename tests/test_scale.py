"""Past one machine: many servers on one index folder, and Ray only where asked for."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from contextlib import ExitStack

import httpx
import uvicorn

from qa.config import Settings
from qa.index.build import build_index
from qa.server.api import create_app

from .conftest import REPO, FakeEmbedder, free_port, uvicorn_thread

MOON = "Which body orbits the Earth every 27 days?"
TEA = "Which company brought tea to London?"


def test_two_servers_pick_up_a_rebuild_under_load(built: Settings):
    """Two servers share one index folder; a rebuild published by a third process (here the
    test) reaches both within the reload interval, and no request fails meanwhile."""
    settings = built.model_copy(update={"reload_interval": 0.2, "ask_rate": 0.0,
                                        "admin_rate": 0.0})
    with ExitStack() as stack:
        urls = [stack.enter_context(uvicorn_thread(uvicorn.Config(
            create_app(settings, FakeEmbedder), host="127.0.0.1", port=free_port(),
            log_level="warning"))) for _ in range(2)]
        first = {httpx.get(f"{u}/healthz").json()["index_version"] for u in urls}
        assert len(first) == 1
        statuses: Counter[int] = Counter()
        versions: list[set[str]] = [set(), set()]
        stop = threading.Event()

        def load(n: int) -> None:
            with httpx.Client(base_url=urls[n], timeout=30) as client:
                for _ in range(3000):  # bounded: stops by itself at the latest here
                    if stop.is_set():
                        return
                    r = client.post("/api/ask", json={"question": TEA})
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        versions[n].add(r.json()["index_version"])

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            (settings.corpus_dir / "moon.txt").write_text(
                "The Moon\n\nThe Moon orbits the Earth every 27 days.\n")
            report = build_index(settings, FakeEmbedder)  # published by "another machine"
            deadline = time.monotonic() + 20
            healthz = [""] * 2
            while time.monotonic() < deadline:
                healthz = [httpx.get(f"{u}/healthz").json()["index_version"] for u in urls]
                if healthz == [report.version] * 2:
                    break
                time.sleep(0.1)
            switched = time.monotonic()
            while time.monotonic() - switched < 0.5:  # load on the new version as well
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert healthz == [report.version] * 2
        assert set(statuses) == {200} and statuses[200] > 20, statuses
        for seen in versions:  # each server answered from the old version, then the new
            assert seen == first | {report.version}
        for u in urls:
            answer = httpx.post(f"{u}/api/ask", json={"question": MOON}).json()
            assert answer["index_version"] == report.version
            assert any(c["path"] == "moon.txt" for c in answer["citations"])


def test_nothing_imports_ray_without_the_ray_option(built: Settings):
    """Ray is an optional extra: building, serving and the CLI never load it on their own."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from qa import cli
        from qa.config import Settings
        from qa.index.build import build_index
        from qa.server.api import create_app
        from tests.conftest import FakeEmbedder
        settings = Settings(corpus_dir=Path({str(built.corpus_dir)!r}),
                            index_dir=Path({str(built.index_dir)!r}))
        build_index(settings, FakeEmbedder, full=True)
        create_app(settings, FakeEmbedder)
        print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_a_bare_ray_option_means_auto():
    from qa.cli import _bare_ray_flag

    assert _bare_ray_flag(["index", "c", "--ray"]) == ["index", "c", "--ray=auto"]
    assert _bare_ray_flag(["index", "c", "--ray", "--full"]) == ["index", "c", "--ray=auto",
                                                                 "--full"]
    assert _bare_ray_flag(["index", "c", "--ray", "head:6379"]) == ["index", "c", "--ray",
                                                                    "head:6379"]


def test_ray_and_watch_are_refused_together(tiny_corpus, tmp_path):
    result = subprocess.run([sys.executable, "-m", "qa.cli", "index", str(tiny_corpus), "--index",
                             str(tmp_path / "idx"), "--ray", "--watch"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --watch rebuilds locally; run it without --ray"
    assert not (tmp_path / "idx").exists()
