"""Short answers: the span of a supporting sentence that answers the question by itself.

A question's wh-phrase says what kind of text answers it: "when" a date, "how much" an amount,
"what percentage" a percentage, "who" a name, "where" a place, "which company" a name. The
sentence's candidate spans of that kind are found with patterns (numbers with their currency,
scale and unit; dates; runs of capitalised words), the ones made only of the question's own words
are dropped, and the rest are ranked by how close they sit to the question's words in the
sentence (the sliding-window idea of the SQuAD baselines). Questions of no clear kind ("why",
"how does", "what is") get no span: their answer is the sentence.

Everything here is plain pattern matching over one sentence: cheap (well under a millisecond)
and total, so odd text can only lose the span, never the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.index.terms import STOPWORDS

DATE, MONEY, PERCENT, NUMBER, NAME, PLACE = "date", "money", "percent", "number", "name", "place"

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})"
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+{_YEAR}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}"
    rf",?\s+{_YEAR}|{_MONTH},?\s+{_YEAR}|(?:early|mid|late)[- ]{_YEAR}s?|{_YEAR}s?"
    rf"(?:\s*(?:-|–|to)\s*{_YEAR})?|\d{{1,2}}(?:st|nd|rd|th)\s+century|{_MONTH}\s+\d{{1,2}}"
    rf"(?:st|nd|rd|th)?|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?)\b")
_SCALE = r"(?:thousand|million|billion|trillion|bn|mn|m|k)"
_NUM = r"\d+(?:[.,]\d+)*"
_WORD_NUM = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
             r"forty|fifty|hundred|a hundred|a thousand|dozens?|several)")
_MONEY = re.compile(
    rf"(?:(?:US|A|C|HK)?[$€£¥₹]\s?{_NUM}(?:\s?{_SCALE}\b)?|{_NUM}(?:\s?{_SCALE})?\s?"
    rf"(?:euros?|dollars?|pounds?|yen|yuan|USD|EUR|GBP|JPY)\b)")
_PERCENT = re.compile(rf"{_NUM}\s?(?:%|percent\b|per cent\b)")
_NUMBER = re.compile(rf"(?<![\w.])(?:{_NUM}|{_WORD_NUM})\b(?:[- ]{_SCALE}\b| hundred\b)?"
                     rf"(?:[- ](?:[A-Za-zµ]+))?", re.IGNORECASE)
# Runs of capitalised words, with the small words that live inside names.
_NAME = re.compile(
    r"(?<![\w-])(?:[A-Z][\w&.-]*[\w&]|[A-Z])(?:\s+(?:(?:of|the|de|von|van|du|la|for|and|&)\s+)?"
    r"(?:[A-Z0-9][\w&.-]*[\w&]|[A-Z]))*")
_POSSESSIVE = re.compile(r"['’]s?$")
_TOKEN = re.compile(r"\w+", re.UNICODE)

_ASKS = [
    (PERCENT, re.compile(r"\bwhat (?:percentage|percent|share|proportion|fraction)\b|"
                         r"\bhow (?:big|large) (?:a )?(?:share|percentage)\b")),
    (MONEY, re.compile(r"\bhow much (?:money|funding|cash|capital)\b|\bhow much\b.*\b(?:cost|"
                       r"costs|invest\w*|fund\w*|spen[dt]|pa(?:y|id)|pump\w*|put|worth|budget\w*|"
                       r"raise[ds]?|price\w*|sold|earn\w*|pledge\w*|allocat\w*)\b|"
                       r"\bwhat (?:amount|sum) of money\b|\bhow (?:much|many) (?:euros|dollars|"
                       r"yen)\b")),
    (NUMBER, re.compile(r"\bhow (?:many|much|long|old|far|large|big|high|tall|often|deep|wide|"
                        r"fast|quick\w*|small|heavy)\b|\bwhat (?:number|amount|size|speed|"
                        r"percentage|rate)\b")),
    (DATE, re.compile(r"\bwhen\b|\b(?:what|which|in what) (?:year|decade|century|month|date|"
                      r"day)\b|\bby what (?:year|date)\b|\bwhat time\b")),
    (PLACE, re.compile(r"\bwhere\b|\b(?:what|which)(?: [\w-]+){0,2}? (?:country|countries|city|"
                       r"cities|region|place|location|sea|ocean|state|continent|area|nation|"
                       r"town|port|province|island)(?:['’]s)?\b")),
    (NAME, re.compile(r"\bwho(?:m|se)?\b|\b(?:what|which)(?: [\w-]+){0,3}? (?:company|"
                      r"companies|firm|firms|organi[sz]ation|group|consortium|project|person|"
                      r"people|man|woman|institute|institution|agency|body|team|carmaker|brand|"
                      r"manufacturer|maker|chipmaker|operator|program|programme|initiative|"
                      r"system|centre|center|university|lab|laboratory|commissioner|minister|"
                      r"ceo|executive|president|founder|leader|author|official|politician|"
                      r"scientist|engineer|party|ship|product|model|brand|newspaper|"
                      r"name)(?:['’]s)?\b|\bwhat is the name\b|\bwhat (?:is|are|was|were) "
                      r"(?:[\w-]+ ){0,6}called\b")),
]
# The same wh-phrases in the languages users most often ask in; the answer is still found in
# the (English) sentence, so a question in German can get "2027" back.
_ASKS_ELSEWHERE = [
    (PERCENT, re.compile(r"\b(?:prozent\w*|pourcentage|porcentaje|percentuale)\b|パーセント|割合|"
                         r"百分之|比例|何%")),
    (MONEY, re.compile(r"\bwie ?viel (?:geld|euro)|\bcombien d'argent|\bcuánto dinero|"
                       r"\bwie ?viel\b.*\b(?:investiert|ausgegeben|gekostet|bezahlt)|"
                       r"\bcombien\b.*\b(?:investi|dépensé|coûté|payé)|"
                       r"\bcuánto\b.*\b(?:invirti\w*|gast\w*|cost\w*|pag\w*)|いくら|"
                       r"多少(?:钱|资金|欧元|美元)|金額|投资了多少|投入了多少")),
    (NUMBER, re.compile(r"\bwie ?(?:viele?|schnell|lange?|groß|hoch|oft)\b|\bcombien\b|"
                        r"\bcu[áa]nt[oa]s?\b|\bquant[oi]\b|どのくらい|どれくらい|何個|"
                        r"多少|多快|多大|几")),
    (DATE, re.compile(r"\b(?:wann|quand|cu[áa]ndo|quando)\b|\bin welchem jahr\b|"
                      r"\ben quelle année\b|\ben qu[ée] año\b|いつ|何年|什么时候|何时|哪一?年|"
                      r"언제|\bкогда\b")),
    (PLACE, re.compile(r"\b(?:wo|wohin|où|d[óo]nde|dove|onde)\b|どこ|哪里|在哪|哪儿|어디|"
                       r"\bгде\b")),
    (NAME, re.compile(r"\b(?:wer|wen|wem|qui|qui[ée]n(?:es)?|chi)\b|\bwelche[sr]? "
                      r"(?:firma|unternehmen|projekt|system)\b|\bquelle? (?:entreprise|"
                      r"société|projet|système)\b|\bqu[ée] (?:empresa|proyecto|sistema)\b|"
                      r"誰|だれ|どの(?:企業|会社)|谁|哪家|哪个公司|누구|\bкто\b")),
]
_MEASURE = re.compile(r"\bhow (?:long|old|far|large|big|high|tall|often|deep|wide|fast|quick\w*|"
                      r"small|heavy)\b|\bwhat (?:size|speed|rate)\b")
_LEADING_CLAUSE = re.compile(r"^(?:when|where|if|while|as|after|before|since)\b[^,?]*,\s*(?="
                             r"(?:what|which|who|whom|whose|how|when|where|why)\b)")
_WHAT_TYPE = re.compile(r"^(?:\w+ )?(?:what|which) (?:type|kind|sort|form|part|style)s? of\b")
_WH = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b")
_ARTICLES = frozenset(("a", "an", "the"))
_LOCATIVE = frozenset("in at near from to across through into around between within outside "
                      "inside toward towards via off along".split())


def _asked(question: str) -> tuple[str, str] | None:
    """The kind of text that answers the question and the phrase that says so."""
    q = " ".join(question.lower().split())
    # "When the law is the target, what is this called?": the opening "when" sets a scene; the
    # question proper comes after the comma.
    clause = _LEADING_CLAUSE.match(q)
    if clause:
        q = q[clause.end():]
    if _WHAT_TYPE.match(q):
        return None  # "what type of people": a common noun, not a name
    # The question's first wh-word says what it asks: in "What should networks do when a
    # disaster strikes?" the "when" belongs to a clause, not to the question.
    first = _WH.search(q)
    for kind, pattern in _ASKS:
        m = pattern.search(q)
        if m and (first is None or m.start() <= first.start() or m.start() - first.end() <= 1):
            return kind, m.group()
    if not q.isascii() or not any(w in q.split() for w in ("what", "how", "which")):
        for kind, pattern in _ASKS_ELSEWHERE:
            m = pattern.search(q)
            if m:
                return kind, m.group()
    return None


def answer_kind(question: str) -> str | None:
    """The kind of text that answers the question, or None when any text could."""
    asked = _asked(question)
    return asked[0] if asked else None


# Words of a wh-phrase that name the kind of answer, not its subject: "company" in "which
# company", "year" in "what year". The answer sentence says "IBM", not "company". Roles
# ("which commissioner") are not among them: a sentence naming one usually says the role too.
_TYPE_WORDS = frozenset("""
company companies firm firms organisation organization group consortium project person people
institute institution agency body team carmaker brand manufacturer maker chipmaker operator
program programme initiative system centre center university lab laboratory party ship product
model newspaper name called year decade century month date
day time country countries city cities region place location sea ocean state continent area
nation town port province island percentage percent share proportion fraction number amount
size speed rate money funding cash capital sum
""".split())


def focus_words(question: str) -> set[str]:
    """The words of the question's wh-phrase that name the kind of answer it wants."""
    asked = _asked(question)
    if not asked:
        return set()
    words = {w for w in _TOKEN.findall(asked[1]) if w in _TYPE_WORDS}
    return {"called"} if "called" in words else words


