"""A tiny, safe expression language for workflow templates — a subset of Python syntax.

``{{ trigger.payload.email }}`` reads the run context; expressions allow names, ``a.b`` / ``a["b"]`` /
``a[0]`` lookups (missing → None), literals, comparisons (incl. ``in``, ``is None``), ``and``/``or``/``not``,
``+`` and the functions ``len``, ``str``, ``lower``, ``upper``. Nothing else parses, so a definition can
never run code. The same syntax tree is translated to an n8n (JavaScript) expression by :func:`to_js`.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from typing import Any

TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "len": lambda v: len(v) if v is not None else 0,
    "str": lambda v: "" if v is None else str(v),
    "lower": lambda v: "" if v is None else str(v).lower(),
    "upper": lambda v: "" if v is None else str(v).upper(),
}
COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: b is not None and a in b, ast.NotIn: lambda a, b: b is None or a not in b,
}


class ExpressionError(ValueError):
    """An expression that does not parse or uses something outside the language."""


def parse(expr: str) -> ast.expr:
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"invalid expression {expr.strip()!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{type(node).__name__} is not allowed in {expr.strip()!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
                                               and len(node.args) == 1 and not node.keywords):
            raise ExpressionError(f"only {', '.join(FUNCTIONS)} with one argument may be called")
        if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add):
            raise ExpressionError("only '+' is allowed as an operator")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError("names starting with '_' are not allowed")
    return tree


_ALLOWED = (ast.Expression, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.Compare,
            ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Call, ast.BinOp, ast.Add,
            ast.List, ast.Tuple, *COMPARE)


def evaluate(expr: str, context: dict[str, Any]) -> Any:
    return _eval(parse(expr), context)


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, list | tuple) and isinstance(key, int) and -len(obj) <= key < len(obj):
        return obj[key]
    return None


def _eval(node: ast.expr, ctx: dict[str, Any]) -> Any:  # noqa: PLR0911 - one branch per node type
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return ctx.get(node.id)
    if isinstance(node, ast.Attribute):
        return _get(_eval(node.value, ctx), node.attr)
    if isinstance(node, ast.Subscript):
        return _get(_eval(node.value, ctx), _eval(node.slice, ctx))
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, ctx) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, ctx) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ctx)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, ctx), _eval(node.right, ctx)
        if isinstance(left, str) or isinstance(right, str):
            return FUNCTIONS["str"](left) + FUNCTIONS["str"](right)
        return left + right
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](_eval(node.args[0], ctx))  # type: ignore[attr-defined]
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, ctx)
            try:
                if not COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    raise ExpressionError(f"unsupported expression node {type(node).__name__}")


# --- templates ------------------------------------------------------------------------------------
def render(value: Any, context: dict[str, Any]) -> Any:
    """Fill ``{{ }}`` in strings (recursively in dicts/lists). A string that is one expression keeps its type."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = TEMPLATE.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), context)
    return TEMPLATE.sub(lambda m: _text(evaluate(m.group(1), context)), value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def check(value: Any) -> None:
    """Raise ExpressionError for any template in ``value`` that does not parse."""
    if isinstance(value, dict):
        for v in value.values():
            check(v)
    elif isinstance(value, list):
        for v in value:
            check(v)
    elif isinstance(value, str):
        for m in TEMPLATE.finditer(value):
            parse(m.group(1))


# --- JavaScript (n8n) translation -----------------------------------------------------------------
Resolver = Callable[[str, list[str]], str | None]
_JS_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.Is: "==", ast.IsNot: "!="}


def js_string(text: str) -> str:
    """A JS string literal that never contains ``{{`` or ``}}`` (n8n's expression delimiters)."""
    return json.dumps(text).replace("{", "\\u007b").replace("}", "\\u007d")


def to_js(expr: str, resolve: Resolver) -> str:
    """Translate one expression. ``resolve(name, path)`` may map a dotted prefix to a JS expression."""
    return _js(parse(expr), resolve)


def _path(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _js(node: ast.expr, resolve: Resolver) -> str:  # noqa: PLR0911 - one branch per node type
    path = _path(node)
    if path is not None:
        for cut in range(len(path), 0, -1):
            base = resolve(path[0], path[1:cut])
            if base is not None:
                return base + "".join(f"?.[{js_string(p)}]" for p in path[cut:])
        raise ExpressionError(f"unknown name {path[0]!r}")
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
    if isinstance(node, ast.BoolOp):
        op = " && " if isinstance(node.op, ast.And) else " || "
        return "(" + op.join(_js(v, resolve) for v in node.values) + ")"
    if isinstance(node, ast.UnaryOp):
        return ("!" if isinstance(node.op, ast.Not) else "-") + f"({_js(node.operand, resolve)})"
    if isinstance(node, ast.BinOp):
        return f"({_js(node.left, resolve)} + {_js(node.right, resolve)})"
    if isinstance(node, ast.Call):
        arg = _js(node.args[0], resolve)
        return {"len": f"(({arg}) ?? []).length", "str": f"String(({arg}) ?? '')",
                "lower": f"String(({arg}) ?? '').toLowerCase()",
                "upper": f"String(({arg}) ?? '').toUpperCase()"}[node.func.id]  # type: ignore[attr-defined]
    if isinstance(node, ast.Compare):
        parts, left = [], _js(node.left, resolve)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _js(comp, resolve)
            if isinstance(op, ast.In | ast.NotIn):
                test = f"(({right}) ?? []).includes({left})"
                parts.append(test if isinstance(op, ast.In) else f"!{test}")
            else:
                parts.append(f"({left} {_JS_CMP[type(op)]} {right})")
            left = right
        return "(" + " && ".join(parts) + ")"
    raise ExpressionError(f"unsupported expression node {type(node).__name__}")


_JS_TEXT = "((v) => v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v))"


def template_to_js(value: str, resolve: Resolver) -> str:
    """A template string as one JS expression (a single ``{{ }}`` keeps its type; otherwise a string)."""
    whole = TEMPLATE.fullmatch(value.strip())
    if whole:
        return to_js(whole.group(1), resolve)
    pieces: list[str] = []
    pos = 0
    for m in TEMPLATE.finditer(value):
        if m.start() > pos:
            pieces.append(js_string(value[pos:m.start()]))
        pieces.append(f"{_JS_TEXT}({to_js(m.group(1), resolve)})")
        pos = m.end()
    if pos < len(value) or not pieces:
        pieces.append(js_string(value[pos:]))
    return " + ".join(pieces)


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
