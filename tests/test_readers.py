"""Format readers: Markdown through markdown-it-py, HTML main content through trafilatura, DOCX
in document order; every document's text stays the exact text citations point into."""

from __future__ import annotations

import io

import pytest

from qa.index.ingest import parse_file
from qa.index.markup import read_html, read_markdown
from qa.index.readers import read_docx, table_sentences

# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_setext_and_atx_headings():
    md = (b"Harbour Guide\n=============\n\nThe harbour opens at dawn.\n\n"
          b"Tides\n-----\n\nTwo a day.\n\n### Neap tides ###\n\nSmaller ones.\n")
    doc = parse_file("guide.md", md)
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "Harbour Guide"), (2, "Tides"), (3, "Neap tides")]
    assert doc.title == "Harbour Guide"
    assert "=" not in doc.text and "---" not in doc.text and "#" not in doc.text
    assert doc.section_at(doc.text.index("Smaller")) == "Tides > Neap tides"


def test_markdown_links_keep_their_text_and_lose_their_targets():
    md = (b"Read [the tide tables](https://tides.example/tables \"Tables\") or "
          b"<https://port.example>; see ![a map](map.png) and **bold** _words_.\n")
    doc = parse_file("links.md", md)
    assert doc.text == "Read the tide tables or https://port.example; see and bold words."


def test_markdown_code_stays_code_whatever_it_looks_like():
    md = (b"# Setup\n\n~~~toml\n# not a heading\n[server]\nport = 8000\n~~~\n\n"
          b"Indented:\n\n    | not | a table |\n    - not a list\n\nAfter.\n")
    blocks = read_markdown(md)
    assert [b.heading_level for b in blocks] == [1, 0, 0, 0, 0]
    assert blocks[1].text == "# not a heading\n[server]\nport = 8000"
    assert blocks[3].text == "| not | a table |\n- not a list"
    assert blocks[4].text == "After."


def test_an_unclosed_fence_runs_to_the_end_and_loses_nothing():
    blocks = read_markdown(b"Intro.\n\n```\ncode line one\ncode line two\n")
    assert [b.text for b in blocks] == ["Intro.", "code line one\ncode line two"]


def test_markdown_lists_are_items_and_ordered_ones_keep_their_numbers():
    md = b"Steps:\n\n1. Moor the boat.\n2. Pay the fee\n   at the office.\n\n- apples\n  - red\n"
    assert [b.text for b in read_markdown(md)] == [
        "Steps:", "1. Moor the boat.", "2. Pay the fee\nat the office.", "apples", "red"]


def test_markdown_raw_html_keeps_text_and_never_scripts():
    md = (b"<div align=\"center\"><b>Harbour</b> notes</div>\n\n"
          b"<script>\nsteal()\n</script>\n\nBody text.\n")
    doc = parse_file("raw.md", md)
    assert "Harbour notes" in doc.text and "Body text." in doc.text
    assert "steal" not in doc.text and "<" not in doc.text


def test_markdown_front_matter_is_not_text():
    md = b"---\ntitle: Harbour\ntags: [tides]\n---\n# Harbour\n\nBody.\n"
    doc = parse_file("fm.md", md)
    assert doc.text == "Harbour\n\nBody."
    assert [h.title for h in doc.headings] == ["Harbour"]


def test_markdown_table_rows_name_their_columns():
    md = (b"| Port | Depth | Notes |\n|:--|--:|---|\n| **Brannoch** | 12 m | [tidal](x) |\n"
          b"| Kell | | closed in winter |\n")
    assert [b.text for b in read_markdown(md)] == [
        "Brannoch — Depth: 12 m, Notes: tidal.", "Kell — Notes: closed in winter."]


def test_table_sentences_without_a_header_join_cells():
    assert table_sentences([["a", "", "b"], ["", ""]], header=False) == ["a | b"]
    assert table_sentences([["Port", "Depth"]], header=True) == ["Port | Depth"]


def test_markdown_offsets_are_exact_for_headings_and_chunks():
    md = "Title\n=====\n\nÉté à Brest: [les marées](x) sont fortes.\n\n## Deux\n\nFin.\n".encode()
    doc = parse_file("fr.md", md)
    for h in doc.headings:
        assert doc.text[h.start:h.end] == h.title
    assert doc.text == "Title\n\nÉté à Brest: les marées sont fortes.\n\nDeux\n\nFin."


# --- HTML -------------------------------------------------------------------------------------

BLOG = b"""<!doctype html><html><head><title>Grandma's Singer | Threads</title>
<script>var ga = 1;</script></head><body>
<div class="cookie-banner">We use cookies to improve your visit. <button>Accept</button></div>
<header><div class="site-title">Threads</div><ul class="menu"><li><a href="/">Home</a></li>
<li><a href="/about">About me</a></li><li><a href="/shop">Shop</a></li></ul></header>
<div id="content"><main><article>
<h1>Bringing Grandma's Singer Back to Life</h1>
<p>The machine is a Singer 201K, built at the Clydebank factory in 1954.</p>
<h2>What it cost</h2>
<table><tr><th>Part</th><th>Price</th></tr><tr><td>Carbon brushes</td><td>12 euros</td></tr>
<tr><td>Drive belt</td><td>18 euros</td></tr></table>
<p>All in, I spent <b>85 euros</b> on parts.</p>
<h3>Oiling</h3>
<pre><code>oil every joint
wait one night</code></pre>
<p>Old oil is what kills these machines, not age.</p>
<div class="sharedaddy"><h3>Share this:</h3><a href="#">Facebook</a> <a href="#">Email</a></div>
</article>
<div id="comments" class="comments-area"><h3>Leave a Reply</h3><form><label>Comment</label>
<textarea></textarea></form></div></main>
<aside class="widget-area"><h2>Recent Posts</h2><ul><li><a href="/a">Quilting basics</a></li>
<li><a href="/b">Ten fabrics I love</a></li></ul></aside></div>
<footer><p>Copyright 2024 Threads. All rights reserved.</p></footer></body></html>"""