@dataclass
class Span:
    """A candidate short answer: offsets into the sentence, its text and its score."""

    start: int
    end: int
    text: str
    score: float


_UNITS = frozenset("""
years year months month weeks week days day hours hour minutes minute seconds second km kilometres
kilometers kilometre kilometer miles mile metres meters metre meter feet foot inches inch cm mm kg
kilograms tonnes tons tonne ton pounds lb percent nanometres nanometers nanometre nanometer nm
degrees hectares acres litres liters gallons times fold gbps mbps kbps ghz mhz mw gw kw kwh mwh
gwh twh gb tb mb kb
""".split())


def _is_unit(word: str) -> bool:
    """A unit of measure ("km", "Gbps", "years")."""
    return word.lower() in _UNITS


def _candidates(kind: str, sentence: str, counts: bool = True) -> list[tuple[int, int]]:
    if kind == DATE:
        found = [m.span() for m in _DATE.finditer(sentence)]
    elif kind == MONEY:
        found = [m.span() for m in _MONEY.finditer(sentence)]
    elif kind == PERCENT:
        found = [m.span() for m in _PERCENT.finditer(sentence)]
    elif kind == NUMBER:
        # An amount of money or a percentage answers "how many" or "what number", never "how
        # fast" or "how long".
        found = [m.span() for p in (_MONEY, _PERCENT) for m in p.finditer(sentence)] \
            if counts else []
        for m in _NUMBER.finditer(sentence):
            a, b = m.span()
            tail = sentence[a:b].split(" ")
            # A word after the number stays only if it is a unit ("100 Gbps", "3 km"): "36
            # cameras" answers "how many cameras" as "36".
            if len(tail) > 1 and not _is_unit(tail[-1]):
                b = a + len(" ".join(tail[:-1]))
            found.append((a, b))
    else:
        found = []
        for m in _NAME.finditer(sentence):
            a, b = m.span()
            text = sentence[a:b]
            if a == 0 or not sentence[:a].strip() or sentence[:a].rstrip()[-1:] in ".!?:;\"“(":
                # The first word of a sentence is capitalised anyway: alone, it counts as a name
                # only if it looks like one (an acronym, a digit or a hyphen inside).
                first = text.split()[0]
                if first.lower() in STOPWORDS or first.lower() in _COMMON_OPENERS or (
                        text == first and not _NAME_LIKE.search(first)):
                    rest = text[len(first):].lstrip()
                    if not rest:
                        continue
                    a = b - len(rest)
            if _OWNER.match(sentence, b):
                # "Japan's Rapidus": the owner qualifies the name that follows. In "IBM and
                # Europe's IMEC" only "Europe" is an owner.
                cut = sentence.rfind(" and ", a, b)
                if cut < 0:
                    continue
                b = cut
            b = a + len(_POSSESSIVE.sub("", sentence[a:b]))
            # "Kyoto-made" names Kyoto; "100 Gbps" is a measure, not a name.
            b = a + len(_MADE_SUFFIX.sub("", sentence[a:b]))
            if _is_unit(sentence[a:b]) or _AFTER_NUMBER.search(sentence[:a]):
                continue
            found.append((a, b))
    # Longest first at each start, and no overlaps.
    found.sort(key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int]] = []
    for a, b in found:
        if b > a and (not out or a >= out[-1][1]):
            out.append((a, b))
    return out


