"""Cheap pre-checks that skip a regular expression on a text it cannot match (issue 16: the per-memory text analysis
of recall and memorize runs dozens of cue patterns over every statement, and most match none).

A case-insensitive alternation behind a ``\\b`` is tried at every position of a text, yet every match of most cue
patterns holds one of a few literal words ("asked about", "wondering", ...). :func:`literal_heads` reads those words
from the pattern's own parse tree (``re._parser``), so they cannot drift from it; a text whose lower-cased form holds
none of them cannot match (:func:`cannot_match`) and :func:`gated_search` answers None without running the pattern.
A pattern with no such words (a match may be all character classes), or a parser that changed shape, is always run.

Case-insensitive ASCII letters also match a few non-ASCII characters (:data:`FOLDS_TO_ASCII`: "ſ" matches "s", "K"
(Kelvin) "k"): a text holding one is always run through the pattern itself (:func:`has_ascii_fold`).
tests/engine/test_semantics_equivalence.py checks every gated call against the pattern's own answer.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")
"""The non-ASCII characters that an ASCII letter matches case-insensitively or that lower-case to one."""

# id(pattern) -> (pattern, its heads): keyed by identity, since hashing a compiled pattern hashes its whole program
_HEADS: dict[int, tuple[re.Pattern[str], tuple[str, ...] | None]] = {}


def has_ascii_fold(text: str) -> bool:
    """True if ``text`` holds a character of :data:`FOLDS_TO_ASCII` (then no pre-check may skip it)."""
    return not text.isascii() and any(ch in text for ch in FOLDS_TO_ASCII)


def lower_or_none(text: str) -> str | None:
    """``text`` lower-cased for :func:`cannot_match`, or None if it holds a character that folds to an ASCII letter."""
    return None if has_ascii_fold(text) else text.lower()


def cannot_match(rx: re.Pattern[str], low: str | None) -> bool:
    """True if ``rx`` cannot match the text whose :func:`lower_or_none` form is ``low``: none of its literal heads occurs."""
    if low is None:
        return False
    heads = literal_heads(rx)
    return heads is not None and not any(map(low.__contains__, heads))


def gated_search(rx: re.Pattern[str], text: str, low: str | None) -> re.Match[str] | None:
    """``rx.search(text)``, skipped when :func:`cannot_match` (``low``: ``lower_or_none(text)``)."""
    return None if cannot_match(rx, low) else rx.search(text)


def literal_heads(rx: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-case ASCII words one of which occurs in every match of ``rx`` (none contains another), or None;
    memoised per pattern."""
    got = _HEADS.get(id(rx))
    if got is None or got[0] is not rx:
        got = _HEADS[id(rx)] = (rx, _derive_heads(rx))
    return got[1]


def _derive_heads(rx: re.Pattern[str]) -> tuple[str, ...] | None:
    try:
        parser = importlib.import_module("re._parser")
        consts = importlib.import_module("re._constants")
        heads = _required(list(parser.parse(rx.pattern, rx.flags).data), consts)
    except Exception:  # noqa: BLE001 - a private module of the standard library: no pre-check if it changes
        return None
    if not heads:
        return None
    minimal: list[str] = []
    for h in sorted(heads, key=len):
        if not any(m in h for m in minimal):
            minimal.append(h)
    return tuple(minimal)


def _required(seq: list[Any], c: Any) -> set[str] | None:
    """Literal words one of which occurs in every match of the parsed sequence ``seq`` (the most telling such set:
    its shortest word longest, then the fewest words), or None. A match of ``seq`` holds a match of every tail of it,
    and of every group or alternation it holds outside a repeat."""
    found = []
    for i, (op, av) in enumerate(seq):
        got = _heads(seq[i:], c)
        if got:
            found.append(got)
        if op == c.SUBPATTERN:
            got = _required(list(av[-1].data), c)
            if got:
                found.append(got)
        elif op == c.BRANCH:
            alternatives = [_required(list(alt.data), c) for alt in av[1]]
            if all(alternatives):
                found.append(set().union(*alternatives))  # type: ignore[arg-type]
    return max(found, key=lambda words: (min(map(len, words)), -len(words))) if found else None


def _heads(seq: list[Any], c: Any) -> set[str] | None:
    """The literal words one of which starts every match of the parsed sequence ``seq``, or None."""
    for i, (op, av) in enumerate(seq):
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue  # zero-width
        if op == c.LITERAL:
            word, j = "", i
            while j < len(seq) and seq[j][0] == c.LITERAL and 0x20 <= seq[j][1] < 0x7F:
                word += chr(seq[j][1]).lower()
                j += 1
            if not word:
                return None
            if j < len(seq) and seq[j][0] != c.LITERAL:  # "m(?:edium|oderate)": the words that follow extend it
                rest = _heads(seq[j:], c)
                if rest is not None and len(rest) <= 64:
                    return {word + r for r in rest}
            return {word}
        if op == c.SUBPATTERN:
            return _heads(list(av[-1].data), c)
        if op == c.ATOMIC_GROUP:
            return _heads(list(av.data), c)
        if op == c.BRANCH:
            out: set[str] = set()
            for alt in av[1]:
                got = _heads(list(alt.data), c)
                if got is None:
                    return None
                out |= got
            return out
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            low, _high, item = av
            got = _heads(list(item.data), c)
            if low >= 1 or got is None:
                return got
            rest = _heads(seq[i + 1:], c)
            return None if rest is None else got | rest
        return None
    return None  # the sequence may match the empty string
