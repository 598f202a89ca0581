"""Metadata filters of smart recall, in mem0's filter syntax (also accepted with ``$`` prefixes).

A filter is a JSON object. Each key is a field with either a value (equality; ``"*"`` = the field exists) or
``{operator: operand}`` pairs, all of which must hold::

    {"channel": "email"}
    {"priority": {"gte": 2, "lt": 5}}
    {"AND": [{"channel": {"in": ["email", "call"]}}, {"NOT": [{"stage": "lost"}]}]}
    {"OR": [{"region": "EU"}, {"notes": {"icontains": "gdpr"}}]}

Operators: ``eq ne in nin gt gte lt lte contains icontains``; logic: ``AND`` / ``OR`` (a list of filters),
``NOT`` (a filter or a list: none of them may hold). Several keys in one object are ANDed.

Fields are looked up in the memory's ``metadata`` (dotted paths reach nested objects); a name the metadata
does not have falls back to the memory's own fields ``tags``, ``topic``, ``speaker``, ``source``, ``type`` and
``timestamp`` (ISO 8601). On a list field, ``eq`` / ``in`` / ``contains`` hold when any element matches.
A missing field fails every operator except ``ne`` and ``nin`` (as in MongoDB and mem0). Comparisons
(``gt`` ...) compare numbers with numbers and strings with strings (ISO dates order correctly), never across.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memrelay.engine.core.util import iso

OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "icontains")
LOGIC = {"and": "AND", "or": "OR", "not": "NOT"}
BUILTIN_FIELDS = ("tags", "topic", "speaker", "source", "type", "timestamp")
MAX_DEPTH = 8
_MISSING = object()


class FilterError(ValueError):
    """A filter that is not valid (raised at request validation: a 422 naming the problem)."""


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    operand: Any

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.operand!r}"


Predicate = Callable[[dict[str, Any], list[str]], bool]  # (memory, matched leaves out) -> holds


def compile_filters(spec: Any) -> Predicate:
    """A predicate over a memory dict (``metadata`` plus built-in fields); raises FilterError."""
    if not isinstance(spec, dict):
        raise FilterError("'filters' must be a JSON object, e.g. {\"channel\": \"email\"}")
    return _node(spec, 0)


def _logic(key: str) -> str | None:
    k = key[1:] if key.startswith("$") else key
    return LOGIC.get(k.lower()) if k.upper() == k or key.startswith("$") else None


def _node(spec: dict[str, Any], depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise FilterError(f"filters nest deeper than {MAX_DEPTH} levels")
    parts: list[Predicate] = []
    for key, value in spec.items():
        logic = _logic(key)
        if logic in ("AND", "OR"):
            if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
                raise FilterError(f"{key} takes a non-empty list of filter objects")
            subs = [_node(v, depth + 1) for v in value]
            parts.append(_all(subs) if logic == "AND" else _any(subs))
        elif logic == "NOT":
            items = value if isinstance(value, list) else [value]
            if not items or not all(isinstance(v, dict) for v in items):
                raise FilterError(f"{key} takes a filter object or a list of them")
            parts.append(_none([_node(v, depth + 1) for v in items]))
        else:
            parts += _field(key, value)
    if not parts:
        raise FilterError("an empty filter object matches nothing in particular; leave 'filters' out instead")
    return _all(parts)


def _all(subs: list[Predicate]) -> Predicate:
    return lambda m, hits: all([p(m, hits) for p in subs])  # a list: every matched leaf is reported


def _any(subs: list[Predicate]) -> Predicate:
    return lambda m, hits: any([p(m, hits) for p in subs])


def _none(subs: list[Predicate]) -> Predicate:
    def negated(m: dict[str, Any], hits: list[str]) -> bool:
        inner: list[str] = []
        ok = not any([p(m, inner) for p in subs])
        if ok:
            hits.append("NOT(" + " | ".join(_describe(subs)) + ")")
        return ok
    negated.leaves = _describe(subs)  # type: ignore[attr-defined]
    return negated


def _describe(subs: list[Predicate]) -> list[str]:
    return [str(getattr(p, "leaf", None) or getattr(p, "leaves", "…")) for p in subs]


def _field(name: str, value: Any) -> list[Predicate]:
    if not name or not isinstance(name, str):
        raise FilterError("a filter field must be a non-empty string")
    if isinstance(value, dict) and value:
        ops = []
        for raw_op, operand in value.items():
            op = raw_op[1:] if isinstance(raw_op, str) and raw_op.startswith("$") else raw_op
            if op not in OPERATORS:
                raise FilterError(f"unknown operator {raw_op!r} on {name!r}; expected one of {', '.join(OPERATORS)}")
            if op in ("in", "nin") and not isinstance(operand, list):
                raise FilterError(f"{name!r} {op} takes a list")
            if op in ("gt", "gte", "lt", "lte") and (isinstance(operand, bool)
                                                     or not isinstance(operand, int | float | str)):
                raise FilterError(f"{name!r} {op} takes a number or a string (e.g. an ISO date)")
            if op in ("contains", "icontains") and isinstance(operand, dict | list):
                raise FilterError(f"{name!r} {op} takes a single value")
            ops.append(_leaf(Leaf(name, op, operand)))
        return ops
    if value == "*":
        return [_leaf(Leaf(name, "exists", True))]
    if isinstance(value, dict):
        raise FilterError(f"{name!r}: an empty operator object")
    return [_leaf(Leaf(name, "eq", value))]


def _leaf(leaf: Leaf) -> Predicate:
    def check(m: dict[str, Any], hits: list[str]) -> bool:
        ok = evaluate(leaf, lookup(m, leaf.field))
        if ok:
            hits.append(str(leaf))
        return ok
    check.leaf = leaf  # type: ignore[attr-defined]
    return check


def lookup(m: dict[str, Any], name: str) -> Any:
    """A field of a memory: its metadata (dotted path) first, then the built-in fields."""
    node: Any = m.get("metadata") or {}
    for part in name.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            node = _MISSING
            break
    if node is not _MISSING:
        return node
    if name in BUILTIN_FIELDS:
        if name == "timestamp":
            return iso(m.get("ts")) if m.get("ts") is not None else _MISSING
        value = m.get(name)
        return _MISSING if value is None else value
    return _MISSING


def _same_kind(a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, num) and isinstance(b, num)) or (isinstance(a, str) and isinstance(b, str))


def _equal(a: Any, b: Any) -> bool:
    return _same_kind(a, b) and a == b if not (a is None or b is None) else a is b


def evaluate(leaf: Leaf, value: Any) -> bool:
    op, x = leaf.op, leaf.operand
    if value is _MISSING:
        return op in ("ne", "nin")
    if op == "exists":
        return True
    items = value if isinstance(value, list) else [value]
    if op == "eq":
        return any(_equal(v, x) for v in items) or (isinstance(x, list) and value == x)
    if op == "ne":
        return not (any(_equal(v, x) for v in items) or (isinstance(x, list) and value == x))
    if op == "in":
        return any(_equal(v, o) for v in items for o in x)
    if op == "nin":
        return not any(_equal(v, o) for v in items for o in x)
    if op in ("contains", "icontains"):
        fold = op == "icontains"
        if isinstance(value, list):
            return any(_equal(v, x) or (fold and isinstance(v, str) and isinstance(x, str)
                                        and v.casefold() == x.casefold()) for v in value)
        if isinstance(value, str):
            needle = str(x)
            return needle.casefold() in value.casefold() if fold else needle in value
        return False
    if not _same_kind(value, x):
        return False
    if op == "gt":
        return bool(value > x)
    if op == "gte":
        return bool(value >= x)
    if op == "lt":
        return bool(value < x)
    return bool(value <= x)  # lte
