"""Unanswerable questions on the same articles (SQuAD 2.0 style): does the engine abstain?

    python bench/squad2_style.py SQUAD_DIR --root CACHE [--json OUT]

The articles named in bench/data/squad2/unanswerable.jsonl (odd-positioned SQuAD dev articles,
which no confidence fit uses) are indexed alone. Asked of that index:
- answerable: every SQuAD question about those articles;
- written: our own questions about them whose fact the article never gives (a number, a date,
  a person or a place it does not state, an entity swapped for a neighbour, a negated fact);
  written to look answerable;
- year-swapped: every SQuAD question of those articles that names a year, with the year
  replaced by one the article never mentions (derived automatically).
For each unanswerable set against the answerable questions: abstention precision and recall
at the default threshold, the best recall at precision >= 0.8, and the AUROC of confidence;
once against all answerable questions (about 12 for each unanswerable one) and once, as in
SQuAD 2.0, against as many answerable questions as unanswerable ones (averaged over 200
random draws).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from fit_confidence import scores

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import prepare_index
from qa.index.embed import load_embedder
from qa.search.engine import Engine

DATA = Path(__file__).parent / "data" / "squad2" / "unanswerable.jsonl"
YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")


def swap_year(question: str, article: str) -> str | None:
    """The question with its year replaced by the nearest one the article never names."""
    m = YEAR.search(question)
    if not m:
        return None
    year = int(m.group(1))
    for delta in (1, -1, 2, -2, 3, -3, 5, -5, 7, -7, 11, -11):
        other = str(year + delta)
        if other not in article:
            return question[:m.start()] + other + question[m.end():]
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("squad", type=Path)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    written = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    titles = {w["article"] for w in written}
    ds = load_dataset(args.squad)
    docs = [d for d in ds.docs if d.title in titles]
    missing = titles - {d.title for d in docs}
    if missing:
        raise SystemExit(f"articles not in {args.squad}: {sorted(missing)}")
    settings = Settings(min_confidence=0.0)
    threshold = Settings().min_confidence
    embedder = load_embedder(settings)
    prepare_index(docs, args.root / "squad2-style", settings, lambda: embedder)
    engine = Engine(settings.model_copy(update={"index_dir": args.root / "squad2-style" /
                                                "index"}), lambda: embedder)
    text_of = {d.id: "\n".join(d.paragraphs) for d in docs}
    answerable = [q for q in ds.queries if q.gold_doc in text_of]
    swapped = [s for q in answerable
               if (s := swap_year(q.text, text_of[q.gold_doc or ""])) is not None]

    def confidences(questions: list[str]) -> np.ndarray:
        return np.array([engine.ask(q).confidence for q in questions])

    base = confidences([q.text for q in answerable])
    report: dict[str, Any] = {"articles": sorted(titles), "threshold": threshold,
                              "answerable": len(base),
                              "answerable_abstained": round(float(np.mean(base < threshold)), 3)}
    for name, questions in (("written", [w["question"] for w in written]),
                            ("year-swapped", swapped)):
        conf = confidences(questions)
        both = np.concatenate([base, conf])
        should = np.concatenate([np.zeros(len(base), bool), np.ones(len(conf), bool)])
        entry = scores(both, should, threshold)
        entry["unanswerable"] = len(conf)
        rng = np.random.default_rng(0)
        draws = []
        for _ in range(200):
            pick = rng.choice(len(base), size=min(len(conf), len(base)), replace=False)
            both = np.concatenate([base[pick], conf])
            should = np.concatenate([np.zeros(len(pick), bool), np.ones(len(conf), bool)])
            draws.append(scores(both, should, threshold))
        entry["balanced"] = {k: round(float(np.mean([d[k] for d in draws])), 3)
                             for k in ("abstention_precision", "abstention_recall", "auroc",
                                       "recall_at_p0.8")}
        report[name] = entry
        print(name, json.dumps(entry))
    print("answerable abstained", report["answerable_abstained"], "of", len(base))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
