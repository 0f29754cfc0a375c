"""Short answers to untyped questions: the learnt phrase ranker, and the confidence signals that
keep a match inside a name or a question built to look answerable from counting as evidence."""

from __future__ import annotations

import pytest

from qa.index.terms import WORD, stemmer
from qa.search.evidence import constraints_missing, name_only
from qa.search.span_features import BASE_FEATURES, phrase_features
from qa.search.span_rank import (
    N_FEATURES,
    best_phrase,
    direction,
    feature_names,
    read_question,
    wh_class,
)
from qa.search.span_weights import SPAN_MODEL


def stems(*texts: str) -> dict[str, str]:
    return stemmer().stems({w for t in texts for w in WORD.findall(t.lower())})


def phrase(question: str, sentence: str, min_probability: float = 0.0) -> str | None:
    found = best_phrase(question, sentence, stems(question, sentence),
                        min_probability=min_probability)
    if found is None:
        return None
    a, b, _ = found
    assert 0 <= a < b <= len(sentence)
    return sentence[a:b]


def test_the_stored_model_matches_the_features():
    assert len(SPAN_MODEL) == N_FEATURES == len(feature_names())
    assert len(set(feature_names())) == N_FEATURES


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    ("Which team won the northern cup?",
     "After a long season the Harbour Rovers won the northern cup in front of a full stadium.",
     "Harbour Rovers"),
    ("What did the council build beside the river?",
     "Last spring the council built a covered market beside the river.", "covered market"),
    ("Who designed the new library?",
     "The new library, designed by Mara Lindqvist, opened to readers in the autumn.",
     "Mara Lindqvist"),
])
def test_picks_the_phrase_that_answers(question: str, sentence: str, expected: str):
    assert phrase(question, sentence) == expected


def test_the_question_s_own_words_are_not_the_answer():
    sentence = "The Harbour Rovers beat the Mill Lane Wanderers in the final."
    answer = phrase("Who did the Harbour Rovers beat in the final?", sentence)
    assert answer is not None and "Harbour" not in answer and "Rovers" not in answer


def test_no_span_below_the_probability_threshold():
    sentence = "Rain fell, trains stopped, shops closed and schools sent pupils home early."
    assert phrase("What happened?", sentence, min_probability=0.99) is None


@pytest.mark.parametrize("sentence", [
    "",
    "🚢🚢🚢 ships 🚢",
    "\ud800 lone surrogate in the harbour",
    "word " * 3000,
    "x" * 10_000,
    ",,,;;;...!!!",
])
def test_odd_text_never_raises(sentence: str):
    found = best_phrase("What did the ships carry?", sentence, stems("What did the ships carry?"))
    if found is not None:
        a, b, p = found
        assert 0 <= a < b <= len(sentence) and 0.0 <= p <= 1.0


def test_features_are_one_row_per_candidate():
    q = read_question("What did the city build?", {})
    starts, ends, X = phrase_features(q, "The city built a large stadium near the river.", {})
    assert X.shape == (len(starts), len(BASE_FEATURES)) and len(starts) == len(ends) > 0
    assert (starts < ends).all()


@pytest.mark.parametrize(("question", "wh", "where"), [
    ("Which team represented the league?", "what_noun", "subj"),
    ("What did Luther think the law meant?", "what_do", "obj"),
    ("What is the capital?", "what_be", "be"),
    ("Who did she marry?", "who", "obj"),
    ("When was it built?", "when", "adv"),
    ("Name the river.", "other", "subj"),
])
def test_question_reading(question: str, wh: str, where: str):
    assert wh_class(question)[0] == wh
    assert direction(question) == where


def test_a_generic_word_inside_a_name_is_not_evidence():
    idf = {"sea": 2.0, "level": 2.0}
    sentence = "The cable avoids the South China Sea on its way north."
    assert name_only("What is the water level at sea?", sentence, idf) == {"sea"}
    # The same word asked about as a name, or used plainly in the sentence, still counts.
    assert name_only("Where is the South China Sea?", sentence, idf) == set()
    assert name_only("What is the sea level?", "The sea rose past the South China Sea mark.",
                     idf) == set()


def test_constraints_the_sentence_leaves_out():
    sentence = "On 16 October 1973 the ministers raised the price by 70%."
    assert constraints_missing("By how much was the price raised in 1974?", sentence)[
        "number_missing"] == 1.0
    assert constraints_missing("By how much was the price raised in 1973?", sentence)[
        "number_missing"] == 0.0
    missing = constraints_missing("Did Egypt raise the price in October?", sentence)
    assert missing["names_missing"] == 0.5  # "Egypt" is missing, "October" is there
