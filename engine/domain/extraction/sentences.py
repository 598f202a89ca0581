"""Split free text into short, self-contained facts."""

from __future__ import annotations

import re

from memrelay.engine.domain.extraction.lexicon import (
    ABBREVIATIONS,
    COMPANY_SUFFIXES,
    DUMMY_IT_ADJECTIVES,
    DUMMY_IT_FOLLOWERS,
    POSSESSIVE_PRONOUNS,
    SUBJECT_PRONOUNS,
    THEY_VERB_AGREEMENT,
)

_BULLET_RE = re.compile(r"^\s*(?:[-*•‣◦▪–—>]+|\d{1,2}[.)]|[a-zA-Z][.)](?=\s))\s+")
_BOUNDARY_RE = re.compile(r"([.!?]+)([\"')\]]*)(\s+)(?=[\"'(\[]?[A-Z0-9])")
_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|dear|thanks|thank you|thx|cheers|best|regards|kind regards|best regards|sincerely"
    r"|talk soon|see you)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[A-Za-z0-9][\w'’$€£%.,-]*")
# Words after "Inc."/"Ltd." that show a new sentence has started.
_SENTENCE_STARTERS = frozenset(
    "he she they it we i our their his her its the this that these those there in on at after before "
    "since when while then also however but and".split()
)
MIN_WORDS = 3


def split_facts(content: str, *, subject: str | None = None) -> list[str]:
    """Split ``content`` into sentence-sized facts.

    Bullets and lines are separate facts ("Heading:" lines prefix the bullets under them), sentences are
    split at terminal punctuation except after abbreviations ("Dr.", "e.g.") and inside numbers ("$2.5M").
    Greetings and fragments under three words (two with a number or a colon) are dropped. With a known
    ``subject``, a leading He/She/They/It (or His/Her/Their/Its) is replaced by it.
    """
    return [_resolve_pronoun(s, subject) if subject else s for s in split_sentences(content) if _is_fact(s)]


def split_sentences(content: str) -> list[str]:
    """Every sentence, line and bullet of ``content`` (whitespace collapsed), with nothing dropped."""
    return [" ".join(s.split()) for block in _blocks(content) for s in _sentences(block)]


def _blocks(content: str) -> list[str]:
    """Lines become blocks; wrapped lines are re-joined; bullets get their heading as a prefix."""
    blocks: list[str] = []
    heading: str | None = None
    for raw in content.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            heading = None
            continue
        bullet = _BULLET_RE.match(raw)
        if bullet:
            item = raw[bullet.end() :].strip()
            blocks.append(f"{heading} {item}" if heading else item)
            continue
        if line.endswith(":") and len(line.split()) <= 5:
            heading = line
            continue
        heading = None
        if blocks and _continues(blocks[-1], line):
            blocks[-1] = f"{blocks[-1]} {line}"
        else:
            blocks.append(line)
    return blocks


def _continues(previous: str, line: str) -> bool:
    return not previous.rstrip().endswith((".", "!", "?", ":", ";")) and line[:1].islower()


def _sentences(block: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(block):
        before = block[start : m.start(1)].split()
        if before and _period_is_not_a_stop(before[-1], m.group(1), block[m.end() :], before[-2:-1]):
            continue
        out.append(block[start : m.end(2)].strip())
        start = m.end()
    out.append(block[start:].strip())
    return [s for s in out if s]


# A single letter after these words is a name ("Series B.", "Plan C."), not an initial ("John F. Kennedy").
_LETTER_NAMERS = frozenset("series plan tier class type option phase round grade level vitamin".split())


def _period_is_not_a_stop(word: str, punct: str, rest: str, previous: list[str] | None = None) -> bool:
    if punct != ".":
        return False
    token = word.lower().lstrip("(\"'")
    if len(token) == 1 and token.isalpha() and previous and previous[0].lower() in _LETTER_NAMERS:
        return False
    if token in ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
        return True
    if "." in token and re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):  # e.g / i.e / u.s
        return True
    if token in COMPANY_SUFFIXES:
        following = rest.split(maxsplit=1)[0].lower().strip("\"'(,") if rest.strip() else ""
        return following not in _SENTENCE_STARTERS
    return False


def _is_fact(sentence: str) -> bool:
    words = _WORD_RE.findall(sentence)
    if not any(ch.isalpha() for ch in sentence):
        return False
    if _GREETING_RE.match(sentence) and len(words) <= 4:
        return False
    if len(words) >= MIN_WORDS:
        return True
    return len(words) == 2 and (any(ch.isdigit() for ch in sentence) or ":" in sentence or "@" in sentence)


def _resolve_pronoun(sentence: str, subject: str) -> str:
    first, _, rest = sentence.partition(" ")
    bare = first.rstrip(",").lower()
    contraction = re.fullmatch(r"(they|he|she|it)['’](re|ve|s|ll|d)", bare)
    if contraction:
        pronoun, suffix = contraction.groups()
        verb = {"re": "is", "ve": "has", "s": "'s", "ll": "will", "d": "would"}[suffix]
        if pronoun == "it" and _is_dummy_it(("is " + rest) if suffix == "s" else rest):
            return sentence
        joiner = "" if verb == "'s" else " "
        return f"{subject}{joiner}{verb} {rest}".rstrip()
    if bare in POSSESSIVE_PRONOUNS:
        return f"{subject}'s {rest}"
    if bare not in SUBJECT_PRONOUNS or (bare == "it" and _is_dummy_it(rest)):
        return sentence
    if bare == "they":
        verb, _, tail = rest.partition(" ")
        if verb.lower() in THEY_VERB_AGREEMENT:
            rest = f"{THEY_VERB_AGREEMENT[verb.lower()]} {tail}".rstrip()
    return f"{subject} {rest}"


def _is_dummy_it(rest: str) -> bool:
    words = rest.lower().split()
    if not words:
        return True
    if words[0] in DUMMY_IT_FOLLOWERS:
        return True
    return (
        words[0] in ("is", "was", "'s", "will", "would")
        and len(words) > 1
        and words[1] in DUMMY_IT_ADJECTIVES
    )


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of one block of ``text`` (same rules as :func:`split_sentences`,
    without line/bullet handling): ``text[start:end]`` is the sentence with its terminal punctuation."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY_RE.finditer(text):
        before = text[start : m.start(1)].split()
        if before and _period_is_not_a_stop(before[-1], m.group(1), text[m.end() :], before[-2:-1]):
            continue
        spans.append((start, m.end(2)))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out
