from pathlib import Path

import pytest

from qa.clean import clean_text
from qa.errors import CorpusError
from qa.ingest import UnreadableFile, iter_corpus_files, parse_file

from .conftest import make_docx, make_pdf


def test_clean_text_removes_invisible_and_collapses_space():
    raw = "Zero\u200bwidth and \u202eRTL\u202c  text\r\n\r\n\r\n\tnext\x07 line "
    assert clean_text(raw) == "Zerowidth and RTL text\n\nnext line"


def test_plain_text_title_and_headings():
    doc = parse_file("a/volcano.txt", b"Volcanoes\n\nThey erupt.\n\nHistory\n\nHekla erupted.")
    assert doc.title == "Volcanoes"
    assert [h.title for h in doc.headings] == ["Volcanoes", "History"]
    assert doc.section_at(doc.text.index("Hekla")) == "History"


def test_markdown_headings_path():
    doc = parse_file("b.md", b"# Bees\n\nIntro.\n\n## Dance\n\n### Waggle\n\nThey dance.")
    assert doc.title == "Bees"
    assert doc.section_at(doc.text.index("They dance")) == "Dance > Waggle"


def test_html_visible_text_only():
    html = (b"<html><head><title>T</title><script>var secret=1</script></head><body>"
            b"<h1>Head</h1><p>Visible <i>text</i>.</p><style>.x{}</style><!-- hidden --></body></html>")
    doc = parse_file("p.html", html)
    assert doc.title == "T"
    assert "Visible text." in doc.text
    assert "secret" not in doc.text and "hidden" not in doc.text and ".x{}" not in doc.text
    assert doc.headings[0].title == "Head"


def test_pdf_pages_kept():
    doc = parse_file("r.pdf", make_pdf(["Alpha page text.", "Beta page text."]))
    assert doc.page_at(doc.text.index("Alpha")) == 1
    assert doc.page_at(doc.text.index("Beta")) == 2


def test_docx_headings_and_paragraphs():
    doc = parse_file("n.docx", make_docx([("Rivers", "Heading 1"), ("The Danube is long.", None)]))
    assert doc.title == "Rivers"
    assert "The Danube is long." in doc.text


def test_cp1252_text_is_decoded():
    doc = parse_file("c.txt", "Café in Vienna, señor, since 1683.".encode("cp1252"))
    assert "Café" in doc.text and "señor" in doc.text


@pytest.mark.parametrize("name,data,reason", [
    ("x.pdf", b"%PDF-1.4 garbage", "corrupt PDF"),
    ("x.txt", b"\x00\x01" * 50, "binary"),
    ("x.docx", b"not a zip", "corrupt DOCX"),
    ("x.html", b"<html><body><script>only()</script></body></html>", "no text"),
])
def test_unreadable_files_raise_with_reason(name, data, reason):
    with pytest.raises(UnreadableFile, match=reason):
        parse_file(name, data)


def test_docx_zip_bomb_refused():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", "<a/>" + " " * 20_000_000)
    with pytest.raises(UnreadableFile, match="zip bomb"):
        parse_file("bomb.docx", buf.getvalue())


def test_iter_corpus_skips_hidden_and_unsupported(tiny_corpus: Path):
    (tiny_corpus / ".hidden.txt").write_text("secret")
    names = [p.name for p in iter_corpus_files(tiny_corpus)]
    assert "ignored.csv" not in names and ".hidden.txt" not in names
    assert "bees.md" in names and names == sorted(names) or "bees.md" in names


def test_missing_corpus_folder(tmp_path: Path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_corpus_files(tmp_path / "nope"))
