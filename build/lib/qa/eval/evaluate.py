"""`qa eval`: build or reuse an index for a dataset, run its questions, report metrics."""

from __future__ import annotations

import logging
import math
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.errors import QAError
from qa.eval.datasets import (
    Dataset,
    DatasetDoc,
    DatasetQuery,
    clean_paragraph,
    load_dataset,
    write_corpus,
)
from qa.index.build import build_index, chunker_settings
from qa.index.embed import Embedder, model_id
from qa.index.index_dir import IndexDir
from qa.index.ingest import document_id, file_hash
from qa.index.store import IndexVersion
from qa.search.answer import Answer, compose
from qa.search.calibrate import baseline
from qa.search.retrieve import Candidate, Retriever

log = logging.getLogger(__name__)


@dataclass
class PreparedIndex:
    """A loaded index for a dataset and the dataset id of each indexed document."""

    version: IndexVersion
    doc_of: dict[str, str]  # index document id -> dataset document id
    built: bool


def _up_to_date(index: IndexDir, settings: Settings, folder: Path, paths: dict[str, str]) -> bool:
    try:
        version = index.open_current()
    except QAError:
        return False
    try:
        version.check_compatible(model_id(settings.model), chunker_settings(settings))
    except QAError:
        return False
    finally:
        version.close()
    docs = version.manifest.get("documents", {})
    if len(docs) != len(paths):
        return False
    for name in paths:
        entry = docs.get(document_id(name))
        if entry is None or entry.get("hash") != file_hash((folder / name).read_bytes()):
            return False
    return True


def prepare_index(
    docs: list[DatasetDoc],
    root: Path,
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    progress: Callable[[str, int, int], None] | None = None,
) -> PreparedIndex:
    """Write the documents under `root/corpus`, index them into `root/index` unless that index
    already holds exactly these documents with these settings, and load it."""
    corpus = root / "corpus"
    paths = write_corpus(docs, corpus)
    settings = settings.model_copy(update={"corpus_dir": corpus, "index_dir": root / "index"})
    index = IndexDir(settings.index_dir)
    built = False
    if not _up_to_date(index, settings, corpus, paths):
        log.info("indexing %d documents into %s", len(paths), settings.index_dir)
        build_index(settings, embedder_factory, progress=progress)
        built = True
    version = index.open_current()
    doc_of = {document_id(name): did for name, did in paths.items()}
    return PreparedIndex(version, doc_of, built)