_MADE_SUFFIX = re.compile(r"-[a-z]+$")
_AFTER_NUMBER = re.compile(r"\d\s?$")
_OWNER = re.compile(r"['’]s?\s+[A-Z]")
_NAME_LIKE = re.compile(r"[A-Z].*[A-Z]|\d|-")
_COMMON_OPENERS = frozenset("but and yet so meanwhile however while although because since "
                            "today now then still also even beneath despite".split())


# Kinds whose absence from the supporting sentence means the passage does not answer: a date,
# an amount, a percentage or a count is written as one. A name may be a common noun ("who":
# "the poor", "his mother") and is not checked.
STRICT_KINDS = frozenset((DATE, MONEY, PERCENT, NUMBER, PLACE))
_LOCATIVE_PHRASE = re.compile(r"\b(?:in|at|near|from|across|through|into|around|outside|inside|"
                              r"off|along|between|within)\s+(?:the\s+)?(\w+)", re.IGNORECASE)


def _trim(sentence: str, a: int, b: int, qwords: set[str],
          question_stems: set[str] | frozenset[str], stem: dict[str, str]) -> tuple[int, int]:
    """A name run without the question's own words at its ends: "Salvation Army Founder William
    Booth" answers "Who founded the Salvation Army?" as "William Booth"."""
    words = list(re.finditer(r"\S+", sentence[a:b]))

    def asked(m: re.Match[str]) -> bool:
        w = m.group().lower().strip(".,")
        return w in STOPWORDS or w in qwords or stem.get(w, w) in question_stems
    while len(words) > 1 and asked(words[0]):
        words.pop(0)
    while len(words) > 1 and asked(words[-1]):
        words.pop()
    return a + words[0].start(), a + words[-1].end()


