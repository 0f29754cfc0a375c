"""Answer quality on one folder of documents: right answers, abstentions and follow-ups, per kind.

    python bench/answers.py DOCS_DIR QUESTIONS_JSONL [--index-dir DIR] [--json OUT] [--verbose]

DOCS_DIR is indexed with the project's own library (incrementally, so an unchanged folder reuses
its vectors) into --index-dir, by default bench/out/answers/<parent>-<name> of DOCS_DIR.
QUESTIONS_JSONL holds one object a line with `id`, `kind` and `question` (`answers` and `evidence`
where there is an answer; a `followup` has two `turns` of those instead). Kinds and what counts:

* answerable, other_language: right = not abstained, and the `evidence` words (case and spacing
  ignored) occur both in the sentences citation [1] highlights and in the answer text;
* standalone mid-chat: each answerable question again, after one other answerable question and
  its answer as history; right by the same rule;
* followup: turn 2, asked with turn 1 and its answer as history; right by the same rule;
* near_miss, off_topic: abstained;
* abstention precision and recall: should abstain = near_miss + off_topic, should answer =
  answerable;
* short answers: when answers carry an `answer_span`, SQuAD exact match and token F1 against
  `answers` (an abstention or a missing span scores 0).
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import build_index
from qa.index.embed import load_embedder
from qa.search.engine import Engine
from qa.search.followup import ask_in_conversation

if TYPE_CHECKING:
    from qa.search.answer import Answer

History = Sequence[tuple[str, str]]
SCORED = ("answerable", "other_language", "standalone mid-chat", "followup")
ABSTAIN = ("near_miss", "off_topic")


def squish(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def squad_tokens(text: str) -> list[str]:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces; as tokens."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = squad_tokens(prediction), squad_tokens(gold)
    same = sum((Counter(pred) & Counter(ref)).values())
    if not same:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def cited_sentences(answer: Answer) -> str:
    """The sentences citation [1] highlights, or its whole passage if it highlights none."""
    if not answer.citations:
        return ""
    first = next((c for c in answer.citations if c.n == 1), answer.citations[0])
    spans = getattr(first, "highlight", None) or []
    if not spans:
        return first.text
    return " ".join(first.text[a - first.start : b - first.start] for a, b in spans)


def judge(answer: Answer, answers: list[str] | None, evidence: str | None) -> dict[str, Any]:
    """One asked question as a result row: the answer given and how it scores."""
    row: dict[str, Any] = {
        "query": answer.query, "answer": answer.text, "abstained": answer.abstained,
        "confidence": answer.confidence, "cited": cited_sentences(answer),
    }
    if evidence is not None:
        ev = squish(evidence)
        row["right"] = (not answer.abstained and ev in squish(row["cited"])
                        and ev in squish(answer.text))
    if answers and hasattr(answer, "answer_span"):
        span = getattr(answer, "answer_span", None)
        short = "" if answer.abstained or span is None else str(getattr(span, "text", "") or "")
        row["span"] = short
        row["em"] = float(any(squad_tokens(short) == squad_tokens(g) for g in answers))
        row["f1"] = max(token_f1(short, g) for g in answers)
    return row


def run(engine: Engine, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask every question; mid-chat repeats of the answerable ones come last."""
    def ask(question: str, history: History = ()) -> Answer:
        return ask_in_conversation(engine, question, history) if history else engine.ask(question)

    results: list[dict[str, Any]] = []
    given: dict[str, Answer] = {}
    for item in items:
        base = {"id": item["id"], "kind": item["kind"]}
        if item["kind"] == "followup":
            first, second = item["turns"]
            a1 = ask(first["question"])
            a2 = ask(second["question"], [("user", first["question"]), ("assistant", a1.text)])
            turn1 = judge(a1, first.get("answers"), first.get("evidence"))
            results.append({**base, "question": second["question"], "history": first["question"],
                            **judge(a2, second.get("answers"), second.get("evidence")),
                            "turn1_right": turn1.get("right")})
            continue
        answer = ask(item["question"])
        given[item["id"]] = answer
        results.append({**base, "question": item["question"],
                        **judge(answer, item.get("answers"), item.get("evidence"))})
    answerable = [i for i in items if i["kind"] == "answerable"]
    for n, item in enumerate(answerable):
        if len(answerable) < 2:
            break
        before = answerable[(n + 1) % len(answerable)]
        history = [("user", before["question"]), ("assistant", given[before["id"]].text)]
        results.append({"id": item["id"], "kind": "standalone mid-chat",
                        "question": item["question"], "history": before["question"],
                        **judge(ask(item["question"], history), item.get("answers"),
                                item.get("evidence"))})
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in results if r["kind"] == kind]

    summary: dict[str, Any] = {}
    for kind in SCORED:
        rows = of(kind)
        if rows:
            entry = {"right": sum(bool(r["right"]) for r in rows), "total": len(rows)}
            spans = [r for r in rows if "em" in r]
            if spans:
                entry["em"] = sum(r["em"] for r in spans) / len(spans)
                entry["f1"] = sum(r["f1"] for r in spans) / len(spans)
            summary[kind] = entry
    for kind in ABSTAIN:
        if rows := of(kind):
            summary[kind] = {"abstained": sum(r["abstained"] for r in rows), "total": len(rows)}
    should = [r for r in results if r["kind"] in ABSTAIN]
    wrongly = [r for r in of("answerable") if r["abstained"]]
    caught = sum(r["abstained"] for r in should)
    summary["abstention"] = {
        "precision": caught / (caught + len(wrongly)) if caught + len(wrongly) else None,
        "recall": caught / len(should) if should else None,
    }
    return summary


