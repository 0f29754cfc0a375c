"""Datasets and `qa eval`: small synthetic BEIR and SQuAD-style folders, the fake embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import DatasetError
from qa.eval.datasets import load_dataset
from qa.eval.evaluate import (
    abstention_scores,
    format_report,
    mrr_at,
    ndcg_at,
    recall_at,
    run_eval,
)

from .conftest import FakeEmbedder

DOCS = [
    ("d1", "Volcanoes", "Iceland has about thirty active volcano systems. Hekla erupted in 2000."),
    ("d2", "Bees", "A honey bee colony has one queen. Workers perform a waggle dance."),
    ("d3", "Tea", "Tea was first drunk in China as a medicine. It reached London in the 1660s."),
    ("d4", "Rivers", "The Danube flows through ten countries before reaching the Black Sea."),
]
QUERIES = [
    ("q1", "Which volcano erupted in 2000?", "d1"),
    ("q2", "What dance do worker bees perform?", "d2"),
    ("q3", "When did tea reach London?", "d3"),
]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "beir"
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in DOCS])
    write_jsonl(root / "queries.jsonl", [{"_id": q, "text": t} for q, t, _ in QUERIES])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, _, d in QUERIES))
    return root


ARTICLES = [
    ("Iceland", ["Iceland has about thirty active volcano systems.",
                 "Hekla erupted in 2000 and Eyjafjallajokull closed European airspace in 2010."]),
    ("Honey bee", ["A colony has one queen and thousands of workers.",
                   "Workers perform a waggle dance to tell others where flowers are."]),
    ("Tea", ["Tea was first drunk in China as a medicine.",
             "The British East India Company brought tea to London in the 1660s."]),
    ("Danube", ["The Danube flows through ten countries.",
                "It reaches the Black Sea in Romania and Ukraine."]),
]
SQUAD_QUESTIONS = [
    ("s1", "Which volcano erupted in 2000?", ["Hekla"], "a0-p1"),
    ("s2", "What do workers perform to tell others where flowers are?", ["a waggle dance"],
     "a1-p1"),
    ("s3", "Which company brought tea to London?", ["British East India Company"], "a2-p1"),
    ("s4", "Where does the Danube reach the Black Sea?", ["Romania and Ukraine"], "a3-p1"),
]


@pytest.fixture
def squad(tmp_path: Path) -> Path:
    root = tmp_path / "squad"
    write_jsonl(root / "articles.jsonl", [
        {"_id": title.replace(" ", "_"), "title": title, "text": "\n\n".join(paras)}
        for title, paras in ARTICLES])
    write_jsonl(root / "corpus.jsonl", [
        {"_id": f"a{i}-p{j}", "title": title, "text": p}
        for i, (title, paras) in enumerate(ARTICLES) for j, p in enumerate(paras)])
    write_jsonl(root / "queries.jsonl", [
        {"_id": q, "text": t, "metadata": {"answers": a, "gold_doc": g, "is_impossible": False}}
        for q, t, a, g in SQUAD_QUESTIONS])
    return root


def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "unused", min_confidence=0.0, candidates=10)


def test_metrics_by_hand():
    assert ndcg_at(["a", "b"], {"a": 1}) == 1.0
    assert ndcg_at(["b", "a"], {"a": 1}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert recall_at(["x", "a"], {"a": 1, "b": 1}, 10) == 0.5
    assert mrr_at([False, False, True]) == pytest.approx(1 / 3)
    assert mrr_at([False] * 20) == 0.0
    scores = abstention_scores([(False, True), (True, True), (False, False), (True, False)])
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5


def test_load_beir(beir: Path):
    ds = load_dataset(beir)
    assert ds.kind == "beir" and len(ds.docs) == 4 and len(ds.queries) == 3
    assert ds.queries[0].relevant == {"d1": 1}


def test_eval_beir_reports_metrics_and_reuses_index(beir: Path, tmp_path: Path):
    fake = FakeEmbedder()
    report = run_eval(beir, settings(tmp_path), lambda: fake, tmp_path / "eval")
    m = report["metrics"]
    assert set(m) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert m["recall@10"] == 1.0 and m["ndcg@10"] > 0.8
    assert report["index"]["built_now"] and report["latency_ms"]["mean"] > 0
    assert "ndcg@10" in format_report(report)
    again = run_eval(beir, settings(tmp_path), FakeEmbedder, tmp_path / "eval")
    assert not again["index"]["built_now"]
    assert again["metrics"] == m


def test_eval_squad_hits_and_abstention(squad: Path, tmp_path: Path):
    s = settings(tmp_path).model_copy(update={"min_confidence": 0.5})
    report = run_eval(squad, s, FakeEmbedder, tmp_path / "eval")
    m = report["metrics"]
    assert {"hit@1", "hit@5", "answer_sentence@1"} <= set(m)
    assert m["hit@5"] == 1.0
    ab = report["abstention"]
    assert ab["held_out_documents"] == 2 and ab["unanswerable"] == 2 and ab["questions"] == 4
    # The questions about the two held-out articles abstain, and only those.
    assert ab["abstained"] == 2 and ab["precision"] == 1.0 and ab["recall"] == 1.0
    # With no confidence floor nothing abstains: the figures follow the answers, not a constant.
    never = run_eval(squad, s.model_copy(update={"min_confidence": 0.0}), FakeEmbedder,
                     tmp_path / "eval")
    assert never["abstention"]["abstained"] == 0
    assert never["abstention"]["precision"] == never["abstention"]["recall"] == 0.0


def test_squad_gold_paragraph_must_exist(squad: Path):
    lines = (squad / "queries.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace("a2-p1", "a9-p9")
    (squad / "queries.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"queries.jsonl:3: gold_doc 'a9-p9'"):
        load_dataset(squad)


@pytest.mark.parametrize("damage,message", [
    (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{oops\n'),
     r"corpus.jsonl:2: not valid JSON"),
    (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1"}\n'),
     r"corpus.jsonl:1: missing field 'text'"),
    (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnope\t1\n"),
     r"test.tsv:2: corpus id 'nope' is not in corpus.jsonl"),
    (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n"),
     r"test.tsv:2: query id 'q9' is not in queries.jsonl"),
    (lambda r: (r / "qrels" / "test.tsv").write_text("q1\td1\n"),
     r"test.tsv:1: expected 3 tab-separated columns"),
    (lambda r: (r / "qrels" / "test.tsv").unlink(), r"test.tsv: file not found"),
    (lambda r: (r / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q1", '
                                                '"text": "b"}\n'),
     r"queries.jsonl:2: duplicate id 'q1'"),
])
def test_bad_dataset_names_file_and_line(beir: Path, damage, message):
    damage(beir)
    with pytest.raises(DatasetError, match=message):
        load_dataset(beir)


def test_not_a_dataset(tmp_path: Path):
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(tmp_path / "missing")


def test_cli_eval_on_bad_folder_is_one_line_error(tmp_path: Path, beir: Path):
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnope\t1\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for folder, message in [(tmp_path / "nothing", "not a folder"),
                            (beir, "test.tsv:2: corpus id 'nope'")]:
        result = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(folder),
                                 "--index-dir", str(tmp_path / "idx")],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
