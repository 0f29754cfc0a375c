"""Short-answer exact match and F1 on SQuAD, by article fold.

    python bench/short_answers.py SQUAD_DIR --root CACHE [--limit 3000]

Indexes every article (or reuses the index under CACHE) and asks each question through the
engine. The span rules in qa/search/span.py were written while reading questions of the even
articles only, and the ranker for untyped questions (qa/search/span_rank.py) was fitted on them
by bench/fit_spans.py; the odd articles are the held-out report, also split into typed questions
(when, how much, who...: the rules) and untyped ones (what, which...: the ranker). Scores
follow SQuAD: exact match and token F1 against the best gold answer, over all questions (an
abstention or an answer without a span scores 0), and over the questions that got a span.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import _squad_norm, prepare_index, token_f1
from qa.index.embed import load_embedder
from qa.search.engine import Engine
from qa.search.span import answer_kind


def summary(rows: list[tuple[bool, bool, float, float]]) -> dict[str, float]:
    """EM and F1 over all questions and over those given a span, and how often one was."""
    n = max(len(rows), 1)
    given = sum(r[1] for r in rows)
    em, f1 = sum(r[2] for r in rows), sum(r[3] for r in rows)
    return {"questions": len(rows), "span_given": round(given / n, 3), "em": round(em / n, 3),
            "f1": round(f1 / n, 3), "em_when_given": round(em / max(given, 1), 3),
            "f1_when_given": round(f1 / max(given, 1), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("squad", type=Path)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=3000, help="questions per fold, at most")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    settings = Settings()
    embedder = load_embedder(settings)
    ds = load_dataset(args.squad)
    prepare_index(ds.docs, args.root / "squad-all", settings, lambda: embedder)
    engine = Engine(settings.model_copy(update={"index_dir": args.root / "squad-all" / "index"}),
                    lambda: embedder)
    position = {d.id: i for i, d in enumerate(ds.docs)}
    rng = random.Random(0)
    report = {}
    for fold, parity in (("even articles (read while writing the rules)", 0),
                         ("odd articles (held out)", 1)):
        qs = [q for q in ds.queries if position[q.gold_doc or ""] % 2 == parity]
        qs = rng.sample(qs, min(args.limit, len(qs)))
        rows = []
        for q in qs:
            answer = engine.ask(q.text)
            span = answer.answer_span
            typed = answer_kind(q.text) is not None
            if span is None or answer.abstained:
                rows.append((typed, False, 0.0, 0.0))
                continue
            rows.append((typed, True,
                         max(float(_squad_norm(span.text) == _squad_norm(a)) for a in q.answers),
                         max(token_f1(span.text, a) for a in q.answers)))
        report[fold] = {name: summary([r for r in rows if keep(r)]) for name, keep in (
            ("all", lambda r: True), ("typed", lambda r: r[0]), ("untyped", lambda r: not r[0]))}
        print(fold, json.dumps(report[fold]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
