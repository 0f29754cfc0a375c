"""Property-based tests: any Unicode text keeps chunk and sentence offsets exact."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.config import Settings
from qa.index.chunk import chunk_document, sentence_spans
from qa.index.clean import clean_text
from qa.index.embed import load_counter
from qa.index.ingest import UnreadableFile, parse_file

COUNTER = load_counter(Settings())

# Text with the awkward parts overrepresented: punctuation, newlines, invisible and RTL marks.
ALPHABET = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
    st.sampled_from(list(".!?;:,\"'()[]-–— \n\n\t\u200b\u202e\u00a0€1234567890")),
)
TEXT = st.text(ALPHABET, max_size=3000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_sentence_spans_are_ordered_slices(text: str):
    text = clean_text(text)  # sentences are only ever split in clean text
    spans = sentence_spans(text)
    last = 0
    for a, b in spans:
        assert last <= a < b <= len(text)
        assert text[a:b].strip()
        last = b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.sampled_from([".txt", ".md", ".html"]), st.integers(8, 200), st.integers(0, 3))
def test_chunks_are_exact_slices_of_clean_text(text: str, suffix: str, budget: int, overlap: int):
    try:
        doc = parse_file(f"doc{suffix}", text.encode("utf-8"))
    except UnreadableFile:
        return  # nothing readable: the build skips such a file with a reason
    chunks = chunk_document(doc, COUNTER, budget=budget, overlap=overlap)
    assert chunks, "a readable document yields at least one chunk"
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.text.strip()
    # No visible character of the document is lost between chunks.
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and i not in covered]
    assert not missing, [doc.text[i] for i in missing[:10]]
