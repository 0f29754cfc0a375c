"""Shared fixtures: a tiny corpus in tmp_path, a deterministic fake embedder, settings."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index.build import build_index

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_thread(config: object) -> Iterator[str]:
    """A real uvicorn server for `config` (a uvicorn.Config) in a thread; yields its base URL."""
    import uvicorn

    assert isinstance(config, uvicorn.Config)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


class FakeEmbedder:
    """Bag-of-words hashing into 64 dimensions: fast, deterministic, and good enough to rank."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 64
    max_tokens = 256

    def __init__(self) -> None:
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out


def make_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def make_docx(paragraphs: list[tuple[str, str | None]]) -> bytes:
    import docx

    d = docx.Document()
    for text, style in paragraphs:
        if style and style.startswith("Heading"):
            d.add_heading(text, level=int(style.split()[-1]))
        else:
            d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def test_client_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestClient sends 'Host: testserver'; let the loopback allow-list take it as well."""
    monkeypatch.setenv("QA_ALLOWED_HOSTS", '["localhost", "127.0.0.1", "[::1]", "testserver"]')


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """One file of every supported kind, plus files that must be skipped."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "volcanoes.txt").write_text(
        "Volcanoes of Iceland\n\nIceland has about thirty active volcano systems. "
        "Hekla erupted in 2000 and Eyjafjallajokull closed European airspace in 2010.\n\n"
        "Geothermal energy\n\nMost homes in Reykjavik are heated by geothermal water piped from "
        "nearby fields.\n", encoding="utf-8")
    (root / "sub" / "bees.md").write_text(
        "# Honey bees\n\nA colony has one queen and thousands of workers.\n\n"
        "## Dance\n\nWorkers perform a waggle dance to tell others where flowers are.\n",
        encoding="utf-8")
    (root / "page.html").write_text(
        "<html><head><title>Tea history</title><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body><h1>Tea</h1>"
        "<p>Tea was first drunk in <b>China</b> as a medicine.</p><h2>Britain</h2>"
        "<p>The British East India Company brought tea to London in the 1660s.</p></body></html>",
        encoding="utf-8")
    (root / "report.pdf").write_bytes(make_pdf([
        "The first page talks about glaciers retreating across the Alps.",
        "The second page reports that penguins live in Antarctica.",
    ]))
    (root / "notes.docx").write_bytes(make_docx([
        ("Rivers", "Heading 1"),
        ("The Danube flows through ten countries before reaching the Black Sea.", None),
    ]))
    (root / "latin1.txt").write_bytes(
        "Café culture in Vienna dates back to the siege of 1683, señor.".encode("cp1252"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (root / "ignored.csv").write_text("a,b\n1,2\n")
    return root


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings(tmp_path: Path, tiny_corpus: Path) -> Settings:
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", min_confidence=0.0)


@pytest.fixture
def built(settings: Settings, fake_embedder: FakeEmbedder) -> Settings:
    build_index(settings, lambda: fake_embedder)
    return settings


@pytest.fixture(scope="session")
def bundled_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled model's ONNX encoders (int8 and fp32), written once per test session."""
    from qa.index.embed import model_id, resolve_model_path
    from qa.index.onnx_encoder import export_encoder

    root = tmp_path_factory.mktemp("encoders")
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert path is not None
    name = model_id("all-MiniLM-L6-v2")
    return {"onnx-int8": export_encoder(path, name, root / "int8", quantize=True),
            "onnx": export_encoder(path, name, root / "fp32", quantize=False)}


def seed_encoder(settings: Settings, encoders: dict[str, Path]) -> Settings:
    """Put the session's encoder where `load_embedder(settings)` looks for a fresh export, so a
    test with its own index folder does not write the encoder again."""
    from qa.index.embed import onnx_cache_dir
    from qa.index.encoder_files import install

    source, dest = encoders[settings.embed_backend], onnx_cache_dir(settings)
    digest = install(source, dest)
    dest.with_name(dest.name + ".sha256").write_text(digest + "\n")
    return settings