def test_html_main_content_without_the_page_furniture():
    doc = parse_file("singer.html", BLOG)
    for kept in ("Clydebank factory in 1954", "85 euros", "Old oil is what kills",
                 "Carbon brushes — Price: 12 euros.", "Drive belt — Price: 18 euros."):
        assert kept in doc.text
    for furniture in ("cookies", "About me", "Shop", "Share this", "Facebook", "Leave a Reply",
                      "Recent Posts", "Ten fabrics", "All rights reserved", "var ga"):
        assert furniture not in doc.text, furniture
    assert [(h.level, h.title) for h in doc.headings] == [
        (1, "Bringing Grandma's Singer Back to Life"), (2, "What it cost"), (3, "Oiling")]
    assert doc.title == "Grandma's Singer | Threads"
    assert "oil every joint\nwait one night" in doc.text
    # The <title> differs from the <h1>, so the <h1> is part of the section path.
    assert doc.section_at(doc.text.index("Old oil")) == (
        "Bringing Grandma's Singer Back to Life > What it cost > Oiling")


def test_html_without_a_content_container_keeps_its_headings():
    page = (b"<html><body><h1>Tides</h1><p>Tides rise twice a day.</p><h2>Neap</h2>"
            b"<p>Neap tides are small.</p><div>A loose line of text.</div></body></html>")
    blocks, title = read_html(page)
    assert [(b.heading_level, b.text) for b in blocks] == [
        (1, "Tides"), (0, "Tides rise twice a day."), (2, "Neap"), (0, "Neap tides are small."),
        (0, "A loose line of text.")]
    assert title is None


def test_html_figures_layout_tables_and_list_items_keep_their_text_in_order():
    page = (b"<html><body><table><tr><td><a href='/'>Home</a></td><td><h1>Ropes</h1>"
            b"<p>A bowline makes a fixed loop.</p><figure><pre><code>over, around, back\n"
            b"down the hole</code></pre><figcaption>Listing 1: the knot</figcaption></figure>"
            b"<ol><li><p>Step one ties it</p><pre><code>pull tight\n</code></pre></li></ol>"
            b"</td></tr></table></body></html>")
    text = parse_file("ropes.html", page).text
    order = ["A bowline makes a fixed loop.", "over, around, back\ndown the hole",
             "Listing 1: the knot", "Step one ties it", "pull tight"]
    positions = [text.find(part) for part in order]
    assert -1 not in positions and positions == sorted(positions), text


@pytest.mark.parametrize("page", [
    b"",
    b"   \n",
    b"<?xml version='1.0' encoding='utf-8'?><html><body><p>Declared herons.</p></body></html>",
    b"<p>Only a fragment about otters.</p>",
    b"<html><body>Bare \x0b text\x01 about kites.</body></html>",
    b"<div>" * 3000 + b"deep text" + b"</div>" * 3000,
])
def test_odd_html_is_read_or_refused_never_a_crash(page: bytes):
    blocks, _ = read_html(page)
    text = " ".join(b.text for b in blocks)
    for expected in (b"herons", b"otters", b"kites"):
        if expected in page:
            assert expected.decode() in text


# --- DOCX -------------------------------------------------------------------------------------


def docx_bytes(build) -> bytes:
    import docx

    d = docx.Document()
    build(d)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_tables_stay_where_they_are_and_header_rows_name_columns():
    def build(d):
        d.add_heading("Fares", 1)
        d.add_paragraph("Fares for the ferry are below.")
        table = d.add_table(rows=3, cols=3)
        for r, row in enumerate([("Route", "Adult", "Child"), ("North", "3 euros", "1 euro"),
                                 ("South", "4 euros", "2 euros")]):
            for c, value in enumerate(row):
                table.cell(r, c).paragraphs[0].add_run(value).bold = r == 0
        d.add_heading("Timetable", 2)
        d.add_paragraph("Boats leave hourly.")
        plain = d.add_table(rows=2, cols=2)
        plain.cell(0, 0).text, plain.cell(0, 1).text = "Office", "Pier 3"
        plain.cell(1, 0).merge(plain.cell(1, 1)).text = "Open daily"

    blocks = read_docx(docx_bytes(build))
    assert [(b.heading_level, b.text) for b in blocks] == [
        (1, "Fares"), (0, "Fares for the ferry are below."),
        (0, "North — Adult: 3 euros, Child: 1 euro."),
        (0, "South — Adult: 4 euros, Child: 2 euros."),
        (2, "Timetable"), (0, "Boats leave hourly."), (0, "Office | Pier 3"), (0, "Open daily")]
    doc = parse_file("fares.docx", docx_bytes(build))
    assert doc.section_at(doc.text.index("Office")) == "Timetable"  # under the title, "Fares"
    assert doc.headings[1].start < doc.text.index("Office")
    assert doc.text.index("North") < doc.headings[1].start


def test_docx_header_row_marked_in_word_names_columns():
    from docx.oxml import OxmlElement

    def build(d):
        table = d.add_table(rows=2, cols=2)
        table.cell(0, 0).text, table.cell(0, 1).text = "Berth", "Length"
        table.cell(1, 0).text, table.cell(1, 1).text = "B4", "80 m"
        tr_pr = table.rows[0]._tr.get_or_add_trPr()
        tr_pr.append(OxmlElement("w:tblHeader"))

    assert [b.text for b in read_docx(docx_bytes(build))] == ["B4 — Length: 80 m."]
