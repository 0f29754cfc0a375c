"""Fit the short-answer ranker (qa/search/span_rank.py) on SQuAD's even articles; report the odd.

    python bench/fit_spans.py SQUAD_DIR --root CACHE [--write] [--json OUT]

1. Every question is asked through the engine (confidence threshold 0, so each gets its lead
   sentence) on an index of all 48 articles (CACHE/squad-all, shared with
   bench/short_answers.py); question, lead sentence, answers and confidence are cached in
   CACHE/spans-collected.jsonl.
2. The ranker is a conditional logistic model over the candidate phrases of the lead sentence;
   it is trained on the even articles' questions whose lead sentence holds a gold answer as a
   candidate. The L2 strength and the probability threshold are chosen by two-fold
   cross-validation inside the even articles (articles 0 and 2 mod 4).
3. Reported on the odd articles, never seen: SQuAD exact match and F1 over all questions
   (no span or an abstention scores 0) and over the questions given a span; typed questions
   (when, how much, who...) use the pattern rules of qa/search/span.py unless --rank-typed.

--write stores the weights in qa/search/span_weights.py.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from qa.config import Settings
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import _squad_norm, prepare_index, token_f1
from qa.index.embed import load_embedder
from qa.index.index_dir import IndexDir
from qa.index.terms import WORD, query_terms, stemmer
from qa.search.answer import evidence_weights
from qa.search.engine import Engine
from qa.search.retrieve import term_idf
from qa.search.span import _candidates, answer_kind
from qa.search.span_features import phrase_features
from qa.search.span_rank import N_FEATURES, expand, feature_names, read_question

WEIGHTS_FILE = Path(__file__).parent.parent / "qa" / "search" / "span_weights.py"
MIN_CONFIDENCE = 0.5  # the default threshold: below it the engine abstains and gives no span


def collect(squad: Path, root: Path) -> list[dict[str, Any]]:
    cache = root / "spans-collected.jsonl"
    if cache.is_file():
        return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    settings = Settings(min_confidence=0.0)
    embedder = load_embedder(settings)
    ds = load_dataset(squad)
    prepare_index(ds.docs, root / "squad-all", settings, lambda: embedder)
    engine = Engine(settings.model_copy(update={"index_dir": root / "squad-all" / "index"}),
                    lambda: embedder)
    position = {d.id: i for i, d in enumerate(ds.docs)}
    rows = []
    for q in ds.queries:
        answer = engine.ask(q.text)
        lead = answer.sentences[0].text if answer.sentences else ""
        rows.append({"id": q.id, "article": position[q.gold_doc or ""], "question": q.text,
                     "sentence": lead, "answers": q.answers, "confidence": answer.confidence,
                     "rule_span": answer.answer_span.text if answer.answer_span else None})
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _stems(*texts: str) -> dict[str, str]:
    return stemmer().stems({w for t in texts for w in WORD.findall(t.lower())})


def featurise(rows: list[dict[str, Any]], rank_typed: bool, root: Path) -> list[dict[str, Any]]:
    """Per question: candidate spans, sparse features and which candidates match an answer."""
    out = []
    version = IndexDir(root / "squad-all" / "index").open_current()
    for r in rows:
        kind = answer_kind(r["question"])
        item = {**r, "kind": kind, "cands": [], "labels": []}
        if r["sentence"] and (kind is None or rank_typed):
            stem = _stems(r["question"], r["sentence"])
            kinds = _candidates(kind, r["sentence"]) if kind else []
            # The question's term weights as the engine computes them (qa.search.answer).
            idf = evidence_weights(r["question"], term_idf(version, query_terms(r["question"])),
                                   version.n_chunks) or {}
            q = read_question(r["question"], stem, idf)
            starts, ends, X = phrase_features(q, r["sentence"], stem, kinds)
            gold = {_squad_norm(a) for a in r["answers"]}
            item["cands"] = list(zip(starts.tolist(), ends.tolist(), strict=True))
            item["X"] = sparse.csr_matrix(expand(q, X))
            item["labels"] = [_squad_norm(r["sentence"][a:b]) in gold for a, b in item["cands"]]
        out.append(item)
    version.close()
    return out


def _matrix(items: list[dict[str, Any]]) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    X = sparse.vstack([it["X"] for it in items]).tocsr()  # noqa: N806
    labels = np.concatenate([np.array(it["labels"], dtype=bool) for it in items])
    groups = np.concatenate([np.full(len(it["labels"]), g) for g, it in enumerate(items)])
    return X, labels, groups


def fit(items: list[dict[str, Any]], l2: float) -> np.ndarray:
    """Conditional logit: maximise the probability mass on the gold candidates of each group."""
    train = [it for it in items if any(it["labels"])]
    X, y, g = _matrix(train)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = X @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - top[g])
        z_all = np.add.reduceat(e, starts)
        z_pos = np.add.reduceat(e * y, starts)
        value = float(np.sum(np.log(z_all) - np.log(z_pos))) + 0.5 * l2 * float(w @ w)
        grad_coef = e / z_all[g] - (e * y) / z_pos[g]
        return value, X.T @ grad_coef + l2 * w

    res = minimize(loss, np.zeros(N_FEATURES), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500})
    return res.x


def predict(it: dict[str, Any], w: np.ndarray, rank_typed: bool) -> tuple[str | None, float]:
    """The short answer the engine would give (None: no span) and the ranker's probability."""
    if not it["sentence"] or it["confidence"] < MIN_CONFIDENCE:
        return None, 0.0
    if it["kind"] is not None and not rank_typed:
        return it["rule_span"], 1.0
    if not it["cands"]:
        return None, 0.0
    s = it["X"] @ w
    p = np.exp(s - s.max())
    p /= p.sum()
    best = int(np.argmax(p))
    a, b = it["cands"][best]
    return it["sentence"][a:b], float(p[best])


