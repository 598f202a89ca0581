"""Matchers over the lexicon: technologies, deal stages and leadership roles named in a text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from engine.extraction.lexicon import (
    AMBIGUOUS_TECH_ALIASES,
    DEAL_STAGES,
    LEADERSHIP_ROLES,
    ROLE_AREAS,
    TECHNOLOGIES,
)


@dataclass(frozen=True)
class Mention:
    """A lexicon entry found in text: canonical name, its group (slot), and span."""

    name: str
    group: str
    start: int
    end: int


def _phrase_pattern(phrase: str) -> str:
    body = r"[\s_-]+".join(re.escape(part) for part in phrase.split())
    return rf"(?<![\w.]){body}(?![\w]|\.\w)"


@lru_cache(maxsize=1)
def _tech_patterns() -> list[tuple[re.Pattern[str], str, str]]:
    out = []
    for slot, products in TECHNOLOGIES.items():
        for canonical, aliases in products.items():
            for alias in aliases:
                flags = 0 if alias in AMBIGUOUS_TECH_ALIASES else re.IGNORECASE
                text = alias.capitalize() if alias in AMBIGUOUS_TECH_ALIASES else alias
                out.append((re.compile(_phrase_pattern(text), flags), canonical, slot))
    # Longer aliases first so "google cloud platform" wins over "google cloud".
    return sorted(out, key=lambda item: -len(item[0].pattern))


def find_technologies(text: str) -> list[Mention]:
    """Known technologies in ``text`` (canonical names) by position; overlaps go to the longest alias."""
    return _non_overlapping(
        Mention(canonical, slot, m.start(), m.end())
        for pattern, canonical, slot in _tech_patterns()
        for m in pattern.finditer(text)
    )


@lru_cache(maxsize=1)
def _stage_patterns() -> list[tuple[re.Pattern[str], str]]:
    pairs = [(phrase, stage) for stage, phrases in DEAL_STAGES.items() for phrase in phrases]
    pairs.sort(key=lambda p: -len(p[0]))
    return [(re.compile(_phrase_pattern(phrase), re.IGNORECASE), stage) for phrase, stage in pairs]


def find_deal_stages(text: str) -> list[Mention]:
    """Deal-stage phrases in ``text`` mapped to canonical stages ('closed_won', 'negotiation', ...)."""
    return _non_overlapping(
        Mention(stage, "deal_stage", m.start(), m.end())
        for pattern, stage in _stage_patterns()
        for m in pattern.finditer(text)
    )


_ROLE_RE = re.compile(
    r"(?<![\w])(?:(?P<vp>vp|svp|evp|vice president|head|director|chief)\s+(?:of\s+)?(?P<area>"
    + "|".join(re.escape(a) for a in sorted(ROLE_AREAS, key=len, reverse=True))
    + r"))(?!\w)",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _exec_patterns() -> list[tuple[re.Pattern[str], str]]:
    pairs = [(phrase, role) for role, phrases in LEADERSHIP_ROLES.items() for phrase in phrases]
    pairs.sort(key=lambda p: -len(p[0]))
    return [(re.compile(_phrase_pattern(phrase), re.IGNORECASE), role) for phrase, role in pairs]


def find_roles(text: str) -> list[Mention]:
    """Leadership roles: 'ceo', 'cto', ..., 'vp_sales', 'head_marketing', 'director_engineering'."""
    found = []
    for m in _ROLE_RE.finditer(text):
        level = m.group("vp").lower()
        level = "vp" if level in ("vp", "svp", "evp", "vice president") else level
        found.append(
            Mention(f"{level}_{m.group('area').lower().replace(' ', '_')}", "leadership", m.start(), m.end())
        )
    found += [
        Mention(role, "leadership", m.start(), m.end())
        for pattern, role in _exec_patterns()
        for m in pattern.finditer(text)
    ]
    return _non_overlapping(found)


def _non_overlapping(mentions: Iterable[Mention]) -> list[Mention]:
    chosen: list[Mention] = []
    for m in sorted(mentions, key=lambda x: (-(x.end - x.start), x.start)):
        if all(m.end <= c.start or m.start >= c.end for c in chosen):
            chosen.append(m)
    return sorted(chosen, key=lambda x: x.start)
