from pathlib import Path

import pytest

from qa.errors import CorpusError
from qa.index.clean import clean_text
from qa.index.ingest import SkippedFile, UnreadableFile, iter_corpus_files, parse_file

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
            b"<h1>Head</h1><p>Visible <i>text</i>.</p><style>.x{}</style><!-- hidden -->"
            b"</body></html>")
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
    (tiny_corpus / ".git").mkdir()
    (tiny_corpus / ".git" / "notes.txt").write_text("not part of the corpus")
    skipped: list[SkippedFile] = []
    found = [p.relative_to(tiny_corpus).as_posix() for p in iter_corpus_files(tiny_corpus, skipped)]
    # A folder's files in name order, then its subfolders: the order builds read in.
    assert found == ["binary.txt", "broken.pdf", "latin1.txt", "notes.docx", "page.html",
                     "report.pdf", "volcanoes.txt", "sub/bees.md"]
    # Hidden entries are reported; a file of an unsupported type (ignored.csv) is not.
    assert {s.path: s.reason for s in skipped} == {".git": "hidden folder: not indexed",
                                                   ".hidden.txt": "hidden file: not indexed"}


def test_missing_corpus_folder(tmp_path: Path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_corpus_files(tmp_path / "nope"))


def test_page_furniture_is_left_out_in_any_language():
    article = (
        "Harbour Locks Reopen After Two Years\n\n"
        "Why The Work Took So Long\n"
        "Engineers replaced both gates of the northern lock. The cost was shared by the port and "
        "the city.\n"
        "Critics said the closure hurt small shipping firms, who use cookies and biscuits as a "
        "metaphor for their thin margins in a long complaint about the tender.\n\n"
        "Leave a Reply\n\n"
        "Your email address will not be published. Required fields are marked *\n\n"
        "Comment\n\n"
        "发表回复\n\n"
        "您的邮箱地址不会被公开。 必填项已用 * 标注\n\n"
        "Schreibe einen Kommentar\n"
    ).encode()
    doc = parse_file("locks.txt", article)
    assert "Engineers replaced both gates" in doc.text
    assert "cookies and biscuits" in doc.text  # prose that mentions furniture words stays
    for furniture in ("Leave a Reply", "email address", "发表回复", "邮箱", "Kommentar",
                      "Required fields"):
        assert furniture not in doc.text


def test_a_heading_line_inside_a_paragraph_is_a_heading():
    text = (b"Ports of the North\n\n"
            b"Why The Work Took So Long: A Look Back\n"
            b"Engineers replaced both gates. The cost was shared.\n"
            b"Is It Worth The Money?\n"
            b"Most shippers say it is, because waiting times halved.\n")
    doc = parse_file("ports.txt", text)
    titles = [h.title for h in doc.headings]
    assert titles == ["Ports of the North", "Why The Work Took So Long: A Look Back",
                      "Is It Worth The Money?"]
    # Each heading is a paragraph of its own, so no sentence runs a heading into prose.
    assert "A Look Back\n\nEngineers" in doc.text


def test_html_navigation_footer_and_forms_are_left_out():
    page = (b"<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
            b"<article><h1>Locks</h1><p>The locks reopened in May.</p></article>"
            b"<form><label>Search the site</label><input name=q></form>"
            b"<footer>Copyright 2026 Harbour Media</footer></body></html>")
    doc = parse_file("locks.html", page)
    assert "The locks reopened in May." in doc.text
    for furniture in ("Home", "Search the site", "Copyright"):
        assert furniture not in doc.text


def test_markdown_tables_become_rows_that_name_their_columns_and_code_stays_code():
    md = (b"# Options\n\nSome text.\n\n| Option | Default | Meaning |\n|---|:---:|---|\n"
          b"| `rate` | 10 | Requests per second. |\n| **burst** | 20 | Extra requests at once |\n\n"
          b"```yaml\n# a comment, not a heading\nrate: 10\n```\n\nAfter the code.\n")
    doc = parse_file("options.md", md)
    assert "rate — Default: 10, Meaning: Requests per second." in doc.text
    assert "burst — Default: 20, Meaning: Extra requests at once." in doc.text
    assert "|" not in doc.text and "---" not in doc.text
    assert [h.title for h in doc.headings] == ["Options"]
    assert "# a comment, not a heading\nrate: 10" in doc.text
