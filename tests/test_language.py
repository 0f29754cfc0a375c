"""Which language a question is in: enough to explain an abstention honestly."""

from __future__ import annotations

import pytest

from qa.search.language import ENGLISH, question_language


@pytest.mark.parametrize(("question", "language"), [
    ("When will the new bridge open?", ENGLISH),
    ("What is MIRAI-HARMONY?", ENGLISH),
    ("Café prices in Zürich?", ENGLISH),  # names with accents are not another language
    ("Wann wird die neue Brücke eröffnet?", "German"),
    ("Quand le nouveau pont sera-t-il ouvert ?", "French"),
    ("¿Cuándo se abrirá el nuevo puente?", "Spanish"),
    ("新しい橋はいつ開通しますか？", "Japanese"),
    ("新桥什么时候开通？", "Chinese"),
    ("새 다리는 언제 개통됩니까?", "Korean"),
    ("Когда откроется новый мост?", "Russian or another Cyrillic-script language"),
    ("", ENGLISH),
    ("???", ENGLISH),
])
def test_question_language(question: str, language: str):
    assert question_language(question) == language