def table(summary: dict[str, Any]) -> str:
    def ratio(a: int, b: int) -> str:
        return f"{a:>3}/{b:<3} {a / b:5.2f}" if b else "    -"

    def fig(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    lines = [f"{'kind':<22} {'score':<13} {'EM':>5} {'F1':>5}"]
    for kind in SCORED:
        if s := summary.get(kind):
            label = "followup (turn 2)" if kind == "followup" else kind
            lines.append(f"{label:<22} {ratio(s['right'], s['total'])} "
                         f"{fig(s.get('em')):>5} {fig(s.get('f1')):>5}")
    for kind in ABSTAIN:
        if s := summary.get(kind):
            lines.append(f"{kind + ' (abstained)':<22} {ratio(s['abstained'], s['total'])}")
    ab = summary["abstention"]
    lines.append(f"abstention precision {fig(ab['precision'])}  recall {fig(ab['recall'])}")
    return "\n".join(lines)


def mistakes(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        wrong = (r["kind"] in ABSTAIN and not r["abstained"]) or r.get("right") is False
        if wrong:
            after = f" (after: {r['history']})" if "history" in r else ""
            lines.append(f"[{r['kind']}] {r['id']}: {r['question']}{after}")
            if r["query"] != r["question"]:
                lines.append(f"    searched: {r['query']}")
            lines.append(f"    -> {r['answer'][:300]}")
            if r.get("span"):
                lines.append(f"    short answer: {r['span']}")
    return "\n".join(lines)


def prepare(docs: Path, index_dir: Path) -> Engine:
    """Build (or bring up to date) the index of `docs` and load an engine on it."""
    settings = Settings(corpus_dir=docs, index_dir=index_dir)
    factory: Callable[[], Any] = cache(lambda: load_embedder(settings))
    report = build_index(settings, factory)
    print(f"index {index_dir}: version {report.version}, {report.chunks} chunks, "
          f"{report.embedded_chunks} embedded", file=sys.stderr)
    return Engine(settings, embedder_factory=factory)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("docs", type=Path, help="folder of documents to index")
    ap.add_argument("questions", type=Path, help="questions, one JSON object a line")
    ap.add_argument("--index-dir", type=Path, help="where the index is built and reused")
    ap.add_argument("--json", type=Path, help="also write the summary and every answer here")
    ap.add_argument("--verbose", action="store_true", help="list the wrong answers")
    ap.add_argument("--no-text", action="store_true",
                    help="leave the documents' own sentences out of --json (for a user's data)")
    args = ap.parse_args()
    items = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    # Named after the folder and its parent, so that news/docs and blog/docs get their own.
    default = Path("bench/out/answers") / "-".join(args.docs.resolve().parts[-2:])
    index_dir = args.index_dir or default
    try:
        engine = prepare(args.docs, index_dir)
        results = run(engine, items)
    except QAError as exc:
        sys.exit(f"error: {exc}")
    summary = summarise(results)
    print(table(summary))
    if args.verbose and (wrong := mistakes(results)):
        print("\n" + wrong)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        if args.no_text:
            results = [{k: v for k, v in r.items() if k not in ("answer", "cited")}
                       for r in results]
        report = {"docs": str(args.docs), "questions": str(args.questions),
                  "index_version": engine.version.name, "summary": summary, "results": results}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
