"""Word lists of the short-answer ranker: function words, phrase edges, and the word shapes
that stand in for a part-of-speech tagger."""

from __future__ import annotations

import re

from qa.index.terms import STOPWORDS

HARD = frozenset(".;:!?()[]{}\"“”«»—–")
PREPOSITIONS = frozenset("in at on by from to for with of into onto over under between through "
                          "during after before about against among within without across toward "
                          "towards around near via per upon since until as like than".split())
BE = frozenset("is was are were be been being am has have had do does did will would can could "
                "may might shall should must become became called named known".split())
DETERMINERS = frozenset("the a an this that these those its his her their our my your some any "
                         "each every no".split())
FUNCTION = STOPWORDS | PREPOSITIONS | BE | DETERMINERS | frozenset(
    "however although though yet thus therefore often usually later many much several whose "
    "according either neither another including".split())
# Word shapes that stand in for a tagger: a verb form, an adverb, an adjective, a noun.
_VERB_FORMS = frozenset("""
was were had made became began took gave won led held found came went saw got left built brought
bought fought taught thought told said known shown grown drawn written given taken seen done gone
become begun run ran set put cut let hit kept lost paid sent sold spent stood understood meant
felt heard met read won wrote rose fell grew drew threw knew chose broke spoke stole wore tore
bore sang rang swam struck hung laid lay sat sought caught dealt arose owned include includes
make makes take takes give gives use uses used allow allows allowed provide provides provided
consider considered remain remains remained contain contains contained create created represent
represents represented require requires required receive received produce produced describe
described refer refers referred involve involves involved carry carries carried serve served
""".split())
_VERB_END = re.compile(r"(?:[a-z]{3}ed|[a-z]{3}ing|i[sz]e[sd]?|ify|ifies|ified|ates?)$")
_ADVERB_END = re.compile(r"[a-z]{3}ly$")
_ADJECTIVE_END = re.compile(r"(?:al|ous|ive|ic|able|ible|ful|less|ary|ish|ian|ese)$")
_NOUN_END = re.compile(r"(?:tion|sion|ment|ness|ity|ism|ist|ance|ence|ship|hood|age|er|or|"
                       r"ers|ors|ists|ions)$")


def shape(word: str) -> str:
    """A guess at a lower-case word's part of speech from its form: verb, adv, adj, noun or ''."""
    if word in _VERB_FORMS or _VERB_END.search(word):
        return "verb"
    if _ADVERB_END.search(word):
        return "adv"
    if _NOUN_END.search(word):
        return "noun"
    if _ADJECTIVE_END.search(word):
        return "adj"
    return ""


YEAR = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})s?$")
