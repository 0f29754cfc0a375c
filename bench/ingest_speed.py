"""Reading and cleaning speed of the format readers: this checkout against an older commit,
side by side in one process.

    python bench/ingest_speed.py CORPUS_DIR [--baseline REV] [--rounds 3]
    python bench/ingest_speed.py CORPUS_DIR --write-sample ARTICLES_JSONL [--limit 48]

Every supported file under CORPUS_DIR is read into memory once. Each round then turns every
file into a clean document (`parse_file`: the format reader, cleaning, furniture removal and
assembly) with the baseline's code and with this checkout's, alternating which goes first, so
both see the same machine load. The baseline's `readers.py` and `ingest.py` are loaded from
git at REV (the rest of the package is this checkout's). Prints seconds per format and the
ratio new/old (below 1: faster now), plus the characters of text each kept.

`--write-sample` first fills CORPUS_DIR from a JSON-lines file of articles ({"title", "text"},
paragraphs separated by blank lines, such as SQuAD's articles.jsonl): every article as
Markdown (headings, a table, a list, a code fence), as a blog-style HTML page (navigation,
sidebar, comment form, footer), as DOCX (headings and a table) and as plain text.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import io
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from qa.index import ingest

ROOT = Path(__file__).resolve().parent.parent


def load_baseline(rev: str) -> Callable[[str, bytes], object]:
    """`parse_file` as it was at `rev`, with that commit's readers."""

    def source(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    def module(name: str, text: str) -> ModuleType:
        spec = importlib.util.spec_from_loader(name, loader=None)
        assert spec is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        exec(compile(text, f"{rev}:{name}", "exec"), mod.__dict__)
        return mod

    module("baseline_readers", source("qa/index/readers.py"))
    old_ingest = module("baseline_ingest", source("qa/index/ingest.py").replace(
        "from qa.index.readers import", "from baseline_readers import"))
    parse: Callable[[str, bytes], object] = old_ingest.parse_file
    return parse


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def as_markdown(title: str, paras: list[str]) -> str:
    out = [f"# {title}", ""]
    for i, p in enumerate(paras):
        if i and i % 3 == 0:
            out += [f"## Part {i // 3}", ""]
        out += [p, ""]
        if i == 1:
            out += ["| Item | Count | Note |", "|---|---:|---|",
                    "| `alpha` | 10 | the **first** one |",
                    "| beta | 20 | [see](http://x.example) |",
                    "", "- one point", "- another point", "",
                    "```python", "# not a heading", "x = 1", "```", ""]
    return "\n".join(out)


def as_html(title: str, paras: list[str]) -> str:
    body = []
    for i, p in enumerate(paras):
        if i and i % 3 == 0:
            body.append(f"<h2>Part {i // 3}</h2>")
        body.append(f"<p>{html.escape(p)}</p>")
        if i == 1:
            body.append("<table><tr><th>Item</th><th>Count</th></tr>"
                        "<tr><td>alpha</td><td>10</td></tr><tr><td>beta</td><td>20</td></tr>"
                        "</table><ul><li>one point</li><li>another point</li></ul>")
    menu = "".join(f"<li><a href='/{n}'>{n.title()}</a></li>" for n in
                   ("home", "about", "archive", "contact"))
    recent = "".join(f"<li><a href='/p{n}'>An older post number {n}</a></li>" for n in range(8))
    return (f"<!doctype html><html><head><title>{html.escape(title)}</title>"
            "<script>var tracking = 1;</script><style>body{margin:0}</style></head><body>"
            f"<header><div class='site-title'>A Site</div><nav><ul>{menu}</ul></nav></header>"
            f"<div id='content'><main><article><h1>{html.escape(title)}</h1>{''.join(body)}"
            "<div class='share'>Share this: Facebook Twitter Email</div></article>"
            "<div id='comments'><h3>Leave a Reply</h3><form><label>Comment</label><textarea>"
            "</textarea><input type=submit value='Post Comment'></form></div></main>"
            f"<aside class='sidebar'><h2>Recent posts</h2><ul>{recent}</ul></aside></div>"
            "<footer><p>Copyright 2026 A Site. All rights reserved.</p></footer></body></html>")


def as_docx(title: str, paras: list[str]) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(title, 1)
    for i, p in enumerate(paras):
        if i and i % 3 == 0:
            d.add_heading(f"Part {i // 3}", 2)
        d.add_paragraph(p)
        if i == 1:
            table = d.add_table(rows=3, cols=2)
            for r, row in enumerate([("Item", "Count"), ("alpha", "10"), ("beta", "20")]):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def write_sample(folder: Path, articles: Path, limit: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(articles, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:limit]
    for n, row in enumerate(rows):
        title, paras = row["title"], paragraphs(row["text"])
        stem = f"a{n:03d}"
        (folder / f"{stem}.md").write_text(as_markdown(title, paras), encoding="utf-8")
        (folder / f"{stem}.html").write_text(as_html(title, paras), encoding="utf-8")
        (folder / f"{stem}.docx").write_bytes(as_docx(title, paras))
        (folder / f"{stem}.txt").write_text("\n\n".join([title, *paras]), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--baseline", default="54b65db", help="git revision of the old readers")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write-sample", type=Path, metavar="ARTICLES_JSONL")
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.write_sample:
        write_sample(args.corpus, args.write_sample, args.limit)

    files = []
    for path in ingest.iter_corpus_files(args.corpus):
        rel = path.relative_to(args.corpus).as_posix()
        files.append((rel, path.suffix.lower().lstrip("."), path.read_bytes()))
    old_parse = load_baseline(args.baseline)
    versions: dict[str, Callable[[str, bytes], object]] = {"old": old_parse,
                                                           "new": ingest.parse_file}
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    chars: dict[tuple[str, str], int] = defaultdict(int)
    skipped: dict[str, int] = defaultdict(int)
    for r in range(args.rounds):
        for i, (rel, kind, data) in enumerate(files):
            order = ["old", "new"] if (i + r) % 2 == 0 else ["new", "old"]
            for name in order:
                started = time.perf_counter()
                try:
                    doc = versions[name](rel, data)
                except Exception:  # both versions raise UnreadableFile, each its own class
                    doc = None
                seconds[(name, kind)] += time.perf_counter() - started
                if r == 0:
                    if doc is None:
                        skipped[name] += 1
                    else:
                        chars[(name, kind)] += len(getattr(doc, "text", ""))
    kinds = sorted({k for _, k, _ in files})
    result = {"baseline": args.baseline, "files": len(files), "rounds": args.rounds,
              "skipped": dict(skipped), "formats": {}}
    print(f"{len(files)} files, {args.rounds} rounds, baseline {args.baseline}")
    print(f"{'format':8} {'files':>5} {'old s':>8} {'new s':>8} {'new/old':>8} "
          f"{'old chars':>10} {'new chars':>10}")
    for kind in [*kinds, "all"]:
        ks = kinds if kind == "all" else [kind]
        n = sum(1 for _, k, _ in files if k in ks)
        old = sum(seconds[("old", k)] for k in ks)
        new = sum(seconds[("new", k)] for k in ks)
        oc = sum(chars[("old", k)] for k in ks)
        nc = sum(chars[("new", k)] for k in ks)
        ratio = new / old if old else float("nan")
        print(f"{kind:8} {n:5d} {old:8.2f} {new:8.2f} {ratio:8.2f} {oc:10d} {nc:10d}")
        result["formats"][kind] = {"files": n, "old_seconds": round(old, 3),
                                   "new_seconds": round(new, 3), "ratio": round(ratio, 3),
                                   "old_chars": oc, "new_chars": nc}
    print(f"unreadable: {dict(skipped) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
