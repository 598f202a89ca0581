"""Schedules: 5-field cron expressions (UTC; numbers, ``*``, lists, ranges, steps) and intervals (``15m``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> int:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` → seconds (at least 60)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not m:
        raise ValueError(f"invalid interval {text!r}: use a number and s/m/h/d, e.g. 15m")
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds < 60:
        raise ValueError("the shortest interval is 60s")
    return seconds


def _field(part: str, lo: int, hi: int, name: str) -> frozenset[int]:
    """One cron field as the set of values it allows (weekday 7 means Sunday, like 0)."""
    top = 7 if name == "weekday" else hi
    values: set[int] = set()
    for item in part.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", item)
        if not m or (m.group(2) is not None and int(m.group(2)) == 0):
            raise ValueError(f"invalid cron {name} field: {item!r}")
        base, step = m.group(1), int(m.group(2) or 1)
        if base == "*":
            start, end = lo, hi
        else:
            start_s, _, end_s = base.partition("-")
            start, end = int(start_s), int(end_s) if end_s else (top if m.group(2) else int(start_s))
        if not (lo <= start <= end <= top):
            raise ValueError(f"cron {name} value out of range {lo}-{top}: {item!r}")
        values.update(range(start, end + 1, step))
    return frozenset(v % 7 if name == "weekday" else v for v in values)


def parse_cron(expr: str) -> tuple[frozenset[int], ...]:
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"cron {expr!r} needs 5 fields: minute hour day month weekday")
    return tuple(_field(p, lo, hi, name) for p, (name, lo, hi) in zip(parts, FIELDS, strict=True))


def cron_matches(expr: str, t: datetime) -> bool:
    minute, hour, day, month, weekday = parse_cron(expr)
    return (t.minute in minute and t.hour in hour and t.day in day and t.month in month
            and (t.isoweekday() % 7) in weekday)


def due_slot(trigger_cron: str | None, every: str | None, last: datetime | None, now: datetime) -> datetime | None:
    """The latest schedule slot in ``(last, now]`` (at most one day back), or None when nothing is due."""
    now = now.replace(second=0, microsecond=0)
    if every is not None:
        seconds = parse_interval(every)
        slot = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=now.tzinfo)
        return slot if last is None or slot > last else None
    assert trigger_cron is not None
    floor = max(last, now - timedelta(days=1)) if last else now - timedelta(minutes=1)
    t = now
    while t > floor:
        if cron_matches(trigger_cron, t):
            return t
        t -= timedelta(minutes=1)
    return None
