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
from memrelay.engine.domain.text_gates import has_ascii_fold

_SEPARATORS = r"[\s_-]+"
_SEPARATOR_RE = re.compile(_SEPARATORS)
_RUN_RE = re.compile(r"[A-Za-z0-9]+")


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
            (re.compile(_alternation(phrases), 0 if exact else re.IGNORECASE), exact, _leads(phrases, exact))
            for exact, phrases in by_case.items()
            if phrases
        ]

    def find(self, text: str) -> list[Mention]:
        found = []
        for pattern, exact, leads in self._patterns:
            if leads is not None and (exact or not has_ascii_fold(text)):
                matches: Iterable[re.Match[str]] = _at_leads(pattern, text, text if exact else text.lower(), leads)
            else:
                matches = pattern.finditer(text)
            for m in matches:
                entry = self._names.get(_key(m.group(0)))
                if entry is None:  # matched through a character that folds to an ASCII letter ("poſtgreſql")
                    continue
                name, group = entry
                found.append(Mention(name, group, m.start(), m.end()))
        return _non_overlapping(found)


def _at_leads(pattern: re.Pattern[str], text: str, folded: str,
              leads: tuple[dict[str, list[frozenset[str]]], tuple[str, ...]]) -> list[re.Match[str]]:
    """``pattern.finditer(text)``, trying the pattern only where a phrase can start (see :func:`_leads`): where a run
    of ``folded`` (``text``, lower-cased for a case-insensitive pattern; the same length, as a text holding no
    character of :data:`~memrelay.engine.domain.text_gates.FOLDS_TO_ASCII` lower-cases character by character) is a phrase's first lead, or where a
    first part opening otherwise occurs — and not at all when no phrase has all its leads among the runs."""
    by_first, others = leads
    runs = _runs(folded)
    if not any(rest <= runs for run in runs if run in by_first for rest in by_first[run]) and not any(
            o in folded for o in others):
        return []
    starts = {m.start() for m in _RUN_RE.finditer(folded) if m.group(0) in by_first}
    for o in others:
        at = folded.find(o)
        while at >= 0:
            starts.add(at)
            at = folded.find(o, at + 1)
    out: list[re.Match[str]] = []
    end = 0
    for start in sorted(starts):
        if start >= end and (m := pattern.match(text, start)) is not None:
            out.append(m)  # finditer goes on after a match: the next one starts at or after its end
            end = m.end()
    return out


@lru_cache(maxsize=1024)
def _runs(folded: str) -> frozenset[str]:
    """The letter/digit runs of ``folded`` (every lexicon reads the same text's)."""
    return frozenset(_RUN_RE.findall(folded))


def _leads(phrases: Iterable[str], exact: bool) -> tuple[dict[str, list[frozenset[str]]], tuple[str, ...]] | None:
    """What a text holding one of ``phrases`` must hold (lower-cased unless ``exact``), or None if some phrase gives
    nothing to check: ({the ASCII letter/digit run a phrase's first part opens with: [the runs its other parts open
    with, per phrase]}, the first parts that open otherwise (".net")). A match of the alternation starts after no word
    character, every further part after a separator, and each part ends before a separator or a non-word character,
    so the text's letter/digit run where a part starts *is* that part's lead: a text whose runs (:data:`_RUN_RE`)
    hold no phrase's leads and which holds no other first part holds none of the phrases."""
    by_first: dict[str, list[frozenset[str]]] = {}
    others = set()
    for p in phrases:
        parts = re.split(_SEPARATORS, p.strip())
        if not all(part.isascii() for part in parts):
            return None
        leads = [m.group(0) if exact else m.group(0).lower() for m in map(_RUN_RE.match, parts) if m is not None]
        first = _RUN_RE.match(parts[0])
        if first is not None:
            by_first.setdefault(leads[0], []).append(frozenset(leads[1:]))
        elif parts[0]:
            others.add(parts[0] if exact else parts[0].lower())
        else:
            return None
    return by_first, tuple(sorted(others))


def _key(phrase: str) -> str:
    return " ".join(_SEPARATOR_RE.split(phrase.strip().lower()))


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


_AREA_LEVELS = ("vp", "svp", "evp", "vice president", "head", "director", "chief")
# The level's first word is a whole letter run of any text holding an area role (see _leads): a text without one is
# not searched.
_AREA_LEVEL_LEADS = frozenset(level.split()[0] for level in _AREA_LEVELS)
_AREA_ROLE_RE = re.compile(
    r"(?<![\w])(?P<level>" + "|".join(_AREA_LEVELS) + r")\s+(?:of\s+)?(?P<area>"
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
    searched = has_ascii_fold(text) or not _AREA_LEVEL_LEADS.isdisjoint(_runs(text.lower()))
    for m in _AREA_ROLE_RE.finditer(text) if searched else ():
        level = m.group("level").lower()
        level = "vp" if level in ("vp", "svp", "evp", "vice president") else level
        area = m.group("area").lower().replace(" ", "_")
        found.append(Mention(f"{level}_{area}", "leadership", m.start(), m.end()))
    return tuple(_non_overlapping([*found, *_executives().find(text)]))
