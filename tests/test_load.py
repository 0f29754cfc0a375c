"""A short version of bench/load.py: a few clients for a few seconds, quiet and during rebuilds."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from qa.config import Settings

from .conftest import REPO
from .test_browser import serving


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rebuild", [False, True], ids=["steady", "during_rebuilds"])
def test_short_load_has_no_server_errors(tmp_path: Path, rebuild: bool):
    bench = load_bench()
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=tmp_path / "index",
                        min_confidence=0.3, ask_rate=0, admin_rate=0, workers=2, max_queue=8)
    with serving(settings) as url:
        result = asyncio.run(bench.run_clients(url, clients=6, seconds=3, rebuild=rebuild))
    every = result["all"]
    assert every["requests"] > 20
    assert result["server_5xx"] == every["statuses"].get(503, 0)  # 503 is the only 5xx allowed
    assert every["retry_after_missing"] == 0  # and each carries Retry-After
    assert every["errors"] == every["statuses"].get(503, 0), every["examples"]
    for kind in bench.KINDS:
        assert result[kind]["requests"] > 0
    if rebuild:
        assert result["rebuilds"]["succeeded"] >= 1 and result["rebuilds"]["failed"] == 0
        assert result["index_version"]["before"] != result["index_version"]["after"]


def test_overload_answers_503_with_retry_after_instead_of_hanging(tmp_path: Path):
    bench = load_bench()
    # One worker, no waiting line: most of twelve clients must be turned away, quickly.
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=tmp_path / "index",
                        ask_rate=0, workers=1, max_queue=0)
    with serving(settings) as url:
        result = asyncio.run(bench.run_clients(url, clients=12, seconds=2, rebuild=False))
    every = result["all"]
    assert every["statuses"].get(503, 0) > 0 and every["retry_after_missing"] == 0
    assert set(every["statuses"]) <= {200, 503}
    assert every["max_ms"] < 10_000
