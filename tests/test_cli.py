"""The CLI as a user runs it: a real subprocess, one-line errors, non-zero exits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def qa(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=600)


def traced(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the CLI and return the modules it imported (from `python -X importtime`)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "qa.cli", *args],
                            capture_output=True, text=True, env=ENV, timeout=600)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    result.stderr = "\n".join(line for line in result.stderr.splitlines()
                              if not line.startswith("import time:"))
    return result, imported


TORCH_SIDE = {"torch", "sentence_transformers", "transformers"}


@pytest.mark.parametrize("args,message", [
    (["ask", ""], "the question is empty"),
    (["ask", "   "], "the question is empty"),
    (["ask", "x" * 100_000], "the limit is"),
    (["index", "/nonexistent/corpus"], "corpus folder not found"),
])
def test_bad_input_is_one_line_error(tmp_path: Path, args, message):
    result = qa(*args, "--index", str(tmp_path / "idx"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_index_tells_to_run_index(tmp_path: Path):
    result = qa("ask", "What?", "--index", str(tmp_path / "idx"))
    assert result.returncode == 1
    assert "run 'qa index'" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_index_is_one_line_error(tmp_path: Path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "CURRENT").write_text("v1\n")
    result = qa("ask", "What?", "--index", str(tmp_path / "idx"))
    assert result.returncode == 1 and "is gone" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_corpus_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = qa("index", str(tmp_path / "empty"), "--index", str(tmp_path / "idx"))
    assert result.returncode == 1 and "no supported files" in result.stderr


@pytest.mark.model
def test_index_and_ask_on_bundled_corpus(tmp_path: Path):
    """The real model, end to end through the CLI, on the article in corpus/."""
    repo = Path(__file__).resolve().parent.parent
    index = str(tmp_path / "idx")
    # A first build writes the ONNX encoder from the weights, and imports no torch to do it.
    built, imported = traced("index", str(repo / "corpus"), "--index", index)
    assert built.returncode == 0, built.stderr
    assert "documents: 1" in built.stdout and "skipped: 0" in built.stdout
    assert "qa.index.bert_onnx" in imported and not imported & TORCH_SIDE
    result = qa("ask", "How much money was put into Dutch photonic circuits?", "--index", index,
                "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not answer["abstained"]
    first = answer["citations"][0]
    assert "€133 million" in first["text"]
    assert first["path"] == "eu-japan-digital-partnership.txt"
    doc = (repo / "corpus" / first["path"]).read_text(encoding="utf-8")
    start, end = first["highlight"][0]
    assert "€133 million" in doc[start:end]  # the corpus file is already clean text
    assert "€133 million" in answer["text"] and "[1]" in answer["text"]
    # The short answer leads, with its offsets into the document.
    span = answer["answer_span"]
    assert span["text"] == "€133 million" and doc[span["start"]:span["end"]] == "€133 million"
    plain = qa("ask", "How much money was put into Dutch photonic circuits?", "--index", index)
    assert plain.stdout.startswith("€133 million [1]")
    assert "[1] The EU and Japan Build a Digital Partnership" in plain.stdout
    # An abstention says why.
    off = qa("ask", "How do I bake sourdough bread?", "--index", index)
    assert off.returncode == 0 and "does not answer" in off.stdout
    assert "No passage covers the question" in off.stdout
    # The default ONNX encoder answers without importing torch (a fast cold start), with the
    # encoder the version keeps: nothing is written from the weights again.
    asked, imported = traced("ask", "Where would the Arctic cable go?", "--index", index)
    assert asked.returncode == 0, asked.stderr[-2000:]
    assert "qa.index.onnx_encoder" in imported and not imported & TORCH_SIDE
    assert "qa.index.bert_onnx" not in imported


def test_version_and_usage_errors_are_clean():
    version = qa("--version")
    assert version.returncode == 0 and version.stdout.startswith("qa ")
    for args in (["--nosuch"], ["nosuch"], ["ask"]):
        result = qa(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and "Error:" in result.stderr


@pytest.mark.model
def test_index_watch_rebuilds_on_a_change_and_stops_on_ctrl_c(tmp_path: Path):
    import signal
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tides.txt").write_text("Tides rise twice a day along the coast.\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", str(corpus), "--index", str(tmp_path / "idx"),
         "--watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        deadline = time.monotonic() + 300
        while "watching" not in (line := proc.stderr.readline()):
            assert line and time.monotonic() < deadline, "qa index --watch did not start"
        time.sleep(0.5)
        (corpus / "moon.txt").write_text("The Moon orbits the Earth every 27 days.\n")
        reports = []
        while len(reports) < 2:  # the first build's report, then the rebuild's
            chunk = [proc.stdout.readline()]
            while chunk[-1].rstrip() != "}":
                assert chunk[-1], "qa index --watch ended early"
                chunk.append(proc.stdout.readline())
            reports.append(json.loads("".join(chunk)))
        assert reports[1]["added"] == ["moon.txt"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
