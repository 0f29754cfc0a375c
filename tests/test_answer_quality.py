"""Answers a reader can use: short spans, no headings or page furniture as answers, citations in
order, honest abstentions, and follow-ups that never hurt a standalone question.

The article below is written for these tests in the style users bring: a saved web page with
headings on lines of their own, informal prose, currency signs and a comment form at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings
from qa.index.build import build_index
from qa.index.embed import load_embedder
from qa.search.answer import NO_TERMS, compose
from qa.search.engine import Engine
from qa.search.followup import ask_in_conversation

from .conftest import FakeEmbedder

ARTICLE = """Alpine Rail Freight Gets a Hydrogen Makeover

Tunnels, Trains and Tanks: The Corridor Plan
Swiss and Austrian rail operators announced a joint hydrogen freight corridor on Tuesday. The \
Brenner line will see its first fuel-cell locomotives in 2028, according to the operators.
The project is funded with €410 million from a European infrastructure fund, while the \
locomotive maker Stadler Rail will build twelve engines in its Bussnang plant.

Why Hydrogen and Not Batteries?
Heavy freight on steep gradients drains batteries quickly, so the planners picked hydrogen. \
Refuelling depots will sit in Innsbruck and Bolzano, each storing four tonnes of gas.
Critics point out that only 15% of the hydrogen will be made from renewable power at first.

Leave a Reply

Your email address will not be published. Required fields are marked *

发表回复
"""


@pytest.fixture
def article_index(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rail.txt").write_text(ARTICLE, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, FakeEmbedder)
    return settings


def _engine(settings: Settings, **overrides: object) -> Engine:
    return Engine(settings.model_copy(update={"min_confidence": 0.0, **overrides}), FakeEmbedder)


def test_short_answer_span_lies_inside_its_cited_sentence(article_index: Settings):
    engine = _engine(article_index)
    for question, short in [("When will the Brenner line get fuel-cell locomotives?", "2028"),
                            ("How much money comes from the European infrastructure fund?",
                             "€410 million"),
                            ("What percentage of the hydrogen is renewable at first?", "15%")]:
        answer = engine.ask(question)
        span = answer.answer_span
        assert span is not None, question
        assert span.text == short
        doc = engine.version.document(span.document_id)
        assert doc.text[span.start:span.end] == short
        cited = next(s for s in answer.sentences if s.n == span.n)
        assert cited.start <= span.start and span.end <= cited.end


def test_headings_and_page_furniture_are_never_answer_sentences(article_index: Settings):
    engine = _engine(article_index)
    doc_text = engine.version.document(engine.version.documents()[0]["id"]).text
    assert "Leave a Reply" not in doc_text and "发表回复" not in doc_text
    answer = engine.ask("Why hydrogen and not batteries for the corridor plan?")
    assert answer.sentences
    for s in answer.sentences:
        assert s.text not in ("Why Hydrogen and Not Batteries?",
                              "Tunnels, Trains and Tanks: The Corridor Plan")
    reply = engine.ask("Leave a reply: is my email address published?")
    assert all("email" not in s.text.lower() for s in reply.sentences)


def test_citations_are_numbered_in_order_of_first_use(article_index: Settings):
    engine = _engine(article_index)
    for question in ("Where will the refuelling depots be and who builds the engines?",
                     "How much hydrogen will each depot store and how many engines are built?"):
        answer = engine.ask(question, k=8)
        seen: list[int] = []
        for s in answer.sentences:
            if s.n not in seen:
                seen.append(s.n)
        assert seen == list(range(1, len(seen) + 1))


def test_a_rewrite_is_kept_only_when_it_wins(article_index: Settings):
    engine = _engine(article_index)
    standalone = "Where will the refuelling depots be?"
    alone = engine.ask(standalone)
    # A rewrite dragging in words of an unrelated earlier turn must not change the answer.
    mixed = engine.ask(standalone, query=standalone + " Stadler Rail locomotive engines twelve")
    assert mixed.sentences[0].text == alone.sentences[0].text
    history = [("user", "Who builds the locomotives?"),
               ("assistant", "Stadler Rail will build twelve engines in its Bussnang plant. [1]")]
    in_chat = ask_in_conversation(engine, standalone, history)
    assert in_chat.sentences[0].text == alone.sentences[0].text


def test_a_followup_with_a_pronoun_uses_the_conversation(article_index: Settings):
    engine = _engine(article_index)
    history = [("user", "Which company builds the hydrogen locomotives?"),
               ("assistant", "Stadler Rail will build twelve engines in its Bussnang plant. [1]")]
    answer = ask_in_conversation(engine, "Where is its plant?", history)
    assert answer.query != answer.question
    assert "Bussnang" in answer.sentences[0].text


def test_abstentions_say_why(article_index: Settings):
    engine = _engine(article_index, min_confidence=0.99)
    empty = engine.ask("what is the?")
    assert empty.abstained and empty.reason == NO_TERMS and not empty.citations
    foreign = engine.ask("Wann fahren die ersten Wasserstoffloks über den Brenner?")
    assert foreign.abstained and "German" in foreign.reason
    english = engine.ask("When will the depots open?")
    assert english.abstained and english.reason and "German" not in english.reason


def test_another_language_is_judged_on_the_words_it_shares(article_index: Settings):
    engine = _engine(article_index)  # min_confidence 0: only the language rule can abstain
    thin = engine.ask("Quel est le prix du billet pour le Brenner ?")  # shares one word
    assert thin.abstained and "French" in thin.reason
    shared = engine.ask("¿Cuánto dinero aporta el European infrastructure fund?")
    assert not shared.abstained
    assert shared.answer_span is not None and shared.answer_span.text == "€410 million"


def test_compose_without_candidates_abstains(article_index: Settings):
    engine = _engine(article_index)
    answer = compose("When?", "trains", [], engine.version, 0.5)
    assert answer.abstained and answer.citations == []


@pytest.mark.model
def test_real_model_answers_the_article_and_abstains_off_it(article_index: Settings):
    """The bundled encoder and the shipped confidence model, end to end on an informal page."""
    settings = article_index.model_copy(update={"index_dir": article_index.index_dir.parent
                                                / "index-real"})
    embedder = load_embedder(settings)
    build_index(settings, lambda: embedder)
    engine = Engine(settings, lambda: embedder)
    for question, short in [("When do the first fuel-cell locomotives run on the Brenner line?",
                             "2028"),
                            ("How much is the hydrogen freight corridor funded with?",
                             "€410 million")]:
        answer = engine.ask(question)
        assert not answer.abstained, (question, answer.confidence, answer.signals)
        assert answer.answer_span is not None and answer.answer_span.text == short
    for question in ("How do I bake sourdough bread?", "Who won the 1998 football world cup?",
                     "发表回复"):
        answer = engine.ask(question)
        assert answer.abstained, (question, answer.confidence, answer.signals)
    # A date or a place the article never gives, on its own topic: abstain, and say what is
    # missing.
    for question, missing in [("When will the Bolzano refuelling depot open?", "a date"),
                              ("How many staff will work at the Innsbruck depot?", "a number")]:
        near = engine.ask(question)
        assert near.abstained and missing in near.reason, (question, near.signals)
