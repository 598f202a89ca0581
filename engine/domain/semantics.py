"""Dedup and fresh-fact precedence: when two memories say the same thing, and when a newer one
replaces an older one.

Cosine alone cannot tell "Deal value: $250,000" from "Deal value: $1,000,000" (~0.91 with WordLlama),
so both decisions also compare the values a sentence carries: numbers, names, deal stages, roles and
whether it is negated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from memrelay.engine.domain.extraction.catalog import find_deal_stages, find_roles, find_technologies
from memrelay.engine.domain.extraction.keywords import tokens
from memrelay.engine.domain.extraction.lexicon import (
    ADDITIVE_MARKERS,
    DEAL_STAGE_CUES,
    HEADCOUNT_CUES,
    HQ_CUES,
    MONEY_SLOTS,
    NEGATION_PHRASES,
    NEGATIONS,
    PLAN_CUES,
    PRICING_PLANS,
    STOPWORDS,
    TECH_SLOT_WORDS,
    VENDOR_CUES,
)
from memrelay.engine.domain.extraction.quantities import canonical_number, find_amounts, number_tokens

DUPLICATE_COSINE = 0.95
# Same-topic pairs are lexically far apart with a static embedding ("We use AWS" / "They moved
# everything to Azure last year" is 0.28, "Headquartered in Austin" / "relocated their HQ to Denver"
# 0.19), while the topic key already requires the same slot; the cosine floor only rejects pairs that
# share a keyword by accident.
RELATED_COSINE = 0.15
SUPERSEDING_TECH_SLOTS = ("database", "cloud", "crm", "framework", "data_warehouse", "language")
# Stages that need no "deal"/"stage" word nearby to be read as a deal stage.
_SELF_EVIDENT_STAGES = frozenset({"closed_won", "closed_lost", "contract_sent"})
_ROLE_ACRONYMS = frozenset("ceo cto cfo coo cmo cro cio ciso cpo vp svp evp hr it".split())
_HQ_WORDS = frozenset(w for cue in HQ_CUES for w in cue.split()) | {"headquarter", "office"}
_NAME_RE = re.compile(r"(?<![\w'’])[A-Za-z][A-Za-z0-9]*(?:[.&'’-][A-Za-z0-9]+)*")
_COMMON_CAPITALISED = frozenset(
    """i met deal budget meeting call notes update note next last today yesterday tomorrow please thanks
    hi hello also however after before during since until while because although though yes no ok
    okay great good currently recently now still just""".split()
)


@dataclass(frozen=True)
class Facets:
    """The values that distinguish one statement from a near-identical one."""

    numbers: frozenset[str]
    currencies: frozenset[str]
    names: frozenset[str]
    stages: frozenset[str]
    roles: frozenset[str]
    negated: bool


def numbers_in(text: str) -> set[str]:
    """Canonical quantities: '$250,000' and '$250k' -> '250000', '1M' -> '1000000', '15%', years, 'q1'."""
    return number_tokens(text)


def proper_nouns(text: str) -> set[str]:
    """Lower-cased names: capitalised words not at a sentence start (or at one, if not a common word),
    CamelCase and ALL-CAPS tokens, and known technology names in any case."""
    found: set[str] = set()
    for m in _NAME_RE.finditer(text):
        word = re.sub(r"['’]s$", "", m.group(0))
        if len(word) < 2 or not word[0].isupper():
            continue
        lower = word.lower()
        at_start = _at_sentence_start(text, m.start())
        distinctive = word.isupper() or any(c.isupper() for c in word[1:])
        if distinctive or not at_start or (lower not in STOPWORDS and lower not in _COMMON_CAPITALISED):
            found.add(lower)
    found |= {t.name.lower() for t in find_technologies(text)}
    return found


def _at_sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i].isspace():
        if text[i] == "\n":
            return True
        i -= 1
    return i < 0 or text[i] in ".!?:;•-*(\"'"


@lru_cache(maxsize=4096)
def facets(text: str) -> Facets:
    """Numbers, currencies, names, deal stages, roles and negation of ``text`` (cached)."""
    return Facets(
        numbers=frozenset(numbers_in(text)),
        currencies=frozenset(a.currency for a in find_amounts(text) if a.currency),
        names=frozenset(proper_nouns(text)),
        stages=frozenset(m.name for m in find_deal_stages(text)),
        roles=frozenset(m.name for m in find_roles(text)),
        negated=is_negated(text),
    )


def is_negated(text: str) -> bool:
    """True if the statement is negated ("not", "don't", "no longer", "stopped using" ...)."""
    words = tokens(text)
    lowered = text.lower()
    return any(w in NEGATIONS or w.endswith("n't") for w in words) or any(
        p in lowered for p in NEGATION_PHRASES
    )


def is_near_duplicate(a: str, b: str, cosine: float, threshold: float = DUPLICATE_COSINE) -> bool:
    """True only for near-verbatim restatements: the same numbers, currencies, names, deal stages,
    roles and polarity, and either cosine >= threshold or the same words once numbers are canonical
    ("Deal value: $250,000" / "deal value: $250k")."""
    if facets(a) != facets(b):
        return False
    return cosine >= threshold or normal_form(a) == normal_form(b)


def normal_form(text: str) -> str:
    """Lower-case words with every quantity in canonical form and punctuation dropped."""
    pieces, pos = [], 0
    for amount in find_amounts(text):
        number = canonical_number(amount.value, percent=amount.percent)
        pieces += [text[pos : amount.start], f" {amount.currency or ''} {number} "]
        pos = amount.end
    return " ".join(tokens("".join(pieces) + text[pos:]))


@lru_cache(maxsize=4096)
def topic_of(text: str) -> str | None:
    """The superseding topic of a statement, with its slot, or None.

    Keys: 'leadership:<role>', 'amount:<deal_value|budget|price|revenue|valuation>', 'headcount',
    'deal_stage', 'technology:<database|cloud|crm|framework|data_warehouse|language>', 'location:hq',
    'pricing_plan', 'vendor'.
    """
    lowered = f" {' '.join(tokens(text))} "
    for detect in (_leadership, _amount, _headcount, _deal_stage, _technology, _location, _plan, _vendor):
        topic = detect(text, lowered)
        if topic:
            return topic
    return None


def contradicts(old: str, new: str, cosine: float, min_cosine: float = RELATED_COSINE) -> bool:
    """True if ``new`` replaces ``old``: same topic and slot, related, not a restatement, not additive
    ("also uses ..."), and a different value (number, name, stage, plan) or a flipped polarity."""
    topic = topic_of(old)
    if topic is None or topic != topic_of(new) or cosine < min_cosine:
        return False
    if is_near_duplicate(old, new, cosine) or _is_additive(new):
        return False
    fo, fn = facets(old), facets(new)
    if fo.negated != fn.negated:
        return True
    old_values, new_values = _distinguishing(topic, old, fo), _distinguishing(topic, new, fn)
    return bool(new_values) and old_values != new_values


# --- topic detectors: (text, lower-cased space-joined tokens) -> key | None ---------------------------------


def _has(lowered: str, phrases: tuple[str, ...] | list[str]) -> str | None:
    return next((p for p in phrases if f" {p} " in lowered), None)


def _person_names(text: str) -> set[str]:
    return {n for n in proper_nouns(text) if n not in _ROLE_ACRONYMS and not find_technologies(n)}


def _leadership(text: str, lowered: str) -> str | None:
    roles = find_roles(text)
    if roles and _person_names(text):
        return f"leadership:{roles[0].name}"
    return None


def _amount(text: str, lowered: str) -> str | None:
    if not any(a.is_money or a.magnitude for a in find_amounts(text)):
        return None
    phrases = sorted(
        ((p, slot) for slot, ps in MONEY_SLOTS.items() for p in ps if p != "deal"), key=lambda x: -len(x[0])
    )
    slot = next((s for p, s in phrases if f" {p} " in lowered), None)
    if slot is None and " deal " in lowered:
        slot = "deal_value"
    return f"amount:{slot}" if slot else None


def _headcount(text: str, lowered: str) -> str | None:
    counts = [a for a in find_amounts(text) if not (a.is_money or a.percent)]
    return "headcount" if counts and _has(lowered, HEADCOUNT_CUES) else None


def _deal_stage(text: str, lowered: str) -> str | None:
    stages = {m.name for m in find_deal_stages(text)}
    if stages & _SELF_EVIDENT_STAGES or (stages and _has(lowered, DEAL_STAGE_CUES)):
        return "deal_stage"
    return None


def _technology(text: str, lowered: str) -> str | None:
    slot = next((m.group for m in find_technologies(text) if m.group in SUPERSEDING_TECH_SLOTS), None)
    slot = slot or next((s for s, words in TECH_SLOT_WORDS.items() if _has(lowered, words)), None)
    return f"technology:{slot}" if slot else None


def _location(text: str, lowered: str) -> str | None:
    return "location:hq" if _has(lowered, HQ_CUES) else None


def _plan(text: str, lowered: str) -> str | None:
    return "pricing_plan" if _has(lowered, PLAN_CUES) and _has(lowered, PRICING_PLANS) else None


def _vendor(text: str, lowered: str) -> str | None:
    return "vendor" if _has(lowered, VENDOR_CUES) and proper_nouns(text) else None


# --- values that tell two statements on the same topic apart --------------------------------------------


def _distinguishing(topic: str, text: str, f: Facets) -> frozenset[str]:
    kind, _, slot = topic.partition(":")
    if kind == "technology":
        techs = {m.name for m in find_technologies(text) if m.group == slot}
        return frozenset(techs or f.names)
    if kind in ("amount", "headcount"):
        return f.numbers
    if kind == "deal_stage":
        return f.stages
    if kind == "leadership":
        return frozenset(_person_names(text))
    if kind == "location":
        return frozenset(n for n in f.names if n not in _HQ_WORDS)
    if kind == "pricing_plan":
        lowered = f" {' '.join(tokens(text))} "
        return frozenset(p for p in PRICING_PLANS if f" {p} " in lowered)
    return f.names


def _is_additive(text: str) -> bool:
    lowered = f" {' '.join(tokens(text))} "
    markers = [m for m in ADDITIVE_MARKERS if m != "too"]
    return bool(_has(lowered, markers)) or bool(re.search(r"\btoo\W*$", text.lower()))
