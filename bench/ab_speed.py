"""Query latency of two source trees side by side, on the same index and questions, in one run.

    python bench/ab_speed.py BASE_TREE NEW_TREE INDEX_DIR QUERIES_JSONL [--rounds 3] [--n 300]

BASE_TREE is a checkout of the code to compare against (for example `git worktree add
/tmp/base <commit>`), NEW_TREE this one. Each round runs bench/query_speed.py of both trees, one
after the other, each importing its own `qa`; the ratio of the medians over rounds is reported
per phase, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROW = re.compile(r"^\| (?P<phase>[^|]+?) \| (?P<p50>[\d.]+) \| (?P<p95>[\d.]+) \|"
                 r"(?: (?P<cpu50>[\d.]+) \|)?")


def run(tree: Path, index: Path, queries: Path, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "query_speed.py"), str(index), str(queries),
         "--n", str(n)], env=env, cwd=tree, capture_output=True, text=True, check=True).stdout
    rows = [m for m in map(ROW.match, out.splitlines()) if m]
    # Wall time, and (where the script prints it) the thread's CPU time, which leaves out the
    # time spent waiting for a core on a shared machine.
    return {**{m["phase"]: float(m["p50"]) for m in rows},
            **{f"{m['phase']} (CPU)": float(m["cpu50"]) for m in rows if m["cpu50"]}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for r in range(args.rounds):
        for name in ("base", "new"):
            tree = args.base if name == "base" else args.new
            results[name].append(run(tree.resolve(), args.index_dir.resolve(),
                                     args.queries.resolve(), args.n))
        print(f"round {r + 1}: " + "  ".join(
            f"{name} {results[name][-1].get('retrieval + answer', float('nan')):.2f} ms"
            for name in results), flush=True)
    print("| phase | base p50 ms | new p50 ms | new / base |")
    print("|---|---|---|---|")
    for phase in results["base"][0]:
        base = statistics.median(x[phase] for x in results["base"])
        new = statistics.median(x[phase] for x in results["new"])
        print(f"| {phase} | {base:.2f} | {new:.2f} | {new / base:.2f} |")


if __name__ == "__main__":
    main()
