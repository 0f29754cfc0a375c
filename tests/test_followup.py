"""Resolving follow-up questions against the conversation."""

from __future__ import annotations

import pytest

from qa.config import Settings
from qa.errors import BadQuestionError
from qa.search.engine import Engine
from qa.search.followup import ask_in_conversation, content_words, is_followup, kind, names, resolve

from .conftest import FakeEmbedder

Q1 = "Which consortium will make 2-nanometre chips in Japan?"
A1 = ("In Japan, the Rapidus consortium, backed by the government and by companies such as Toyota, "
      "NTT and Sony, is working with IBM to mass-produce 2-nanometre logic chips. [1]")
Q2 = "When will it produce them?"
A2 = "Rapidus expects to start producing them in 2027 at its plant in Hokkaido. [1]"


@pytest.mark.parametrize("question,expected", [
    ("When will it produce them?", "pronoun"),
    ("Who backs it?", "pronoun"),
    ("What did they sign there?", "pronoun"),
    ("Where?", "broad"),
    ("Why is that?", "broad"),
    ("Funding?", "broad"),
    ("And in Europe?", "broad"),
    ("What about submarine cables?", "broad"),
    ("What is the Arctic submarine cable?", "standalone"),
    ("Which consortium will make 2-nanometre chips in Japan?", "standalone"),
])
def test_kind(question: str, expected: str):
    assert kind(question) == expected
    assert is_followup(question) == (expected != "standalone")


def test_content_words_and_names():
    assert content_words("When will the EU's chips arrive, and why?") == ["eu's", "chips", "arrive"]
    assert names(A1) == ["Japan", "Rapidus", "Toyota", "NTT", "Sony", "IBM"]
    relayed = A2 + "\n\nSources:\n[1] The EU and Japan (eu-japan.txt, chars 1-20)"
    assert names(relayed) == ["Hokkaido"]  # a sentence's first word tells nothing


def test_no_history_or_standalone_question_is_searched_as_asked():
    assert resolve("  When will it produce them? ", []) == "When will it produce them?"
    history = [("user", Q1), ("assistant", A1)]
    assert resolve("What is the Arctic cable?", history) == "What is the Arctic cable?"


def test_pronoun_borrows_the_names_of_the_conversation():
    # Japan from the question, then Rapidus, the name the answer introduced.
    assert resolve(Q2, [("user", Q1), ("assistant", A1)]) == f"{Q2} Japan Rapidus"


def test_pronoun_prefers_the_name_the_question_was_about():
    history = [("user", "When will Rapidus produce its chips?"), ("assistant", A2)]
    assert resolve("Who backs it?", history) == "Who backs it? Rapidus Hokkaido"


def test_short_question_borrows_the_previous_query_words():
    history = [("user", "When will Rapidus produce its chips?"), ("assistant", A2)]
    assert resolve("Where?", history) == "Where? rapidus produce chips"
    assert resolve("And in Europe?", history) == "And in Europe? rapidus produce chips"


def test_chains_keep_their_subject():
    history = [("user", Q1), ("assistant", A1), ("user", Q2), ("assistant", A2)]
    assert resolve("Where?", history) == "Where? produce japan rapidus"
    assert resolve("Who backs it?", history) == "Who backs it? Japan Rapidus"


def test_pronoun_without_names_falls_back_to_words():
    history = [("user", "how do bees tell others where flowers are"), ("assistant", "")]
    assert resolve("Why do they dance?", history) == \
        "Why do they dance? bees flowers"


def test_assistant_turns_alone_do_not_count():
    assert resolve("Where?", [("assistant", A1)]) == "Where?"


def test_borrowing_is_bounded():
    long_q = " ".join(f"word{i}" for i in range(50)) + "?"
    query = resolve("Why?", [("user", long_q)])
    assert len(query.split()) == 1 + 8


def test_engine_searches_the_resolved_query(built: Settings):
    engine = Engine(built, FakeEmbedder)
    first = ask_in_conversation(engine, "Which company brought tea to London?", [])
    answer = ask_in_conversation(engine, "When did it do that?",
                                 [("user", first.question), ("assistant", first.text)])
    assert answer.question == "When did it do that?"
    assert answer.query.startswith("When did it do that? ") and "london" in answer.query
    assert "1660s" in answer.text


def test_question_is_checked_before_resolving(built: Settings):
    with pytest.raises(BadQuestionError):
        ask_in_conversation(Engine(built, FakeEmbedder), "   ", [("user", Q1)])
