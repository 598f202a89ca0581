"""Absolute and relative date expressions, resolved against a memory's own timestamp."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from memrelay.engine.domain.extraction.lexicon import NUMBER_WORDS

Granularity = Literal["day", "week", "month", "quarter", "year"]

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS["sept"] = 9
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_MONTH_RE = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_ORD = r"(?:st|nd|rd|th)?"
_COUNT = r"\d{1,3}|an?|one|" + "|".join(w for w, n in NUMBER_WORDS.items() if n <= 20)
_UNIT = r"(?:day|week|month|year)s?"
_PREPOSITIONS = frozenset(
    "since from until till by before after in on during of for through over within as starting beginning "
    "around about".split()
)

_ABSOLUTE_RE = re.compile(
    rf"""
    \b(?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}}))\b
    |\b(?P<mdy>(?P<m1>{_MONTH_RE})\s+(?P<d1>\d{{1,2}}){_ORD}(?:,?\s+(?P<y1>\d{{4}}))?)(?![\d:])
    |\b(?P<dmy>(?P<d2>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<m2>{_MONTH_RE})(?:,?\s+(?P<y2>\d{{4}}))?)(?![\w:])
    |\b(?P<slash>(?P<sa>\d{{1,2}})/(?P<sb>\d{{1,2}})/(?P<sy>\d{{4}}))\b
    """,
    re.VERBOSE,
)
_RELATIVE_RE = re.compile(
    rf"""
    (?<!\bthe\s)(?<!\bthe\spast\s)\b(?:
      (?P<simple>today|tonight|this\s+morning|this\s+afternoon|this\s+evening|yesterday|tomorrow)
     |(?P<dir>last|next|this)\s+(?P<unit>week|month|quarter|year)
     |(?P<wdir>last|next|this)\s+(?P<wday>{"|".join(_WEEKDAYS)})
     |in\s+(?P<n_in>{_COUNT})\s+(?P<u_in>{_UNIT})
     |(?P<n_ago>{_COUNT})\s+(?P<u_ago>{_UNIT})\s+ago
    )\b(?P<poss>'s)?
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class DateMention:
    """A date expression: its span, the first day it denotes, its granularity and a readable label."""

    start: int
    end: int
    day: date
    granularity: Granularity
    label: str
    relative: bool

    @property
    def iso(self) -> str:
        return self.day.isoformat()


def find_dates(text: str, ts: datetime) -> list[DateMention]:
    """Absolute and relative dates in ``text`` (relative ones anchored to ``ts``), ordered by position."""
    found = [m for m in (_absolute(match, ts) for match in _ABSOLUTE_RE.finditer(text)) if m]
    taken = [(m.start, m.end) for m in found]
    for match in _RELATIVE_RE.finditer(text):
        if not any(s < match.end() and match.start() < e for s, e in taken):
            found.append(_relative(match, ts.date()))
    return sorted(found, key=lambda m: m.start)


def anchor_relative_dates(text: str, ts: datetime) -> str:
    """Rewrite relative time expressions as absolute ones anchored to ``ts``.

    "We spoke yesterday" -> "We spoke on March 14, 2026"; "since last month" -> "since February 2026";
    "next quarter" (at 2026-11-23) -> "in Q1 2027". Durations such as "the last month" are left alone.
    """
    pieces: list[str] = []
    pos = 0
    for match in _RELATIVE_RE.finditer(text):
        mention = _relative(match, ts.date())
        replacement = mention.label
        if match.group("poss"):
            replacement += "'s"
        elif not _preceded_by_preposition(text, match.start()):
            replacement = _PREFIX[mention.granularity] + replacement
        if match.group(0)[0].isupper():
            replacement = replacement[0].upper() + replacement[1:]
        pieces += [text[pos : match.start()], replacement]
        pos = match.end()
    return "".join(pieces) + text[pos:]


_PREFIX: dict[Granularity, str] = {
    "day": "on ",
    "week": "during ",
    "month": "in ",
    "quarter": "in ",
    "year": "in ",
}


def _preceded_by_preposition(text: str, start: int) -> bool:
    words = text[:start].split()
    return bool(words) and words[-1].lower().strip("(,") in _PREPOSITIONS


def _absolute(match: re.Match[str], ts: datetime) -> DateMention | None:
    g = match.groupdict()
    try:
        if g["iso"]:
            day = date(int(g["iy"]), int(g["im"]), int(g["id"]))
        elif g["mdy"] or g["dmy"]:
            month = _MONTHS[(g["m1"] or g["m2"]).rstrip(".").lower()]
            year = int(g["y1"] or g["y2"] or ts.year)
            day = date(year, month, int(g["d1"] or g["d2"]))
        else:
            a, b = int(g["sa"]), int(g["sb"])
            if a <= 12 and b <= 12 and a != b:
                return None  # 03/04/2026: US or European order cannot be told apart
            month, dom = (a, b) if a <= 12 else (b, a)
            day = date(int(g["sy"]), month, dom)
    except ValueError:
        return None
    return DateMention(match.start(), match.end(), day, "day", _day_label(day), relative=False)


def _relative(match: re.Match[str], today: date) -> DateMention:
    g = {k: (v.lower() if isinstance(v, str) else v) for k, v in match.groupdict().items()}
    if g["simple"]:
        offset = {"yesterday": -1, "tomorrow": 1}.get(g["simple"], 0)
        return _mention(match, today + timedelta(days=offset), "day")
    if g["unit"]:
        step = {"last": -1, "next": 1, "this": 0}[g["dir"]]
        return _mention(match, _shift_period(today, g["unit"], step), _PERIOD_GRANULARITY[g["unit"]])
    if g["wday"]:
        return _mention(match, _weekday(today, _WEEKDAYS[g["wday"]], g["wdir"]), "day")
    if g["n_in"]:
        return _mention(
            match, _shift_count(today, _count(g["n_in"]), g["u_in"]), _unit_granularity(g["u_in"])
        )
    return _mention(
        match, _shift_count(today, -_count(g["n_ago"]), g["u_ago"]), _unit_granularity(g["u_ago"])
    )


def _mention(match: re.Match[str], day: date, granularity: Granularity) -> DateMention:
    start = _period_start(day, granularity)
    return DateMention(
        match.start(), match.end(), start, granularity, _label(start, granularity), relative=True
    )


def _count(token: str) -> int:
    return 1 if token in ("a", "an", "one") else int(token) if token.isdigit() else NUMBER_WORDS[token]


_UNIT_GRANULARITY: dict[str, Granularity] = {"day": "day", "week": "day", "month": "month", "year": "year"}
# "last week"/"this quarter" name the whole period.
_PERIOD_GRANULARITY: dict[str, Granularity] = {"week": "week", "month": "month", "quarter": "quarter", "year": "year"}


def _unit_granularity(unit: str) -> Granularity:
    # "in 3 days"/"2 weeks ago" name a day; "in 2 months" a month; "3 years ago" a year.
    return _UNIT_GRANULARITY[unit.rstrip("s")]


def _shift_count(today: date, n: int, unit: str) -> date:
    unit = unit.rstrip("s")
    if unit == "day":
        return today + timedelta(days=n)
    if unit == "week":
        return today + timedelta(weeks=n)
    if unit == "month":
        return _add_months(today, n)
    return _add_months(today, 12 * n)


def _shift_period(today: date, unit: str, step: int) -> date:
    if unit == "week":
        return today + timedelta(weeks=step)
    if unit == "month":
        return _add_months(today, step)
    if unit == "quarter":
        return _add_months(today, 3 * step)
    return _add_months(today, 12 * step)


def _add_months(day: date, n: int) -> date:
    index = day.year * 12 + (day.month - 1) + n
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _weekday(today: date, weekday: int, direction: str) -> date:
    if direction == "this":
        return today + timedelta(days=weekday - today.weekday())
    if direction == "next":
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)


def _period_start(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if granularity == "year":
        return date(day.year, 1, 1)
    return day


def _day_label(day: date) -> str:
    return f"{calendar.month_name[day.month]} {day.day}, {day.year}"


def _label(start: date, granularity: Granularity) -> str:
    if granularity == "week":
        return f"the week of {_day_label(start)}"
    if granularity == "month":
        return f"{calendar.month_name[start.month]} {start.year}"
    if granularity == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if granularity == "year":
        return str(start.year)
    return _day_label(start)
