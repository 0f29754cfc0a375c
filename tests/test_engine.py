import pytest

from qa.config import Settings
from qa.errors import BadQuestionError
from qa.search.engine import Engine

from .conftest import FakeEmbedder


def test_answer_cites_exact_sentence(built: Settings):
    answer = Engine(built, FakeEmbedder).ask("Which company brought tea to London?")
    assert not answer.abstained
    first = answer.citations[0]
    assert first.title == "Tea history" and first.path == "page.html"
    doc = Engine(built, FakeEmbedder).version.document(first.document_id)
    assert doc.text[first.start:first.end] == first.text
    a, b = first.highlight[0]
    assert "East India Company" in doc.text[a:b]
    assert "[1]" in answer.text


def test_pdf_citation_has_page(built: Settings):
    answer = Engine(built, FakeEmbedder).ask("Where do penguins live?")
    cited = [c for c in answer.citations if c.path == "report.pdf"]
    assert cited and cited[0].page == 2


@pytest.mark.parametrize("question", ["", "   \n\t", "x" * 100_000])
def test_bad_questions(built: Settings, question: str):
    with pytest.raises(BadQuestionError):
        Engine(built, FakeEmbedder).ask(question)


@pytest.mark.parametrize("question", ["???", "the of and"])
def test_no_content_words_abstains(built: Settings, question: str):
    answer = Engine(built, FakeEmbedder).ask(question)
    assert answer.abstained and "does not answer" in answer.text
