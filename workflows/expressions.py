"""Workflow templates: the shared template language (:mod:`memrelay.engine.domain.templates`) applied to
step fields, and its translation to n8n (JavaScript) expressions.

``{{ trigger.payload.email }}`` reads the run context. A string that is exactly one ``{{ }}`` keeps the
value's type; anything else renders to text (``None`` → ``""``, lists and dicts as JSON).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

from memrelay.engine.domain.templates import DEFAULT, Expression, TemplateError, dotted_path

ExpressionError = TemplateError
"""Kept as the workflow name of :class:`~memrelay.engine.domain.templates.TemplateError`."""


def parse(expr: str) -> ast.expr:
    """The syntax tree of one bare expression; :class:`TemplateError` if it is outside the language."""
    return DEFAULT.expression(expr.strip()).tree


def evaluate(expr: str, context: dict[str, Any]) -> Any:
    """The value of one bare expression in the run context."""
    return DEFAULT.evaluate(expr.strip(), context)


def render(value: Any, context: dict[str, Any]) -> Any:
    """Fill ``{{ }}`` in strings (recursively in dicts/lists). A string that is one expression keeps its type."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    return DEFAULT.template(value).render(context, keep_type=True)


def check(value: Any) -> None:
    """Raise :class:`TemplateError` for any template in ``value`` that does not parse."""
    if isinstance(value, dict):
        for v in value.values():
            check(v)
    elif isinstance(value, list):
        for v in value:
            check(v)
    elif isinstance(value, str):
        DEFAULT.template(value)


# --- JavaScript (n8n) translation -----------------------------------------------------------------
Resolver = Callable[[str, list[str]], str | None]
_JS_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.Is: "==", ast.IsNot: "!="}
_JS_FUNCTIONS = {"len": "(({}) ?? []).length", "str": "String(({}) ?? '')",
                 "lower": "String(({}) ?? '').toLowerCase()", "upper": "String(({}) ?? '').toUpperCase()"}


def js_string(text: str) -> str:
    """A JS string literal that never contains ``{{`` or ``}}`` (n8n's expression delimiters)."""
    return json.dumps(text).replace("{", "\\u007b").replace("}", "\\u007d")


def to_js(expr: str, resolve: Resolver) -> str:
    """Translate one expression. ``resolve(name, path)`` may map a dotted prefix to a JS expression."""
    return _js(parse(expr), resolve)


def _attribute_path(node: ast.expr) -> list[str] | None:
    path = dotted_path(node)
    probe = node
    while isinstance(probe, ast.Attribute):  # only attribute chains resolve; subscripts stay lookups
        probe = probe.value
    return path if isinstance(probe, ast.Name) else None


def _js(node: ast.expr, resolve: Resolver) -> str:  # noqa: PLR0911 - one branch per node type
    path = _attribute_path(node)
    if path is not None:
        for cut in range(len(path), 0, -1):
            base = resolve(path[0], path[1:cut])
            if base is not None:
                return base + "".join(f"?.[{js_string(p)}]" for p in path[cut:])
        raise TemplateError(f"unknown name {path[0]!r}", ast.unparse(node), 0)
    if isinstance(node, ast.Constant):
        if node.value is None:
            return "null"
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        return js_string(node.value) if isinstance(node.value, str) else repr(node.value)
    if isinstance(node, ast.Attribute):
        return f"{_js(node.value, resolve)}?.[{js_string(node.attr)}]"
    if isinstance(node, ast.Subscript):
        return f"{_js(node.value, resolve)}?.[{_js(node.slice, resolve)}]"
    if isinstance(node, ast.List | ast.Tuple):
        return "[" + ", ".join(_js(e, resolve) for e in node.elts) + "]"
    if isinstance(node, ast.Dict):
        return "({ " + ", ".join(f"[{_js(k, resolve)}]: {_js(v, resolve)}" for k, v in
                                 zip(node.keys, node.values, strict=True) if k is not None) + " })"
    if isinstance(node, ast.BoolOp):
        op = " && " if isinstance(node.op, ast.And) else " || "
        return "(" + op.join(_js(v, resolve) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        return ("!" if isinstance(node.op, ast.Not) else "-") + f"({_js(node.operand, resolve)})"
    if isinstance(node, ast.BinOp):
        return f"({_js(node.left, resolve)} + {_js(node.right, resolve)})"
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        if name not in _JS_FUNCTIONS:
            raise TemplateError(f"{name} has no n8n translation", ast.unparse(node), 0)
        return _JS_FUNCTIONS[name].format(_js(node.args[0], resolve))
    if isinstance(node, ast.Compare):
        parts, left = [], _js(node.left, resolve)
        for cmp, comp in zip(node.ops, node.comparators, strict=True):
            right = _js(comp, resolve)
            if isinstance(cmp, ast.In | ast.NotIn):
                test = f"(({right}) ?? []).includes({left})"
                parts.append(test if isinstance(cmp, ast.In) else f"!{test}")
            else:
                parts.append(f"({left} {_JS_CMP[type(cmp)]} {right})")
            left = right
        return "(" + " && ".join(parts) + ")"
    raise TemplateError(f"{type(node).__name__} has no n8n translation", ast.unparse(node), 0)


_JS_TEXT = "((v) => v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v))"


def _expr_js(expr: Expression, resolve: Resolver) -> str:
    return _js(expr.tree, resolve)


def template_to_js(value: str, resolve: Resolver) -> str:
    """A template string as one JS expression (a single ``{{ }}`` keeps its type; otherwise a string)."""
    template = DEFAULT.template(value)
    if (only := template.single) is not None:
        return _expr_js(only, resolve)
    pieces = [js_string(p) if isinstance(p, str) else f"{_JS_TEXT}({_expr_js(p, resolve)})" for p in template.parts]
    return " + ".join(pieces) if pieces else js_string("")


def value_to_js(value: Any, resolve: Resolver) -> str:
    """A JSON-like value with templates as a JS expression (objects spaced so ``}}`` never appears)."""
    if isinstance(value, dict):
        inner = ", ".join(f"{js_string(str(k))}: {value_to_js(v, resolve)}" for k, v in value.items())
        return "{ " + inner + " }"
    if isinstance(value, list):
        return "[ " + ", ".join(value_to_js(v, resolve) for v in value) + " ]"
    if isinstance(value, str):
        return template_to_js(value, resolve)
    return json.dumps(value)
