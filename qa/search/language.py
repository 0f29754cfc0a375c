"""Which language a question is written in, roughly: enough to tell a user why it went unanswered.

The bundled encoder reads English. A question in another language can still be answered when
its names and numbers match the documents, but when it cannot, "not in the corpus" would be a
wrong thing to say: the honest message is that the question's language is the problem. Scripts
decide for Japanese, Chinese, Korean, Cyrillic, Greek, Arabic, Hebrew, Thai and Devanagari;
function words decide among the Latin-script languages.
"""

from __future__ import annotations

import re
import unicodedata

ENGLISH = "English"

_SCRIPTS = (
    ("HIRAGANA", "Japanese"), ("KATAKANA", "Japanese"), ("HANGUL", "Korean"),
    ("CJK", "Chinese"), ("CYRILLIC", "Russian or another Cyrillic-script language"),
    ("GREEK", "Greek"), ("ARABIC", "Arabic"), ("HEBREW", "Hebrew"), ("THAI", "Thai"),
    ("DEVANAGARI", "Hindi or another Devanagari-script language"),
)

# Frequent function words, chosen to be rare in the other languages listed (and in English).
_FUNCTION_WORDS = {
    ENGLISH: "the what when who which how does is are was were of and to in will did why where",
    "German": "der die das und ist wann wer wie welche welcher welches wird werden nicht mit "
              "für von dem den des ein eine einen warum wo wieviel wieviele viel viele hat "
              "haben auf sich bis",
    "French": "le la les est quand qui quel quelle quels quelles combien comment pourquoi où "
              "des du une un et dans pour sur avec sont ont va vont que qu ce cette",
    "Spanish": "el la los las es cuándo quién quiénes cuál cuáles cuánto cuánta cuántos cómo "
               "por qué dónde del una un y en para con son han va van que este esta",
    "Italian": "il lo gli le è quando chi quale quali quanto quanti come perché dove della "
               "degli una un e per con sono hanno che questo questa",
    "Portuguese": "o os as é quando quem qual quais quanto quantos como porque onde da do das "
                  "dos uma um e em para com são têm vai que este esta",
    "Dutch": "de het een en is wanneer wie welke hoeveel hoe waarom waar van voor met zijn "
             "heeft wordt niet",
}
_WORDS = {lang: frozenset(ws.split()) for lang, ws in _FUNCTION_WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def _script_language(text: str) -> str | None:
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        for key, lang in _SCRIPTS:
            if name.startswith(key) or (key == "CJK" and "IDEOGRAPH" in name):
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not letters or not counts:
        return None
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    if n < 0.3 * letters:
        return None
    # Kana anywhere marks Japanese, even when kanji are the majority.
    if "Japanese" in counts and lang == "Chinese":
        return "Japanese"
    return lang


def question_language(text: str) -> str:
    """The question's language: ENGLISH unless another script or language clearly dominates."""
    by_script = _script_language(text)
    if by_script:
        return by_script
    words = [w.lower() for w in _TOKEN.findall(text)]
    if not words:
        return ENGLISH
    hits = {lang: sum(w in ws for w in words) for lang, ws in _WORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    if best != ENGLISH and hits[best] >= 2 and hits[best] > hits[ENGLISH]:
        return best
    # Accented letters English does not use, with no English function word at all.
    if not hits[ENGLISH] and any(c in "äöüßéèêàçñáíóúãõœ¿¡" for c in text.lower()):
        return best if hits[best] else "a language other than English"
    return ENGLISH
