"""A corpus built to break things: the build finishes, bad files are reported, text stays text."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from qa.config import Settings
from qa.index.build import build_index
from qa.index.index_dir import IndexDir
from qa.search.engine import Engine

from .conftest import FakeEmbedder, make_docx

HOSTILE_HTML = """<html><head><title>Hostile <script>alert(1)</script></title></head><body>
<h1 onclick="alert(2)">Harbour report</h1>
<p>The harbour handled <b>nine</b> ships.<script>document.location='http://evil'</script></p>
<p><a href="javascript:alert(3)">click</a> and <img src=x onerror="alert(4)"> inline.</p>
<p>&quot;&gt;&lt;img src=x onerror=alert(5)&gt; is shown as text.</p>
<iframe src="http://evil"></iframe><style>body{display:none}</style>
</body></html>"""


def zip_bomb_docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document>" + "A" * 150_000_000 + "</w:document>")
    return buf.getvalue()


def test_hostile_corpus_builds_and_reports(tmp_path: Path):
    corpus = tmp_path / "hostile"
    corpus.mkdir()
    (corpus / "hostile.html").write_text(HOSTILE_HTML)
    (corpus / "oneline.txt").write_text("lighthouse " * 200_000)  # 2.2 MB, no line break
    (corpus / "invisible.txt").write_text(
        "Zero\u200bwidth\u200c and \u202eright-to-left\u202c marks hide in this sentence "
        "about ferries.")
    (corpus / "big.txt").write_bytes(b"x" * (3 * 1024 * 1024))  # over the 2.5 MB limit set below
    (corpus / "bomb.docx").write_bytes(zip_bomb_docx())
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntrailer\n%%EOF")
    (corpus / "truncated.docx").write_bytes(make_docx([("Tides", None)])[:200])
    (corpus / "utf16.txt").write_bytes("Tides rise twice a day.".encode("utf-16"))
    (corpus / "empty.md").write_text("")
    s = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", max_file_mb=2.5,
                 min_confidence=0.0)
    report = build_index(s, FakeEmbedder)
    skipped = {x.path: x.reason for x in report.skipped}
    assert set(skipped) == {"big.txt", "bomb.docx", "broken.pdf", "truncated.docx", "empty.md"}
    assert "limit" in skipped["big.txt"] and "zip bomb" in skipped["bomb.docx"]
    assert report.documents == 4

    version = IndexDir(s.index_dir).open_current()
    html_doc = next(version.document(d["id"]) for d in version.documents()
                    if d["path"] == "hostile.html")
    # Scripts, styles and frames are gone; markup in text survives only as inert text.
    assert "alert(1)" not in html_doc.text and "evil" not in html_doc.text
    assert "display:none" not in html_doc.text and "onerror=\"alert(4)\"" not in html_doc.text
    assert '"><img src=x onerror=alert(5)> is shown as text.' in html_doc.text
    assert html_doc.title.startswith("Hostile")  # <title> is raw text: kept, escaped on display
    invisible = next(version.document(d["id"]) for d in version.documents()
                     if d["path"] == "invisible.txt")
    assert "\u200b" not in invisible.text and "\u202e" not in invisible.text
    assert "Zerowidth and right-to-left marks" in invisible.text
    answer = Engine(s, FakeEmbedder).ask("How many ships did the harbour handle?")
    assert answer.citations[0].path == "hostile.html"
    assert "nine" in answer.citations[0].text