def score(items: list[dict[str, Any]], w: np.ndarray, threshold: float, rank_typed: bool,
          untyped_only: bool = False) -> dict[str, float]:
    em = f1 = given = 0.0
    n = 0
    for it in items:
        if untyped_only and it["kind"] is not None:
            continue
        n += 1
        text, p = predict(it, w, rank_typed)
        if text is None or p < threshold:
            continue
        given += 1
        em += max(float(_squad_norm(text) == _squad_norm(a)) for a in it["answers"])
        f1 += max(token_f1(text, a) for a in it["answers"])
    return {"questions": n, "span_given": round(given / max(n, 1), 3),
            "em": round(em / max(n, 1), 3), "f1": round(f1 / max(n, 1), 3),
            "em_when_given": round(em / max(given, 1), 3),
            "f1_when_given": round(f1 / max(given, 1), 3)}


THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
# The threshold is the lowest at which the spans given to untyped questions are right (F1) at
# least this often in cross-validation: a wrong short answer, shown first, misleads.
MIN_F1_WHEN_GIVEN = 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("squad", type=Path)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--rank-typed", action="store_true",
                    help="rank the candidates of typed questions too, instead of the rules")
    ap.add_argument("--l2", type=float, nargs="*", default=[0.3, 1.0, 3.0, 10.0])
    ap.add_argument("--sample", type=int, default=0, help="questions per fold (0: all)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = collect(args.squad, args.root)
    if args.sample:
        rng = random.Random(0)
        rows = [r for parity in (0, 1) for r in rng.sample(
            [x for x in rows if x["article"] % 2 == parity],
            min(args.sample, sum(x["article"] % 2 == parity for x in rows)))]
    items = featurise(rows, args.rank_typed, args.root)
    even = [it for it in items if it["article"] % 2 == 0]
    odd = [it for it in items if it["article"] % 2 == 1]
    folds = ([it for it in even if it["article"] % 4 == 0], [it for it in even
                                                             if it["article"] % 4 == 2])
    ranked = [it for it in items if it["cands"]]
    oracle = sum(any(it["labels"]) for it in ranked) / max(len(ranked), 1)
    print(f"candidates per sentence {np.mean([len(it['cands']) for it in ranked]):.1f}; "
          f"a gold answer among them {oracle:.3f}")
    cv: dict[str, Any] = {}
    for l2 in args.l2:
        ws = [fit(folds[1], l2), fit(folds[0], l2)]
        for t in THRESHOLDS:
            parts = [score(folds[k], ws[k], t, args.rank_typed, untyped_only=True)
                     for k in (0, 1)]
            cv[f"{l2}/{t}"] = {key: round((parts[0][key] + parts[1][key]) / 2, 3)
                               for key in ("span_given", "em", "f1", "em_when_given",
                                           "f1_when_given")}
            print(f"l2 {l2:<5} threshold {t:<5} cv untyped {cv[f'{l2}/{t}']}")
    best_l2 = max(args.l2, key=lambda v: cv[f"{v}/0.0"]["f1"])
    threshold = min((t for t in THRESHOLDS if cv[f"{best_l2}/{t}"]["f1_when_given"]
                     >= MIN_F1_WHEN_GIVEN), default=THRESHOLDS[-1])
    w = fit(even, best_l2)
    report = {"l2": best_l2, "threshold": threshold, "gold_among_candidates": round(oracle, 3),
              "cross_validation": cv}
    for name, fold in (("even articles (fit)", even), ("odd articles (held out)", odd)):
        report[name] = {"all": score(fold, w, threshold, args.rank_typed),
                        "untyped": score(fold, w, threshold, args.rank_typed, True)}
        print(name, json.dumps(report[name]))
    names = feature_names()
    top = sorted(range(N_FEATURES), key=lambda k: -abs(w[k]))[:15]
    print("largest weights:", ", ".join(f"{names[k]} {w[k]:+.2f}" for k in top))
    if args.write:
        body = ",\n".join(f"    {w[k]:.4f},  # {names[k]}" for k in range(N_FEATURES))
        WEIGHTS_FILE.write_text(
            '"""Weights of the short-answer ranker (qa/search/span_rank.py), written by '
            'bench/fit_spans.py."""\n\n'
            "# One weight per name of qa.search.span_rank.feature_names(), in that order: fitted "
            "on the\n# questions of SQuAD's even articles only (conditional logit, L2 "
            f"{best_l2}).\nSPAN_MODEL: tuple[float, ...] = (\n{body},\n)\n"
            "# A span is given only when the ranker puts at least this probability on it "
            "(chosen by\n# cross-validation inside the even articles).\n"
            f"SPAN_MIN_PROBABILITY = {threshold}\n")
        print("wrote", WEIGHTS_FILE)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
