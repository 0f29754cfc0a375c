"""Fit the abstention model (qa.answer.CONFIDENCE_MODEL) on SQuAD-style data.

    python bench/fit_confidence.py SQUAD_DIR INDEX_ROOT [--per-fold 1500]

Every other article is left out of the corpus (as `qa eval` does). Articles are split into
two folds by position: fit on articles 0, 1 (mod 4) -- their questions are answerable and
unanswerable respectively -- and report on articles 2, 3 (mod 4), which the fit never saw.
Prints the coefficients, the threshold and held-out abstention precision/recall.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from qa.answer import CONFIDENCE_FEATURES
from qa.config import Settings
from qa.datasets import load_dataset
from qa.embed import load_embedder
from qa.evaluate import HELD_OUT_EVERY, _seed_index, answer_question, prepare_index

FEATURES = list(CONFIDENCE_FEATURES)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("root", type=Path, help="the --index-dir given to qa eval")
    ap.add_argument("--per-fold", type=int, default=1500)
    args = ap.parse_args()
    settings = Settings(min_confidence=0.0)
    ds = load_dataset(args.dataset)
    embedder = load_embedder(settings)
    kept = [d for i, d in enumerate(ds.docs) if i % HELD_OUT_EVERY != 1]
    _seed_index(args.root / "full" / "index", args.root / "held-out" / "index")
    prep = prepare_index(kept, args.root / "held-out", settings, lambda: embedder)
    position = {d.id: i for i, d in enumerate(ds.docs)}
    kept_ids = {d.id for d in kept}
    rng = random.Random(0)
    folds = {}
    for name, mods in (("fit", {0, 1}), ("report", {2, 3})):
        qs = [q for q in ds.queries if position[q.gold_doc] % 4 in mods]
        folds[name] = rng.sample(qs, min(args.per_fold, len(qs)))
    data = {}
    for name, qs in folds.items():
        X, y = [], []
        for q in qs:
            _, answer, _ = answer_question(prep, q, embedder, settings)
            if not answer.signals:
                continue
            X.append([answer.signals[f] for f in FEATURES])
            y.append(q.gold_doc in kept_ids)
        data[name] = (np.array(X), np.array(y))
        print(f"{name}: {len(y)} questions, {int(np.sum(y))} answerable")
    X, y = data["fit"]
    model = LogisticRegression(C=10.0, max_iter=1000).fit(X, y)
    p = model.predict_proba(X)[:, 1]
    # Threshold: the one that maximises abstention F1 on the fit fold.
    best = max(np.linspace(0.05, 0.95, 91), key=lambda t: f1(p < t, ~y))
    # Shift the intercept so that this threshold sits at 0.5 (the default min_confidence).
    intercept = float(model.intercept_[0]) - float(np.log(best / (1 - best)))
    coefs = [round(intercept, 4), *(round(float(c), 4) for c in model.coef_[0])]
    print("CONFIDENCE_MODEL =", tuple(coefs), f"(fit-fold threshold {best:.2f} -> 0.5)")
    for name, (Xf, yf) in data.items():
        z = coefs[0] + Xf @ np.array(coefs[1:])
        abstain = z < 0
        tp = int(np.sum(abstain & ~yf))
        prec = tp / max(int(np.sum(abstain)), 1)
        rec = tp / max(int(np.sum(~yf)), 1)
        print(f"{name}: abstention precision {prec:.4f} recall {rec:.4f} "
              f"(answered-when-answerable {np.mean(~abstain[yf]):.4f})")
    print(json.dumps({"features": FEATURES, "coefficients": coefs}))


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    return 2 * tp / max(float(np.sum(pred) + np.sum(truth)), 1.0)


if __name__ == "__main__":
    main()
