"""Reading radiology and clinical text: are the growth plates open or closed, and what bone age
does a report state (docs/clinical-rules.md, "Reading chart text, dates and ranges").

Text is cut into sentences and each sentence into words; every step is one forward pass, so the
time is linear in the length of the text (a 1 MB report is read in a fraction of a second), and
no regular expression here can backtrack over a long input.

Growth plates, sentence by sentence:
- A sentence counts only when it names the growth plates (epiphyses, physes, growth plates) or
  skeletal maturity. Questions and orders are not findings: a "?" anywhere, "rule out", "r/o",
  "evaluate for", "assess for", "to exclude", "query"; nor are the report's title and the line
  after a reason, indication, history, exam, technique or comparison heading.
- A sentence is split at "but", "however", "whereas", "although", "except", ", and", ", the",
  "and the", "with", and at a comma before a clause of its own ("No fracture, physes fused"):
  each part has one polarity.
- A negation before a term covers the rest of its part, so every item of a list ("no evidence of
  epiphyseal fusion or physeal closure", "negative for", "without", "neither … nor", "no longer");
  "not" covers the term right after it ("not yet fused"); after a term, "not seen", "not
  identified", "absent", "ruled out", ": not yet", "is not" deny it.
- Partial closure ("partially fused", "nearly closed", "closing", "not fully fused") says
  nothing either way. A possible closure ("probably fused", "cannot exclude physeal closure",
  "suspicious for") is `unclear`: a warning to confirm, never proof.
- Each source has a rank: the conclusion, an "Impression:" section, coded conclusions, an
  Observation's value and a Condition's code outrank the body of the report and notes. The
  resource's finding is read from the highest rank that says anything; if that rank says both
  open and closed, the finding is `unclear`.

Bone age: the number after "bone age" / "skeletal age" in the same sentence (a few linking words
such as "is", "of", "estimated at", "(Greulich & Pyle)" may stand between), with the method named
in the sentence or elsewhere in the text. Reading stops at "chronological", so the chronological
age is never taken for the bone age. A range or a number without a unit is unreadable, quoting
the sentence.
"""
from __future__ import annotations

import base64
import binascii
import html
import re
from fractions import Fraction
from typing import Any, Iterable, Iterator, Mapping

from .codes import as_list
from .frozen import frozen

TOP, BODY = 2, 1
OPEN, CLOSED, UNCLEAR = "open", "closed", "unclear"
MAX_QUOTE = 200

# Sentence ends: ";", "!", a full stop not inside a decimal, a blank line, or a line break before a
# line that starts a new statement (capital, digit, bullet). A line break inside a sentence
# ("… distal radius\nand ulna have closed") does not end it.
_SENTENCE_END = re.compile(r"[;!]|\.(?!\d)|\n[ \t]*(?=\n|[A-Z0-9\u2022*\-])")
_TOKEN = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[:,/&()?\-\u2013\u2014=]")
# Matched on lower-cased text (13 times faster than IGNORECASE on a long report); the lookahead on
# the first letters lets the engine skip most positions without trying every alternative.
_HEADING = re.compile(
    r"(?=[ichtpreqsof])\b(impressions?|conclusions?|summary|opinion|findings|report|indications?|history|technique|comparisons?|"
    r"procedure|exam(?:ination)?|clinical[ \t]+(?:history|information|indications?|questions?|details|notes?)|"
    r"reason[ \t]+for[ \t]+(?:exam(?:ination)?|study|referral|request|imaging)|exam[ \t]+reason|"
    r"requested[ \t]+(?:exam|study)|question)[ \t]*:")
_SECTION_RANK = {"impression": TOP, "conclusion": TOP, "summary": TOP, "opinion": TOP, "findings": BODY, "report": BODY}
# A cheap test before any sentence is read: most texts never mention growth plates or bone age.
_HINT = re.compile(r"epiphys|physe|physis|growth[ \t]+plate|skeletal|bone[ \t]+age")   # on lower-cased text

_CLOSE = frozenset({"closed", "fused", "fusion", "closure"})
_OPEN = frozenset({"open", "unfused", "patent"})
_PRE_NEGATION = frozenset({"no", "without", "neither", "nor", "none"})
_PRE_NEGATION_PAIRS = frozenset({("negative", "for"), ("absence", "of"), ("free", "of"), ("lack", "of"),
                                 ("absent", "of")})
