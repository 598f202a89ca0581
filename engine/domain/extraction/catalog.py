"""Matchers over the lexicon: technologies, deal stages and leadership roles named in a text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from memrelay.engine.domain.extraction.lexicon import (
    AMBIGUOUS_TECH_ALIASES,
    DEAL_STAGES,
    LEADERSHIP_ROLES,
    ROLE_AREAS,
    TECHNOLOGIES,
)

_SEPARATORS = r"[\s_-]+"


@dataclass(frozen=True)
class Mention:
    """A lexicon entry found in text: canonical name, its group (slot), and span."""

    name: str
    group: str
    start: int
    end: int


class _Lexicon:
    """Whole-phrase matcher for many phrases at once (one regex per case mode, longest phrase first)."""

    def __init__(self, entries: Iterable[tuple[str, str, str, bool]]) -> None:
        """``entries``: (phrase, canonical name, group, match case exactly)."""
        self._names: dict[str, tuple[str, str]] = {}
        by_case: dict[bool, set[str]] = {True: set(), False: set()}
        for phrase, name, group, exact_case in entries:
            self._names[_key(phrase)] = (name, group)
            by_case[exact_case].add(phrase)
        self._patterns = [
            re.compile(_alternation(phrases), 0 if exact else re.IGNORECASE)
            for exact, phrases in by_case.items()
            if phrases
        ]

    def find(self, text: str) -> list[Mention]:
        found = []
        for pattern in self._patterns:
            for m in pattern.finditer(text):
                name, group = self._names[_key(m.group(0))]
                found.append(Mention(name, group, m.start(), m.end()))
        return _non_overlapping(found)


def _key(phrase: str) -> str:
    return " ".join(re.split(_SEPARATORS, phrase.strip().lower()))


def _alternation(phrases: Iterable[str]) -> str:
    bodies = sorted(
        {_SEPARATORS.join(re.escape(part) for part in re.split(_SEPARATORS, p.strip())) for p in phrases},
        key=len,
        reverse=True,
    )
    return rf"(?<![\w.])(?:{'|'.join(bodies)})(?!\w|\.\w)"


def _non_overlapping(mentions: Iterable[Mention]) -> list[Mention]:
    chosen: list[Mention] = []
    for m in sorted(mentions, key=lambda x: (-(x.end - x.start), x.start)):
        if all(m.end <= c.start or m.start >= c.end for c in chosen):
            chosen.append(m)
    return sorted(chosen, key=lambda x: x.start)


@lru_cache(maxsize=1)
def _technologies() -> _Lexicon:
    return _Lexicon(
        (
            alias.capitalize() if alias in AMBIGUOUS_TECH_ALIASES else alias,
            canonical,
            slot,
            alias in AMBIGUOUS_TECH_ALIASES,
        )
        for slot, products in TECHNOLOGIES.items()
        for canonical, aliases in products.items()
        for alias in aliases
    )


@lru_cache(maxsize=1)
def _stages() -> _Lexicon:
    return _Lexicon(
        (phrase, stage, "deal_stage", False) for stage, phrases in DEAL_STAGES.items() for phrase in phrases
    )


@lru_cache(maxsize=1)
def _executives() -> _Lexicon:
    return _Lexicon(
        (phrase, role, "leadership", False)
        for role, phrases in LEADERSHIP_ROLES.items()
        for phrase in phrases
    )


_AREA_ROLE_RE = re.compile(
    r"(?<![\w])(?P<level>vp|svp|evp|vice president|head|director|chief)\s+(?:of\s+)?(?P<area>"
    + "|".join(re.escape(a) for a in sorted(ROLE_AREAS, key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)


def find_technologies(text: str) -> list[Mention]:
    """Known technologies in ``text`` (canonical names) by position; overlaps go to the longest alias.

    Aliases that are everyday words ("Go", "Spring", "Segment") match only when capitalised.
    """
    return list(_technologies_in(text))


@lru_cache(maxsize=8192)
def _technologies_in(text: str) -> tuple[Mention, ...]:
    """Memoised: extraction asks about the same sentence once per property and again when judging facts."""
    return tuple(_technologies().find(text))


def find_deal_stages(text: str) -> list[Mention]:
    """Deal-stage phrases in ``text`` mapped to canonical stages ('closed_won', 'negotiation', ...)."""
    return list(_stages_in(text))


@lru_cache(maxsize=8192)
def _stages_in(text: str) -> tuple[Mention, ...]:
    return tuple(_stages().find(text))


def find_roles(text: str) -> list[Mention]:
    """Leadership roles: 'ceo', 'cto', ..., 'vp_sales', 'head_marketing', 'director_engineering'."""
    return list(_roles_in(text))


@lru_cache(maxsize=8192)
def _roles_in(text: str) -> tuple[Mention, ...]:
    found = []
    for m in _AREA_ROLE_RE.finditer(text):
        level = m.group("level").lower()
        level = "vp" if level in ("vp", "svp", "evp", "vice president") else level
        area = m.group("area").lower().replace(" ", "_")
        found.append(Mention(f"{level}_{area}", "leadership", m.start(), m.end()))
    return tuple(_non_overlapping([*found, *_executives().find(text)]))
