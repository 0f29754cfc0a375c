"""Fit the abstention model (qa.search.answer.CONFIDENCE_MODEL) on several corpora; report each.

    python bench/fit_confidence.py SQUAD_DIR SEED_DIR --root CACHE [--per-fold 1500] [--json OUT]

Corpora, each answered through the real engine (index on disk, bundled encoder):
- squad: the SQuAD dev articles with every odd paragraph removed and every sixth article left out
  whole. A question whose paragraph is kept is answerable; one whose paragraph was removed is a
  near miss (its article, names and topic are all there, the fact is not); one whose article is
  gone is off topic. Articles split by position: even ones fit, odd ones report.
- news, techdoc, blog (bench/data/): articles written for this in other styles, with answerable,
  near-miss and off-topic questions.
- seed: the article qa was commissioned for (SEED_DIR), with our own questions (bench/data/seed).

The fit uses squad's even articles, news and techdoc, each corpus weighted equally; blog, seed
and squad's odd articles are only reported. Questions in other languages are reported, not fitted.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve, roc_auc_score

from qa.config import Settings
from qa.eval.datasets import DatasetDoc, load_dataset
from qa.eval.evaluate import prepare_index
from qa.index.build import build_index
from qa.index.embed import Embedder, load_embedder
from qa.search.answer import CONFIDENCE_FEATURES, confidence_of
from qa.search.engine import Engine

DATA = Path(__file__).parent / "data"
FIT = ("squad-even", "news", "techdoc")
ABSTAIN = {"near_miss", "off_topic"}
MAX_ANSWERABLE_ABSTAINED = 0.07
Row = tuple[str, str, list[float], float]  # corpus, kind, features, confidence (current model)


def _ask_all(engine: Engine, corpus: str, questions: list[tuple[str, str]]) -> list[Row]:
    rows = []
    for kind, text in questions:
        answer = engine.ask(text)
        feats = [answer.signals.get(f, 0.0) for f in CONFIDENCE_FEATURES]
        rows.append((corpus, kind, feats, answer.confidence))
    return rows


def squad_rows(path: Path, root: Path, settings: Settings, embedder: Embedder,
               per_fold: int) -> list[Row]:
    ds = load_dataset(path)
    kept: list[DatasetDoc] = []
    removed: dict[str, set[str]] = {}
    for i, d in enumerate(ds.docs):
        if i % 6 == 5:
            continue
        kept.append(DatasetDoc(d.id, d.title, d.paragraphs[::2]))
        removed[d.id] = set(d.paragraphs[1::2])
    prep = prepare_index(kept, root / "squad-halves", settings, lambda: embedder)
    engine = Engine(settings.model_copy(update={"index_dir": root / "squad-halves" / "index"}),
                    lambda: embedder)
    position = {d.id: i for i, d in enumerate(ds.docs)}
    rng = random.Random(0)
    rows: list[Row] = []
    for fold, parity in (("squad-even", 0), ("squad-odd", 1)):
        qs = [q for q in ds.queries if position[q.gold_doc or ""] % 2 == parity]
        qs = rng.sample(qs, min(per_fold, len(qs)))
        asked = []
        for q in qs:
            if q.gold_doc not in removed:
                kind = "off_topic"
            elif q.gold_text in removed[q.gold_doc]:
                kind = "near_miss"
            else:
                kind = "answerable"
            asked.append((kind, q.text))
        rows += _ask_all(engine, fold, asked)
    prep.version.close()
    return rows


def style_rows(name: str, docs: Path, root: Path, settings: Settings,
               embedder: Embedder) -> list[Row]:
    s = settings.model_copy(update={"corpus_dir": docs, "index_dir": root / name})
    build_index(s, lambda: embedder)
    engine = Engine(s, lambda: embedder)
    asked = []
    for line in (DATA / name / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        if q["kind"] in ("answerable", "near_miss", "off_topic", "other_language"):
            asked.append((q["kind"], q["question"]))
    return _ask_all(engine, name, asked)


def scores(conf: np.ndarray, should: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    abstain = conf < threshold
    tp = int(np.sum(abstain & should))
    out: dict[str, Any] = {
        "questions": int(len(conf)),
        "abstention_precision": round(tp / max(int(np.sum(abstain)), 1), 3),
        "abstention_recall": round(tp / max(int(np.sum(should)), 1), 3),
        "answerable_abstained": round(float(np.mean(abstain[~should])), 3) if np.any(~should)
        else None,
    }
    if 0 < np.sum(should) < len(should):
        out["auroc"] = round(float(roc_auc_score(should, -conf)), 3)
        precision, recall, _ = precision_recall_curve(should, -conf)
        out["recall_at_p0.8"] = round(float(np.max(recall[precision >= 0.8], initial=0.0)), 3)
    return out


def report(rows: list[Row], confidence: np.ndarray) -> dict[str, Any]:
    out = {}
    for corpus in dict.fromkeys(r[0] for r in rows):
        idx = [i for i, r in enumerate(rows) if r[0] == corpus and r[1] != "other_language"]
        should = np.array([rows[i][1] in ABSTAIN for i in idx])
        entry = scores(confidence[idx], should)
        near = [i for i in idx if rows[i][1] in ("answerable", "near_miss")]
        if any(rows[i][1] == "near_miss" for i in near):
            got = scores(confidence[near], np.array([rows[i][1] == "near_miss" for i in near]))
            entry["near_miss_recall_at_p0.8"] = got.get("recall_at_p0.8")
            entry["near_miss_auroc"] = got.get("auroc")
        for kind in ("answerable", "near_miss", "off_topic", "other_language"):
            k_idx = [i for i, r in enumerate(rows) if r[0] == corpus and r[1] == kind]
            if k_idx:
                entry[f"{kind}_answered"] = f"{int(np.sum(confidence[k_idx] >= 0.5))}/{len(k_idx)}"
        out[corpus] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("squad", type=Path)
    ap.add_argument("seed", type=Path, help="folder holding the seed article")
    ap.add_argument("--root", type=Path, required=True, help="where indexes are built and kept")
    ap.add_argument("--per-fold", type=int, default=1500)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--max-abstained", type=float, default=MAX_ANSWERABLE_ABSTAINED,
                    help="answerable questions abstained on, at most, on each fit corpus")
    ap.add_argument("--rows", type=Path, help="reuse (or write) the answered rows here; only "
                    "valid while the signals' code is unchanged")
    args = ap.parse_args()
    if args.rows and args.rows.is_file():
        rows = [tuple(r) for r in json.loads(args.rows.read_text())]
    else:
        settings = Settings(min_confidence=0.0)
        embedder = load_embedder(settings)
        rows = squad_rows(args.squad, args.root, settings, embedder, args.per_fold)
        for name in ("news", "techdoc", "blog"):
            rows += style_rows(name, DATA / name / "docs", args.root, settings, embedder)
        rows += style_rows("seed", args.seed, args.root, settings, embedder)
        if args.rows:
            args.rows.write_text(json.dumps(rows))

    fit = [r for r in rows if r[0] in FIT and r[1] != "other_language"]
    X = np.array([r[2] for r in fit])
    y = np.array([r[1] not in ABSTAIN for r in fit])
    per_corpus = {c: sum(r[0] == c for r in fit) for c in FIT}
    w = np.array([len(fit) / (len(FIT) * per_corpus[r[0]]) for r in fit])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(X, y, sample_weight=w)
    p = model.predict_proba(X)[:, 1]
    # A missing kind of answer halves the confidence (qa.search.answer.KIND_MISSING_FACTOR), which
    # puts it below the default threshold whatever the threshold: count those as abstentions.
    p = np.where(X[:, CONFIDENCE_FEATURES.index("kind_missing")] > 0, 0.0, p)
    # So does a lead passage that shares no word with the question (qa.search.answer.vetoed).
    p = np.where(X[:, CONFIDENCE_FEATURES.index("chunk_coverage")] <= 0, 0.0, p)
    # The highest threshold that abstains on at most MAX_ANSWERABLE_ABSTAINED of the answerable
    # questions of every fit corpus: a wrong "not in the corpus" costs the user more than a near
    # miss answered with its (visible) evidence, and it should cost no more on one corpus than
    # on another.
    corpus = np.array([r[0] for r in fit])

    def worst(t: float) -> float:
        return max(float(np.mean(p[(corpus == c) & y] < t)) for c in FIT)
    best = max((t for t in np.linspace(0.05, 0.95, 181) if worst(t) <= args.max_abstained),
               default=0.05)
    intercept = float(model.intercept_[0]) - float(np.log(best / (1 - best)))
    coefs = [round(intercept, 4), *(round(float(c), 4) for c in model.coef_[0])]
    print("CONFIDENCE_MODEL =", tuple(coefs), f"(fit threshold {best:.2f} -> 0.5)")
    fitted = np.array([confidence_of(dict(zip(CONFIDENCE_FEATURES, r[2], strict=True)),
                                     tuple(coefs)) for r in rows])
    current = np.array([r[3] for r in rows])
    result = {"features": list(CONFIDENCE_FEATURES), "coefficients": coefs,
              "max_answerable_abstained": args.max_abstained,
              "fitted_on": list(FIT), "fitted": report(rows, fitted),
              "current_model": report(rows, current)}
    for name in ("current_model", "fitted"):
        print(f"\n{name}:")
        for corpus, entry in result[name].items():
            print(f"  {corpus:<11} " + "  ".join(f"{k} {v}" for k, v in entry.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