_NOT_FILLERS = frozenset({"yet", "been", "be", "have", "has", "is", "are", "to", "as", "of", "the", "seen", "all", "skeletally"})
_NOT_FULL = frozenset({"fully", "completely", "entirely", "totally", "quite", "complete"})
_PERCEIVED = frozenset({"seen", "identified", "visualized", "visualised", "demonstrated", "present", "evident",
                        "noted", "appreciated", "observed", "detected", "apparent", "shown", "visible"})
_DENIAL_AFTER = frozenset({"not", "no", "none", "absent", "pending"})
_LINKS_AFTER = frozenset({"is", "are", "has", "have", "been", ":", "-", "\u2013", "\u2014", "="})
_PARTIAL = frozenset({"partial", "partially", "partly", "near", "nearly", "almost", "incomplete", "incompletely",
                      "beginning", "begun", "begin", "begins", "early", "narrowing", "narrowed", "ongoing",
                      "underway", "progressing", "progressive", "impending", "starting", "mostly", "largely",
                      "closing", "fusing"})
_POSSIBLE = frozenset({"possible", "possibly", "probable", "probably", "may", "might", "could", "suggest",
                       "suggests", "suggestive", "suggesting", "suspicious", "suspect", "suspected", "likely",
                       "questionable", "equivocal", "presumably", "presumed", "uncertain", "indeterminate"})
_POSSIBLE_PAIRS = frozenset({("cannot", "exclude"), ("cannot", "be"), ("not", "excluded"), ("concern", "for"),
                             ("concerning", "for"), ("t", "exclude"), ("not", "exclude")})
_ORDER_WORDS = frozenset({"query", "please", "evaluate", "eval", "assess", "exclude", "r/o"})
_ORDER_PAIRS = frozenset({("rule", "out"), ("r", "/"), ("evaluation", "for"), ("assessment", "for"),
                          ("check", "for"), ("look", "for"), ("question", "of"), ("to", "assess")})
_BREAK_WORDS = frozenset({"but", "however", "whereas", "although", "though", "while", "except", "with"})
_BREAK_PAIRS = frozenset({(",", "and"), (",", "the"), ("and", "the")})


@frozen
class Source:
    text: str
    rank: int              # TOP or BODY: the rank of text outside any section heading


@frozen
class Sentence:
    text: str
    rank: int
    words: tuple[str, ...]
    lowered: str


@frozen
class PlateFinding:
    status: str            # open | closed | unclear
    text: str              # the sentence(s) it rests on
    rank: int


@frozen
class BoneAgeText:
    years: Fraction | None  # exact; None when the sentence states a bone age that cannot be read
    method: str | None
    text: str
    reason: str | None     # why `years` is None
    rank: int


# --- sources --------------------------------------------------------------------------------------

def sources_of(resource: Mapping) -> list[Source]:
    """The texts of one resource that state findings, with their rank. Titles (a DiagnosticReport's
    or an Observation's `code`, an attachment's title) are questions, not findings, and are left out,
    except that an Observation's value is read with its code as a label ("Epiphyses: closed")."""
    rtype = resource.get("resourceType")
    out: list[Source] = []
    if rtype == "Condition":
        out += [Source(t, TOP) for t in _concept_texts(resource.get("code"))]
    if isinstance(resource.get("conclusion"), str):
        out.append(Source(resource["conclusion"], TOP))
    for concept in as_list(resource.get("conclusionCode")):
        out += [Source(t, TOP) for t in _concept_texts(concept)]
    if rtype == "Observation":
        for holder in [resource] + [c for c in as_list(resource.get("component")) if isinstance(c, dict)]:
            out += [Source(t, TOP) for t in _value_texts(holder)]
        for concept in as_list(resource.get("interpretation")):
            out += [Source(t, TOP) for t in _concept_texts(concept)]
    for attachment in as_list(resource.get("presentedForm")):
        text = attachment_text(attachment)
        if text:
            out.append(Source(text, BODY))
    for note in as_list(resource.get("note")):
        if isinstance(note, dict) and isinstance(note.get("text"), str):
            out.append(Source(note["text"], BODY))
    return out


