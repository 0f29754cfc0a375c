from qa.config import Settings
from qa.index.chunk import chunk_document, sentence_spans
from qa.index.embed import load_counter
from qa.index.ingest import parse_file

COUNTER = load_counter(Settings())


def test_sentence_spans_are_exact_slices():
    text = "Dr. Smith paid €1.5 million. It rained.\n\nNew paragraph here."
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Dr. Smith paid €1.5 million.", "It rained.", "New paragraph here."]


def test_chunks_are_exact_slices_with_metadata():
    body = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    text = f"# Title\n\n## Part one\n\n{body}\n\n## Part two\n\nShort end."
    doc = parse_file("d.md", text.encode())
    chunks = chunk_document(doc, COUNTER, budget=64, overlap=1)
    assert len(chunks) > 10
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.tokens <= 64
        assert c.doc_id == doc.id
    assert chunks[-1].section == "Part two"
    assert chunks[0].section == "Part one" and chunks[0].text.startswith("Title")
    # consecutive chunks in a section share one sentence
    assert chunks[1].start < chunks[0].end


def test_huge_single_line_is_cut_within_budget():
    doc = parse_file("big.txt", ("word " * 5000).encode() + b"x" * 3000)
    chunks = chunk_document(doc, COUNTER, budget=128, overlap=1)
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)
    assert max(COUNTER.count([c.text])[0] for c in chunks) <= 128 + 2
    covered = sum(len(c.text) for c in chunks)
    assert covered >= len(doc.text.replace(" ", "")) * 0.9


def test_every_word_is_in_some_chunk():
    text = "Alpha beta. Gamma delta!\n\nEpsilon? Zeta eta theta."
    doc = parse_file("w.txt", text.encode())
    chunks = chunk_document(doc, COUNTER, budget=8, overlap=0)
    joined = " ".join(c.text for c in chunks)
    for w in ["Alpha", "delta", "Epsilon", "theta"]:
        assert w in joined
