"""Short-answer exact match and F1 on SQuAD, by article fold.

    python bench/short_answers.py SQUAD_DIR --root CACHE [--limit 3000]

Indexes every article (or reuses the index under CACHE) and asks each question through the
engine. The span rules in qa/span.py were written while reading questions of the even articles
only; the odd articles are the held-out report. Scores follow SQuAD: exact match and token F1
against the best gold answer, over all questions (an abstention or an answer without a span
scores 0), and over the questions that got a span.
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
        em = f1 = given = em_given = f1_given = 0.0
        for q in qs:
            answer = engine.ask(q.text)
            span = answer.answer_span
            if span is None or answer.abstained:
                continue
            given += 1
            e = max(float(_squad_norm(span.text) == _squad_norm(a)) for a in q.answers)
            f = max(token_f1(span.text, a) for a in q.answers)
            em, f1 = em + e, f1 + f
            em_given, f1_given = em_given + e, f1_given + f
        n = len(qs)
        report[fold] = {"questions": n, "span_given": round(given / n, 3),
                        "em": round(em / n, 3), "f1": round(f1 / n, 3),
                        "em_when_given": round(em_given / max(given, 1), 3),
                        "f1_when_given": round(f1_given / max(given, 1), 3)}
        print(fold, json.dumps(report[fold]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