_ROLES = re.compile(r"\b(ceo|chief|executive|president|chairman|chairwoman|chairperson|director|"
                    r"minister|commissioner|secretary|governor|mayor|founder|co-founder|"
                    r"spokesperson|spokesman|spokeswoman|inventor|coach|captain|ambassador|"
                    r"chancellor|premier|editor|owner|manager|head coach|principal)s?\b")


def kind_present(question: str, sentence: str, question_stems: set[str] | frozenset[str],
                 stem: dict[str, str] | None = None) -> bool:
    """Whether the sentence holds text of the kind the question asks for (True when the kind
    is not one of STRICT_KINDS). A place may also be a phrase such as "in coastal areas"; a
    name is not checked, but a question about the holder of a role needs the role named."""
    kind = answer_kind(question)
    if kind == NAME:
        # "Who is the chief executive?": a sentence that names the holder of a role says the
        # role too ("its chief executive, Jane Roe").
        low = sentence.lower()
        return all(re.search(rf"\b{role}", low) for role in _ROLES.findall(question.lower()))
    if kind not in STRICT_KINDS:
        return True
    if find_span(question, sentence, question_stems, stem) is not None:
        return True
    if kind == PLACE:
        qwords = {w.lower() for w in _TOKEN.findall(question)}
        return any(m.group(1).lower() not in qwords and m.group(1).lower() not in STOPWORDS
                   for m in _LOCATIVE_PHRASE.finditer(sentence))
    return False


def find_span(question: str, sentence: str, question_stems: set[str] | frozenset[str],
              stem: dict[str, str] | None = None) -> Span | None:
    """The best short answer to `question` inside `sentence`, or None."""
    kind = answer_kind(question)
    if kind is None or not sentence or len(sentence) > 5000:
        return None
    stem = stem or {}
    qwords = {w.lower() for w in _TOKEN.findall(question)}
    tokens = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(sentence)]
    anchors = [(x, y) for x, y, w in tokens if w not in STOPWORDS
               and (w in qwords or stem.get(w, w) in question_stems)]
    best: Span | None = None
    q = " ".join(question.lower().split())
    counting = kind == NUMBER and "how many" in q
    measuring = kind == NUMBER and bool(_MEASURE.search(q))
    unitless = bool(re.search(r"\bhow (?:old|often)\b", q))  # "45", "twice a year"
    for a, b in _candidates(kind, sentence, counts=not measuring):
        if kind in (NAME, PLACE):
            a, b = _trim(sentence, a, b, qwords, question_stems, stem)
        words = [w.lower() for w in _TOKEN.findall(sentence[a:b])]
        if counting and len(words) > 1 and _is_unit(words[-1]) and words[-1] not in qwords:
            continue  # "how many staff" is not answered by "four tonnes"
        if measuring and not unitless and not any(_is_unit(w) for w in words[1:]):
            continue  # "how fast" wants "100 Gbps", not "133 million"
        own = [w for w in words if w not in STOPWORDS]
        if not own or all(w in qwords or stem.get(w, w) in question_stems for w in own):
            continue  # the question's own words do not answer it
        # Closeness to the question's words in the sentence, in characters.
        near = min((max(x - b, a - y, 0) for x, y in anchors), default=200)
        score = 1.0 / (1.0 + near / 40.0) + 0.1 * min(len(anchors), 5)
        if kind == PLACE:
            # A place usually follows "in", "from", "through"... ("made in Kyoto").
            before = [w for w in sentence[:a].lower().split()[-3:] if w not in _ARTICLES]
            score += 0.5 if before and before[-1] in _LOCATIVE else 0.0
        if best is None or score > best.score:
            best = Span(a, b, sentence[a:b], score)
    return best