def _concept_texts(concept: object) -> list[str]:
    if not isinstance(concept, dict):
        return []
    texts = [concept["text"]] if isinstance(concept.get("text"), str) else []
    return texts + [c["display"] for c in as_list(concept.get("coding"))
                    if isinstance(c, dict) and isinstance(c.get("display"), str) and c["display"] not in texts]


_YES = frozenset({"yes", "y", "true", "present", "positive", "detected", "seen"})
_NO = frozenset({"no", "n", "false", "absent", "negative", "not detected", "not present", "not seen", "none"})


def _value_texts(holder: Mapping) -> list[str]:
    values = [holder["valueString"]] if isinstance(holder.get("valueString"), str) else []
    values += _concept_texts(holder.get("valueCodeableConcept"))
    if isinstance(holder.get("valueBoolean"), bool):
        values.append("yes" if holder["valueBoolean"] else "no")
    label = next(iter(_concept_texts(holder.get("code"))), None)
    return [_answer(label, value) for value in values]


def _answer(label: str | None, value: str) -> str:
    """An Observation's value as a sentence. A value that is a sentence of its own is read alone,
    so that a title such as "Evaluate for physeal closure" cannot turn the answer into a question;
    a bare value needs its code to say what it is about: "Epiphyses: closed"; a yes/no answer to
    a question such as "Closed epiphyses" affirms or denies it."""
    if label is None or _HINT.search(value.lower()):
        return value
    answer = " ".join(value.lower().split()).strip(" .")
    if answer in _YES:
        return label
    if answer in _NO:
        return f"No {label}"
    return f"{label}: {value}"


def attachment_text(attachment: object) -> str | None:
    """The text of an Attachment sent inline: text/plain as is, text/html with its markup removed.
    Other types (PDF, images) and attachments given only by URL are not read."""
    if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
        return None
    content_type = str(attachment.get("contentType") or "").lower()
    kind, _, params = content_type.partition(";")
    kind = kind.strip()
    if kind not in ("text/plain", "text/html", "application/xhtml+xml"):
        return None
    try:
        raw = base64.b64decode(attachment["data"], validate=False)
    except (binascii.Error, ValueError):
        return None
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip():
            charset = value.strip().strip('"')
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    return text if kind == "text/plain" else strip_html(text)


_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                         "table", "section", "hr", "dd", "dt", "pre", "blockquote"})
# A tag cannot contain "<" or ">", so a stray "<" ends the attempt at the next "<": each character
# is looked at a bounded number of times.
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]{0,11})?[^<>]*>")
_DROPPED_OPEN = re.compile(r"<(script|style|title|head)\b", re.IGNORECASE)
_DROPPED_CLOSE = {name: re.compile(rf"</{name}[ \t\n]*>", re.IGNORECASE) for name in ("script", "style", "title", "head")}


def strip_html(text: str) -> str:
    """Markup removed in forward passes: script, style and the document head are dropped, block
    elements become line breaks, other tags spaces, and entities are decoded."""
    return html.unescape(_TAG.sub(_tag_break, _drop_elements(text)))


def _tag_break(match: re.Match) -> str:
    return "\n" if (match.group(2) or "").lower() in _BLOCK_TAGS else " "


def _drop_elements(text: str) -> str:
    parts, position = [], 0
    while True:
        opening = _DROPPED_OPEN.search(text, position)
        if opening is None:
            parts.append(text[position:])
            return "".join(parts)
        parts.append(text[position:opening.start()])
        closing = _DROPPED_CLOSE[opening.group(1).lower()].search(text, opening.end())
        if closing is None:
            return "".join(parts)
        position = closing.end()


# --- sentences ------------------------------------------------------------------------------------

def sentences(sources: Iterable[Source]) -> Iterator[Sentence]:
    """The sentences that may state a finding, with their rank; reason, history, technique and
    comparison sections are left out."""
    for source in sources:
        if not source.text:
            continue
        lowered = _lower(source.text)
        if _HINT.search(lowered) is None:
            continue
        for start, end, rank in _sections(lowered, source.rank):
            yield from _split(source.text[start:end], rank)