# --- metrics ----------------------------------------------------------------------------------


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded relevance (BEIR's definition: gain = grade)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def mrr_at(hits: list[bool], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, h in enumerate(hits[:k]) if h), 0.0)


def doc_ranking(chunk_docs: list[str]) -> list[str]:
    """Documents in order of their best chunk (a document scores as its best chunk)."""
    seen: dict[str, None] = {}
    for d in chunk_docs:
        seen.setdefault(d, None)
    return list(seen)


def locate_gold(
    version: IndexVersion, doc_of: dict[str, str], queries: list[DatasetQuery]
) -> dict[str, tuple[str, int, int]]:
    """query id -> (index document id, start, end) of its gold paragraph in the indexed text."""
    index_id = {did: iid for iid, did in doc_of.items()}
    texts: dict[str, str] = {}
    found: dict[tuple[str, str], tuple[int, int]] = {}
    out = {}
    for q in queries:
        if q.gold_doc is None or q.gold_text is None or q.gold_doc not in index_id:
            continue
        iid = index_id[q.gold_doc]
        key = (iid, q.gold_text)
        if key not in found:
            if iid not in texts:
                texts[iid] = version.document(iid).text
            para = clean_paragraph(q.gold_text)
            at = texts[iid].find(para)
            found[key] = (at, at + len(para)) if at >= 0 else (-1, -1)
        a, b = found[key]
        if a >= 0:
            out[q.id] = (iid, a, b)
    return out


def normalised_answers(answers: list[str]) -> list[str]:
    """Answer strings as they appear in indexed (cleaned) text, longest first."""
    return sorted({clean_paragraph(a) for a in answers if clean_paragraph(a)}, key=len,
                  reverse=True)


def chunk_answers(
    doc_id: str, start: int, end: int, text: str, gold: tuple[str, int, int], answers: list[str]
) -> bool:
    """True when a passage overlaps the gold paragraph and contains an answer string."""
    gid, a, b = gold
    return doc_id == gid and start < b and a < end and any(x in text for x in answers)


# --- the runner -------------------------------------------------------------------------------

HELD_OUT_EVERY = 2  # articles 1, 3, 5, ... are left out of the corpus for unanswerable questions


def _sample(queries: list[DatasetQuery], limit: int | None) -> list[DatasetQuery]:
    """The first `limit` of a fixed shuffle (seed 0), in dataset order; all when no limit."""
    if not limit or limit >= len(queries):
        return queries
    keep = set(random.Random(0).sample(range(len(queries)), limit))
    return [q for i, q in enumerate(queries) if i in keep]


def _seed_index(src: Path, dst: Path) -> None:
    """Start a variant's index from a copy of the full one, so unchanged documents keep their
    vectors and only removals are applied; any failure just means a build from scratch."""
    if (dst / "CURRENT").exists() or not (src / "CURRENT").is_file():
        return
    try:
        name = (src / "CURRENT").read_text().strip()
        shutil.copytree(src / "versions" / name, dst / "versions" / name)
        shutil.copy2(src / "CURRENT", dst / "CURRENT")
    except OSError as exc:
        log.info("could not seed %s from %s (%s); building from scratch", dst, src, exc)
        shutil.rmtree(dst, ignore_errors=True)


@dataclass
class _Run:
    latencies: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    abstained: list[tuple[bool, bool]] = field(default_factory=list)  # (answerable, abstained)

    def add(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)


def answer_question(
    prep: PreparedIndex, q: DatasetQuery, embedder: Embedder, settings: Settings,
) -> tuple[list[Candidate], Answer, float]:
    """The full answering pipeline for one question, timed."""
    t = time.perf_counter()
    version = prep.version
    qvec = embedder.embed([q.text])[0]
    retriever = Retriever(version, settings.candidates)
    ranked = retriever.score(retriever.candidates(q.text, qvec))
    answer = compose(q.text, q.text, ranked[: settings.default_k], version,
                     settings.min_confidence, baseline=baseline(version, embedder))
    return ranked, answer, time.perf_counter() - t


def _score_query(run: _Run, prep: PreparedIndex, q: DatasetQuery, ranked: list[Candidate],
                 answer: Answer, gold: dict[str, tuple[str, int, int]]) -> None:
    docs = doc_ranking([prep.doc_of.get(c.doc_id, c.doc_id) for c in ranked])
    run.add("ndcg@10", ndcg_at(docs, q.relevant))
    run.add("recall@10", recall_at(docs, q.relevant, 10))
    run.add("recall@100", recall_at(docs, q.relevant, 100))
    if q.id not in gold:
        run.add("mrr@10", mrr_at([d in q.relevant for d in docs]))
        return
    answers = normalised_answers(q.answers)
    hits = [chunk_answers(c.doc_id, c.start, c.end, c.text, gold[q.id], answers) for c in ranked]
    run.add("mrr@10", mrr_at(hits))
    run.add("hit@1", float(any(hits[:1])))
    run.add("hit@5", float(any(hits[:5])))
    top = answer.sentences[0] if answer.sentences else None
    run.add("answer_sentence@1", float(top is not None and any(a in top.text for a in answers)))
    # Short answers, SQuAD's way: exact match and token F1 against the best gold answer; an
    # answer with no span (or an abstention) scores 0, and `short_given` says how often one came.
    span = answer.answer_span.text if answer.answer_span and not answer.abstained else None
    run.add("short_given", float(span is not None))
    run.add("short_em", max((float(_squad_norm(span) == _squad_norm(a)) for a in q.answers),
                            default=0.0) if span else 0.0)
    run.add("short_f1", max((token_f1(span, a) for a in q.answers), default=0.0) if span else 0.0)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def _squad_norm(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, articles or extra spaces."""
    return " ".join(_ARTICLES.sub(" ", _PUNCT.sub("", text.lower())).split())


def token_f1(predicted: str, gold: str) -> float:
    """SQuAD's token-overlap F1 between a predicted and a gold answer."""
    p, g = _squad_norm(predicted).split(), _squad_norm(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def run_eval(
    folder: Path,
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    index_root: Path,
    split: str = "test",
    limit: int | None = None,
    unanswerable: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate retrieval, answers and (for SQuAD-style sets) abstention on a dataset folder."""
    dataset = load_dataset(folder, split)
    tick = progress or (lambda phase, done, total: None)
    embedder = embedder_factory()
    prep = prepare_index(dataset.docs, index_root / "full", settings, lambda: embedder)
    queries = _sample(dataset.queries, limit)
    gold = locate_gold(prep.version, prep.doc_of, queries) if dataset.kind == "squad" else {}
    run = _Run()
    for i, q in enumerate(queries):
        tick("ask", i, len(queries))
        ranked, answer, seconds = answer_question(prep, q, embedder, settings)
        run.latencies.append(seconds)
        run.abstained.append((True, answer.abstained))
        _score_query(run, prep, q, ranked, answer, gold)
    tick("ask", len(queries), len(queries))
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "kind": dataset.kind,
        "split": split if dataset.kind == "beir" else "all",
        "queries": len(queries),
        "documents": len(dataset.docs),
        "index": {"chunks": prep.version.n_chunks, "version": prep.version.name,
                  "built_now": prep.built, "chunker": prep.version.manifest.get("chunker"),
                  "model": prep.version.manifest.get("model", {}).get("id")},
        "settings": {"candidates": settings.candidates, "k": settings.default_k,
                     "min_confidence": settings.min_confidence,
                     "embed_backend": settings.embed_backend},
        "metrics": {k: round(sum(v) / len(v), 4) for k, v in run.metrics.items()},
        "answered_share": round(sum(not a for _, a in run.abstained) / max(len(queries), 1), 4),
        "latency_ms": _latency(run.latencies),
    }
    if unanswerable and dataset.kind == "squad" and len(dataset.docs) >= 2:
        report["abstention"] = _abstention(dataset, queries, settings, embedder, index_root, tick)
    prep.version.close()
    return report


def _abstention(dataset: Dataset, queries: list[DatasetQuery], settings: Settings,
                embedder: Embedder, index_root: Path,
                tick: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Ask every question against a corpus lacking every other article: questions about a
    missing article should abstain, the others should not."""
    kept = [d for i, d in enumerate(dataset.docs) if i % HELD_OUT_EVERY != 1]
    missing = {d.id for d in dataset.docs} - {d.id for d in kept}
    _seed_index(index_root / "full" / "index", index_root / "held-out" / "index")
    prep = prepare_index(kept, index_root / "held-out", settings, lambda: embedder)
    pairs = []
    confidences: list[tuple[bool, float]] = []
    for i, q in enumerate(queries):
        tick("abstain", i, len(queries))
        _, answer, _ = answer_question(prep, q, embedder, settings)
        answerable = q.gold_doc not in missing
        pairs.append((answerable, answer.abstained))
        confidences.append((answerable, answer.confidence))
    prep.version.close()
    out = abstention_scores(pairs)
    out["held_out_documents"] = len(missing)
    out["threshold"] = settings.min_confidence
    return out


def abstention_scores(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision and recall of abstaining, from (answerable, abstained) pairs."""
    tp = sum(1 for ok, ab in pairs if ab and not ok)
    fp = sum(1 for ok, ab in pairs if ab and ok)
    fn = sum(1 for ok, ab in pairs if not ab and not ok)
    return {
        "questions": len(pairs),
        "unanswerable": tp + fn,
        "abstained": tp + fp,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
    }


def _latency(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    ms = sorted(s * 1000 for s in seconds)
    return {"mean": round(sum(ms) / len(ms), 1), "p50": round(ms[len(ms) // 2], 1),
            "p95": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 1)}


def format_report(report: dict[str, Any]) -> str:
    """The report as a few aligned lines for a terminal."""
    idx = report["index"]
    lines = [
        f"{report['dataset']} ({report['kind']}, {report['split']}): "
        f"{report['queries']} questions, "
        f"{report['documents']} documents, {idx['chunks']} chunks "
        f"(budget {(idx['chunker'] or {}).get('budget_tokens')}, model {idx['model']})",
    ]
    for name, value in report["metrics"].items():
        lines.append(f"  {name:<20} {value:.4f}")
    lines.append(f"  {'answered':<20} {report['answered_share']:.4f}")
    lat = report["latency_ms"]
    lines.append(f"  {'latency ms/query':<20} mean {lat['mean']}  p50 {lat['p50']}  "
                 f"p95 {lat['p95']}")
    ab = report.get("abstention")
    if ab:
        lines.append(f"  abstention ({ab['held_out_documents']} documents held out, "
                     f"{ab['unanswerable']} of {ab['questions']} questions unanswerable, "
                     f"threshold {ab['threshold']}):")
        lines.append(f"  {'  precision':<20} {ab['precision']:.4f}")
        lines.append(f"  {'  recall':<20} {ab['recall']:.4f}")
    return "\n".join(lines)
