"""Short answers: the kind of text a question asks for, and the span of a sentence that gives it."""

from __future__ import annotations

import pytest

from qa.search.span import DATE, MONEY, NAME, NUMBER, PERCENT, PLACE, answer_kind, find_span

SENTENCE = ("The harbour board put €48 million into the new locks in Rotterdam, and the dredging "
            "firm Van Oord will finish them by 2029, lifting capacity by 15%.")


@pytest.mark.parametrize(("question", "kind"), [
    ("When will the locks be finished?", DATE),
    ("In what year do the locks open?", DATE),
    ("How much money went into the locks?", MONEY),
    ("How much did the board invest?", MONEY),
    ("What percentage will capacity grow by?", PERCENT),
    ("How many locks are there?", NUMBER),
    ("How fast is the new ship?", NUMBER),
    ("Who is digging the channel?", NAME),
    ("Which company does the dredging?", NAME),
    ("Where are the new locks?", PLACE),
    ("Why were new locks needed?", None),
    ("What is a lock?", None),
    ("Wann werden die Schleusen fertig?", DATE),
    ("港の工事はいつ終わりますか？", DATE),
    ("¿Quién hace el dragado?", NAME),
    ("Combien d'argent a été investi?", MONEY),
])
def test_answer_kind_reads_the_wh_phrase(question: str, kind: str | None):
    assert answer_kind(question) == kind


@pytest.mark.parametrize(("question", "expected"), [
    ("When will the locks be finished?", "2029"),
    ("How much money did the harbour board put into the locks?", "€48 million"),
    ("By what percentage will capacity rise?", "15%"),
    ("Which firm does the dredging?", "Van Oord"),
    ("Where are the new locks being built?", "Rotterdam"),
    ("Wann wird Van Oord die Schleusen fertigstellen?", "2029"),
])
def test_find_span_picks_the_short_answer(question: str, expected: str):
    span = find_span(question, SENTENCE, frozenset())
    assert span is not None
    assert span.text == expected
    assert SENTENCE[span.start:span.end] == expected


def test_a_span_made_of_the_question_s_own_words_is_not_an_answer():
    # The only year in the sentence is the one the question already names.
    assert find_span("What happened in 2029?", "Work ends in 2029.", frozenset()) is None
    assert find_span("Who is Van Oord?", "Van Oord digs canals.", frozenset()) is None


def test_no_span_when_the_kind_is_absent_or_not_asked():
    assert find_span("When will the locks be finished?", "The locks will be finished soon.",
                     frozenset()) is None
    assert find_span("Why were locks needed?", SENTENCE, frozenset()) is None


@pytest.mark.parametrize("sentence", [
    "",
    "🚢🚢🚢 2029 🚢",
    "\ud800 lone surrogate in 2029",
    "x" * 10_000 + " 2029",
    "2029 " * 3000,
])
def test_odd_text_never_raises(sentence: str):
    span = find_span("When will it open?", sentence, frozenset())
    assert span is None or sentence[span.start:span.end] == span.text


def test_counts_and_measures_want_the_right_kind_of_number():
    sentence = "The depot stores four tonnes of gas, cost €9 million and has twelve staff."
    assert find_span("How many staff work at the depot?", sentence, frozenset()).text == "twelve"
    # A measure wants a unit; money and bare counts do not answer it.
    assert find_span("How long is the depot?", "The depot cost €9 million and has twelve staff.",
                     frozenset()) is None
    assert find_span("How heavy is the gas in the depot?", sentence,
                     frozenset()).text == "four tonnes"
    # The counted noun the question names is not part of the answer.
    assert find_span("How many cameras were used?", "It used 36 cameras.", frozenset()).text == "36"


def test_a_question_about_a_role_needs_the_role_named():
    from qa.search.span import kind_present

    named = "Its chief executive, Jane Roe, opened the plant in 2019."
    unnamed = "The consortium recruited Acme and Initech to build the plant."
    question = "Who is the chief executive of the consortium?"
    assert kind_present(question, named, frozenset())
    assert not kind_present(question, unnamed, frozenset())
    # Without a role, any sentence may name who did it.
    assert kind_present("Who built the plant?", unnamed, frozenset())


def test_units_are_not_names_and_made_in_names_the_place():
    record = "Rivals lead the market, while Acme holds the record for speed (100 Gbps, a first)."
    assert find_span("Which firm holds the speed record?", record, frozenset()).text == "Acme"
    made = "Carmakers could use Kyoto-made chips from the new line."
    assert find_span("Which city's chips could carmakers use?", made, frozenset()).text == "Kyoto"