def _lower(text: str) -> str:
    """Lower case with the same length, so that positions found in it hold in the original (regexes
    run many times faster on lower-cased text than with IGNORECASE)."""
    lowered = text.lower()
    if len(lowered) != len(text):             # a few characters lengthen when lower-cased ("İ")
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return lowered


def _sections(lowered: str, rank: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, rank) of the parts of a text between section headings. A reason, history,
    exam, technique or comparison heading sets aside only the rest of its own line: reports often
    put the findings right below such a line without a heading of their own, and a closure stated
    there must not be missed."""
    position, current, line_end = 0, rank, -1
    for heading in _HEADING.finditer(lowered):
        if current and heading.start() > position:     # (a set-aside line ends at the next heading too)
            yield position, heading.start(), current
        word = heading.group(1).split()[0]
        current = _SECTION_RANK.get(word.rstrip("s"), _SECTION_RANK.get(word, 0))
        position = heading.end()
        if not current:
            if position > line_end:           # look for each line's end once: linear on one long line
                line_end = lowered.find("\n", position)
                line_end = len(lowered) if line_end < 0 else line_end
            position, current = line_end, rank
    if current:
        yield position, len(lowered), current


def _split(text: str, rank: int) -> Iterator[Sentence]:
    position = 0
    for end in _SENTENCE_END.finditer(text):
        yield from _sentence(text[position:end.start()], rank)
        position = end.end()
    yield from _sentence(text[position:], rank)


def _sentence(text: str, rank: int) -> Iterator[Sentence]:
    stripped = " ".join(text.split())
    lowered = stripped.lower()
    if stripped and _HINT.search(lowered):
        yield Sentence(stripped, rank, tuple(_TOKEN.findall(lowered)), lowered)


def quote(text: str) -> str:
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "\u2026"


# --- growth plates --------------------------------------------------------------------------------

def read(sources: Iterable[Source]) -> tuple[PlateFinding | None, BoneAgeText | None]:
    """Both readings of one resource's texts in one pass over its sentences. Only what the answer
    needs is kept (the first sentence per status and rank, the best bone age), so memory stays
    small however long the text."""
    sources = list(sources)
    plates, bone_age = _Plates(), _BoneAges()
    for sentence in sentences(sources):
        plates.add(sentence)
        bone_age.add(sentence)
    return plates.finding(), bone_age.best(sources)


class _Plates:
    def __init__(self) -> None:
        self.first: dict[int, dict[str, str]] = {}     # rank → status → the first sentence saying it

    def add(self, sentence: Sentence) -> None:
        status = sentence_status(sentence.words, sentence.lowered)
        if status is not None:
            self.first.setdefault(sentence.rank, {}).setdefault(status, sentence.text)

    def finding(self) -> PlateFinding | None:
        if not self.first:
            return None
        rank = max(self.first)
        said = self.first[rank]
        if len(said) == 1:
            ((status, text),) = said.items()
            return PlateFinding(status, quote(text), rank)
        shown = [said[s] for s in (CLOSED, UNCLEAR, OPEN) if s in said]
        return PlateFinding(UNCLEAR, quote(" / ".join(shown)), rank)


def sentence_status(words: tuple[str, ...], lowered: str | None = None) -> str | None:
    """open | closed | unclear | None for one sentence's words (`lowered`: its text in lower case)."""
    vocabulary = frozenset(words)
    if (not vocabulary & _TERMS or not _names_plates(lowered if lowered is not None else " ".join(words))
            or _is_order(words, vocabulary)):
        return None
    if not (vocabulary & _BREAK_WORDS or (vocabulary & _PAIR_BREAK_FIRSTS
                                         and set(zip(words, words[1:])) & _BREAK_PAIRS)
            or ("," in vocabulary and vocabulary & _PLATE_NOUNS)):
        found = _part_statuses(words, vocabulary)
    else:
        found = set()
        for part in _parts(words):
            found |= _part_statuses(part)
    if not found:
        return None
    if found == {OPEN}:
        return OPEN
    if found == {CLOSED}:
        return CLOSED
    return UNCLEAR


