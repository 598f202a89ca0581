"""The pre-checks that skip a pattern (semantics' literal heads, the lexicons' letter runs, the number gates) never
skip a text the pattern matches: every gated call gives what the pattern itself gives."""

from __future__ import annotations

import re
import sys

import pytest

from memrelay.engine.domain import semantics as S
from memrelay.engine.domain import text_gates as G
from memrelay.engine.domain.extraction import catalog as C
from memrelay.engine.domain.extraction import quantities as Q
from memrelay.engine.domain.extraction.lexicon import (
    DEAL_STAGES,
    LEADERSHIP_ROLES,
    NUMBER_WORDS,
    TECHNOLOGIES,
)

CUES = [(name, rx) for name, v in vars(S).items()
        for rx in ([v] if isinstance(v, re.Pattern) else list(v.values()) if isinstance(v, dict) and v and all(
            isinstance(x, re.Pattern) for x in v.values()) else [])]
CONTEXTS = ["{}", "We {} now.", "They said: {}!", "x{}", "{}x", "({})", "the-{}-thing", "At Acme, {}, since 2024."]


def _variants(phrase: str) -> list[str]:
    out = []
    for form in (phrase, phrase.upper(), phrase.title(), phrase.replace("s", "\u017f"), phrase.replace("k", "\u212a"),
                 phrase.replace("i", "\u0131"), phrase.replace("i", "\u0130"), phrase.replace(" ", "\u00a0")):
        out += [c.format(form) for c in CONTEXTS]
    return out


def test_folds_to_ascii_lists_every_non_ascii_character_an_ascii_letter_matches() -> None:
    letter = re.compile(r"[a-z]", re.IGNORECASE)
    found = {chr(cp) for cp in range(128, sys.maxunicode + 1) if letter.fullmatch(chr(cp))
             or any(ch.isascii() and ch.isalnum() for ch in chr(cp).lower())}
    assert found == set(G.FOLDS_TO_ASCII)


def test_literal_heads_occur_in_every_match() -> None:
    rx = re.compile(r"\b(?:asked (?:about|whether)|wondering|m(?:edium|oderate(?:ly)?) priority)\b", re.I)
    assert set(G.literal_heads(rx) or ()) == {"asked about", "asked whether", "wondering", " priority"}
    assert set(G.literal_heads(re.compile(r"\b(?:\d+ staff|team)")) or ()) == {" staff", "team"}
    assert G.literal_heads(re.compile(r"(?:the )?board")) == ("board",)
    assert G.literal_heads(re.compile(r"\d+|[a-z]+")) is None  # nothing literal to look for


@pytest.mark.parametrize(("name", "rx"), CUES, ids=[n for n, _ in CUES])
def test_gated_cue_search_is_the_pattern_search(name: str, rx: re.Pattern[str]) -> None:
    heads = G.literal_heads(rx) or ()
    texts = [t for h in heads for t in _variants(h.strip())] + _variants("no cue at all here")
    for text in texts:
        got, want = G.gated_search(rx, text, G.lower_or_none(text)), rx.search(text)
        assert (got and got.span()) == (want and want.span()), (name, text)


@pytest.mark.parametrize("lexicon", [C._technologies, C._stages, C._executives])
def test_lexicon_gate_finds_what_the_patterns_find(lexicon: object) -> None:
    lex = lexicon()  # type: ignore[operator]
    ungated = C._Lexicon([])
    ungated._names = lex._names
    ungated._patterns = [(p, exact, None) for p, exact, _ in lex._patterns]
    phrases = [a for products in TECHNOLOGIES.values() for aliases in products.values() for a in aliases]
    phrases += [p for ps in DEAL_STAGES.values() for p in ps] + [p for ps in LEADERSHIP_ROLES.values() for p in ps]
    phrases += ["node.js", ".net", "closed - won", "co-founder", "vice president of sales", "Go", "Spring"]
    for phrase in phrases:
        for text in _variants(phrase):
            assert _outcome(lex.find, text) == _outcome(ungated.find, text), text


def _outcome(fn: object, text: str) -> object:
    """What ``fn(text)`` returns, or the type of what it raises ("poſtgreſql" matches the pattern case-insensitively
    yet names no lexicon entry: a KeyError either way)."""
    try:
        return fn(text)  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def test_area_roles_and_number_words_are_found_whatever_the_gate() -> None:
    for text in ("VP of Sales", "vice  president engineering", "Head of People", "\u212aate is Chief Revenue",
                 "the director\u00a0of marketing", "svp-sales"):
        want = [m.span() for m in C._AREA_ROLE_RE.finditer(text)]
        assert [(m.start, m.end) for m in C.find_roles(text) if m.name.count("_")] == want, text
    for word in [*NUMBER_WORDS, "2", "Q3", "GPT-4", "$5m", "\u0663 items"]:
        for text in _variants(word):
            assert _outcome(Q.number_tokens, text) == _outcome(_number_tokens_ungated, text), text
            assert Q.find_amounts(text) == list(Q._amounts_in(text)), text
    assert Q.find_amounts("no digits here") == [] and Q.number_tokens("Q1: $2.5M, twelve seats") == {
        "q1", "2500000", "12"}


def _number_tokens_ungated(text: str) -> set[str]:
    tokens = {Q.canonical_number(a.value, percent=a.percent) for a in Q._amounts_in(text)}
    tokens |= {str(NUMBER_WORDS[w.lower()]) for w in Q._NUMBER_WORD_RE.findall(text) if w.lower() in NUMBER_WORDS}
    tokens |= {code.lower() for code in Q._ALNUM_CODE_RE.findall(text)}
    return tokens


def test_a_match_through_a_folding_character_names_nothing_and_raises_nothing() -> None:
    """"poſtgreſql" and "fıve" match the case-insensitive patterns yet name no lexicon entry: nothing is found (they
    raised KeyError, failing the memorize or recall that read them)."""
    assert C.find_technologies("We run poſtgreſql and PostgreSQL.") and all(
        m.name == "PostgreSQL" for m in C.find_technologies("We run poſtgreſql and PostgreSQL."))
    assert Q.number_tokens("fıve seats, five desks") == {"5"}
    assert S.topic_values("The team moved from poſtgreſql to MySQL; fıve engineers.", True) is not None