_PLATE_WORDS = re.compile(r"epiphys|physe|physis|growth plate|skeletal(?:ly)? (?:im)?matur")


def _names_plates(lowered: str) -> bool:
    return _PLATE_WORDS.search(lowered) is not None


_MATURITY = frozenset({"mature", "maturity", "immature", "immaturity"})


def _is_order(words: tuple[str, ...], vocabulary: frozenset[str]) -> bool:
    if "?" in vocabulary:
        return True
    if vocabulary & _ORDER_WORDS:
        for previous, word in zip(("",) + words, words):
            if word in _ORDER_WORDS and previous not in ("cannot", "not", "t", "be"):
                return True
    if vocabulary & _ORDER_FIRSTS:
        return any(pair in _ORDER_PAIRS for pair in zip(words, words[1:]))
    return False


def _parts(words: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    start = 0
    for i, (word, following) in enumerate(zip(words, words[1:] + ("",))):
        if word in _BREAK_WORDS or (word, following) in _BREAK_PAIRS or (word == "," and _clause_at(words, i + 1)):
            if i > start:
                yield words[start:i]
            start = i + 1
    if start < len(words):
        yield words[start:]


_PLATE_NOUNS = frozenset({"epiphyses", "epiphysis", "physes", "physis", "plates", "plate"})
_STATE_LINKS = frozenset({"are", "is", "have", "has", "remain", "remains", "appear", "appears", "now", "also", "all",
                          "both", "completely", "fully", "still", "widely"})
_STATES = frozenset({"closed", "fused", "open", "unfused", "patent", "not"})


def _clause_at(words: tuple[str, ...], j: int) -> bool:
    """Does a clause of its own start at j ("…, physes fused", "…, growth plates are open")? A list
    item after a negation is a noun phrase ("…, physeal closure or bar", "…, fused epiphyses"), so
    the negation before the comma still covers it."""
    if j < len(words) and words[j] == "growth":
        j += 1
    if j >= len(words) or words[j] not in _PLATE_NOUNS:
        return False
    j += 1
    while j < len(words) and words[j] in _STATE_LINKS:
        j += 1
    return j < len(words) and words[j] in _STATES


_ORDER_FIRSTS = frozenset(first for first, _ in _ORDER_PAIRS)
_TERMS = _CLOSE | _OPEN | _MATURITY
_PARTIAL_PAIRS = frozenset({("in", "progress")} | {(first, word) for word in _NOT_FULL for first in ("not", "yet")})
_PAIR_BREAK_FIRSTS = frozenset(first for first, _ in _BREAK_PAIRS)
_HEDGE_FIRSTS = frozenset({"not", "in", "yet"} | {first for first, _ in _POSSIBLE_PAIRS} | {f for f, _ in _PRE_NEGATION_PAIRS})


def _part_statuses(part: tuple[str, ...], vocabulary: frozenset[str] | None = None) -> set[str]:
    vocabulary = vocabulary if vocabulary is not None else frozenset(part)
    if not vocabulary & _TERMS:
        return set()
    pairs = set(zip(part, part[1:])) if vocabulary & _HEDGE_FIRSTS else set()
    if vocabulary & _PARTIAL or pairs & _PARTIAL_PAIRS:
        return set()                     # partial closure says nothing either way
    possible = bool(vocabulary & _POSSIBLE or pairs & _POSSIBLE_PAIRS)
    # A negation covers every term after it in this part: where does the first one stand?
    starts = [part.index(word) for word in vocabulary & _PRE_NEGATION]
    if pairs & _PRE_NEGATION_PAIRS:
        starts.append(next(i for i, pair in enumerate(zip(part, part[1:])) if pair in _PRE_NEGATION_PAIRS))
    negated_from = min(starts) if starts else len(part)
    out: set[str] = set()
    for i in [i for i, word in enumerate(part) if word in _TERMS]:
        word, previous = part[i], part[i - 1] if i else ""
        if word in _MATURITY:
            if previous != "skeletally" and not (previous == "skeletal" and word.endswith("ity")):
                continue
            kind = OPEN if word.startswith("immatur") else CLOSED
        else:
            kind = CLOSED if word in _CLOSE else OPEN
        denied = i > negated_from or _not_before(part, i) or _denied_after(part, i)
        # Closure asserted, or openness denied, is closed (unclear when hedged); closure denied or
        # openness asserted is open (nothing when hedged: a possibility is not proof of open plates).
        if (kind == CLOSED) != denied:
            out.add(UNCLEAR if possible else CLOSED)
        elif not possible:
            out.add(OPEN)
        if len(out) == 3:
            break
    return out


def _not_before(part: tuple[str, ...], i: int) -> bool:
    """"not" right before the term, with only linking words between ("not yet fused", "are not open")."""
    j = i - 1
    while j >= 0 and i - j <= 4:
        if part[j] == "not":
            return True
        if part[j] not in _NOT_FILLERS:
            return False
        j -= 1
    return False


def _denied_after(part: tuple[str, ...], i: int) -> bool:
    """Denied by what follows: "… are not seen", "fusion: not yet", "closure absent", "ruled out"."""
    j = i + 1
    while j < len(part) and part[j] in _LINKS_AFTER:
        j += 1
    if j < len(part) and part[j] in _DENIAL_AFTER:
        if part[j] != "not" or j + 1 >= len(part) or part[j + 1] not in _NOT_FULL:
            return True
    for k in range(i + 1, min(len(part), i + 9)):
        if part[k] == "not" and any(w in _PERCEIVED for w in part[k + 1:k + 3]):
            return True
        if part[k] == "absent" or (part[k] == "ruled" and k + 1 < len(part) and part[k + 1] == "out"):
            return True
        if part[k] in (",",):
            break
    return False


# --- bone age -------------------------------------------------------------------------------------

_YEAR_UNITS = frozenset({"years", "year", "yrs", "yr", "y", "a", "yo"})
_MONTH_UNITS = frozenset({"months", "month", "mos", "mo", "m", "mth", "mths"})
_BONE_AGE_LINKS = frozenset({"is", "of", "between", "was", "at", "approximately", "approx", "about", "around", "estimated",
                             "estimate", "assessed", "measured", "measures", "corresponds", "corresponding",
                             "consistent", "with", "to", "equal", "equals", "=", ":", "by", "the", "greulich",
                             "and", "pyle", "g", "&", "p", "method", "standard", "standards", "atlas", "(", ")",
                             "appears", "interpreted", "read", "as", "determined", "be", "reading", "tw", "tanner",
                             "whitehouse", "bonexpert", "-", "\u2013", "\u2014", ",", "today", "now", "calculated",
                             "result", "score", "according", "using", "per", "in", "radiographic"})
_NOT_AGE_UNITS = frozenset({"sd", "sds", "standard", "percent", "centile", "percentile", "th", "z"})
_STOP = frozenset({"chronological", "chronologic", "actual", "calendar", "ca", "patient", "height"})
_METHODS = (("greulich", "Greulich and Pyle"), ("g&p", "Greulich and Pyle"), ("tanner", "Tanner-Whitehouse"),
            ("tw2", "Tanner-Whitehouse 2"), ("tw3", "Tanner-Whitehouse 3"), ("bonexpert", "BoneXpert"))
_METHOD_HINT = re.compile(r"greulich|g[ \t]*&[ \t]*p\b|tanner|\btw[ \t-]?[23]\b|bonexpert")   # on lower-cased text


class _BoneAges:
    def __init__(self) -> None:
        self.chosen: BoneAgeText | None = None

    def add(self, sentence: Sentence) -> None:
        reading = _bone_age_in(sentence)
        # The highest rank wins, and a readable number over an unreadable one; else the first.
        if reading is not None and (self.chosen is None or (reading.rank, reading.years is not None)
                                    > (self.chosen.rank, self.chosen.years is not None)):
            self.chosen = reading

    def best(self, sources: list[Source]) -> BoneAgeText | None:
        best = self.chosen
        if best is not None and best.method is None:
            method = next((m for m in (_method(s.text) for s in sources) if m), None)
            best = BoneAgeText(best.years, method, best.text, best.reason, best.rank)
        return best


def _bone_age_in(sentence: Sentence) -> BoneAgeText | None:
    words = sentence.words
    if "age" not in words:
        return None
    for i in [i for i, word in enumerate(words[:-1]) if word in ("bone", "skeletal")]:
        if words[i + 1] == "age" and (i == 0 or words[i - 1] not in _STOP):
            j = i + 2
            while j < len(words) and j - i < 14 and words[j] in _BONE_AGE_LINKS:
                # "Tanner-Whitehouse 3", "TW2": the method's number is not the bone age
                j += 2 if words[j] in ("tw", "whitehouse") and words[j + 1:j + 2] in (("2",), ("3",)) else 1
            if j >= len(words) or not _is_number(words[j]) or words[j + 1:j + 2] and words[j + 1] in _NOT_AGE_UNITS:
                continue            # "bone age 2 SD below …" describes the bone age, it does not state it
            years, reason = _duration(words, j)
            text = quote(sentence.text)
            if years is None:
                return BoneAgeText(None, _method(sentence.text), text, f"{reason}: \u201c{text}\u201d", sentence.rank)
            return BoneAgeText(years, _method(sentence.text), text, None, sentence.rank)
    return None


def _method(text: str) -> str | None:
    found = _METHOD_HINT.search(text.lower())
    if not found:
        return None
    key = "".join(found.group(0).lower().split()).replace("-", "")
    return next((name for hint, name in _METHODS if key.startswith(hint)), None)


def _is_number(word: str) -> bool:
    return word[:1].isdigit()


def _duration(words: tuple[str, ...], j: int) -> tuple[Fraction | None, str | None]:
    """Years from the words at j: "7 years 6 months", "7 y 6 m", "7y6m", "7.5 years", "90 months"."""
    years, k = _duration_at(words, j)
    if years is None:
        following = words[j + 1:j + 3]
        if len(following) == 2 and following[0] in _RANGE_WORDS and _is_number(following[1]):
            return None, "a range, not one bone age"
        return None, k
    if k + 1 < len(words) and words[k] in _RANGE_WORDS and _is_number(words[k + 1]):
        return None, "a range, not one bone age"
    return years, None


_RANGE_WORDS = frozenset({"to", "-", "\u2013", "and", "or"})


def _duration_at(words: tuple[str, ...], j: int) -> tuple[Fraction | None, Any]:
    """(years, index after the duration) or (None, reason)."""
    # Exact: "7 years 11 months" is 95/12 years, compared with a limit as it is (never rounded first).
    first = Fraction(words[j])
    unit = words[j + 1] if j + 1 < len(words) else ""
    if unit in _MONTH_UNITS:
        return first / 12, j + 2
    if unit not in _YEAR_UNITS:
        return None, "a number without a unit of years or months"
    k = j + 2
    m = k + 1 if k < len(words) and words[k] in ("and", ",") else k
    if m + 1 < len(words) and _is_number(words[m]) and words[m + 1] in _MONTH_UNITS:
        months = Fraction(words[m])
        if months >= 12 or first.denominator != 1 or months.denominator != 1:
            return None, "years and months that do not add up"
        return first + months / 12, m + 2
    return first, k


_DURATION_WORDS = re.compile(r"[a-z]+|\d+(?:\.\d+)?|\S", re.IGNORECASE)
MAX_DURATION_TEXT = 60


def parse_duration(text: str) -> tuple[Fraction | None, str | None]:
    """(years, None) for a duration written as text, or (None, reason quoting the text). The whole
    text must be the duration (trailing words such as "(Greulich and Pyle)" are not allowed),
    so that "7 years 6 months to 8 years" or "about 7" is never half-read."""
    shown = quote(text.strip())
    if len(text) > MAX_DURATION_TEXT:
        return None, f"text value too long to be a duration: \u201c{shown}\u201d"
    words = tuple(w.lower() for w in _DURATION_WORDS.findall(text))
    if not words or not _is_number(words[0]):
        return None, f"text value is not a duration: \u201c{shown}\u201d"
    years, end = _duration_at(words, 0)
    if years is None:
        return None, f"text value is not one duration ({end}): \u201c{shown}\u201d"
    if end != len(words):
        return None, f"text value is not one duration: \u201c{shown}\u201d"
    return years, None
