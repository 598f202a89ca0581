"""The one template language of memrelay: text with ``{{ expression }}`` parts.

Mappings (memory and tag templates), workflow definitions and agent specs all use it; the workflow
renderer translates the same syntax tree to n8n (JavaScript) expressions.

An expression is a small, safe subset of Python syntax:

- names and lookups ``trigger.payload.email``, ``row["first name"]``, ``items[0]`` (missing → ``None``);
- literals: strings, numbers, ``True``/``False``/``None``, lists and dicts;
- comparisons (``==``, ``<``, ``in``, ``is None`` …), ``and`` / ``or`` / ``not``, ``+``, unary ``-``;
- calls of the language's functions, ``lower(name)``, or the same as a filter: ``name | lower``,
  ``tags | join("; ")`` (the piped value is the first argument).

Nothing else parses, so a template can never run code. Outside ``{{ }}`` everything is literal text; a
literal ``{{`` is written ``{{ "{{" }}``. Problems raise :class:`TemplateError`, naming the position.

The built-in functions are ``len``, ``str``, ``lower`` and ``upper``; a :class:`Language` adds its own
(mappings add their transforms as filters).
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from memrelay.engine.core.errors import ValidationFailed

OPEN, CLOSE = "{{", "}}"
LITERAL_OPEN = '{{ "{{" }}'
"""How a literal ``{{`` is written inside a template."""


class TemplateError(ValidationFailed, ValueError):
    """A template or expression that does not parse or uses something outside the language.

    ``details`` carry ``position`` (0-based offset in the template), ``line`` and ``column`` (1-based).
    It is a ``ValueError`` too, so pydantic validators report it as a validation problem.
    """

    code = "template_invalid"

    def __init__(self, reason: str, source: str, position: int):
        position = max(0, min(position, len(source)))
        line = source.count("\n", 0, position) + 1
        column = position - (source.rfind("\n", 0, position) + 1) + 1
        where = f"column {column}" if line == 1 else f"line {line}, column {column}"
        super().__init__(f"{reason} at {where} of template {_excerpt(source)}",
                         details={"position": position, "line": line, "column": column, "reason": reason})
        self.reason, self.position, self.line, self.column = reason, position, line, column


def _excerpt(source: str, limit: int = 120) -> str:
    return repr(source if len(source) <= limit else source[: limit - 1] + "…")


# --- functions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    """A function templates may call; ``arity`` is the accepted argument counts (the piped value included)."""

    call: Callable[..., Any]
    arity: tuple[int, int] = (1, 1)


BUILTINS: dict[str, Function] = {
    "len": Function(lambda v: len(v) if v is not None else 0),
    "str": Function(lambda v: "" if v is None else str(v)),
    "lower": Function(lambda v: "" if v is None else str(v).lower()),
    "upper": Function(lambda v: "" if v is None else str(v).upper()),
}

COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: b is not None and a in b, ast.NotIn: lambda a, b: b is None or a not in b,
}
_ALLOWED = (ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.Compare, ast.BoolOp, ast.And,
            ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Call, ast.BinOp, ast.Add, ast.List, ast.Tuple, ast.Dict,
            *COMPARE)


# --- parsed forms ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expression:
    """One parsed expression; ``offset`` is where its text starts in the enclosing template."""

    source: str
    tree: ast.expr = field(repr=False, compare=False)
    offset: int = 0

    def names(self) -> set[str]:
        """The free names the expression reads (function names excluded)."""
        called = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}
        return {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and id(n) not in called}

    def paths(self) -> list[str]:
        """Dotted lookups the expression reads, outermost first (``a.b[0]`` → ``a.b.0``)."""
        found: list[str] = []

        def visit(node: ast.AST) -> None:
            path = dotted_path(node)
            if path is not None:
                found.append(".".join(path))
                return
            if isinstance(node, ast.Call):
                for arg in node.args:
                    visit(arg)
                return
            for child in ast.iter_child_nodes(node):
                visit(child)

        visit(self.tree)
        return found


def dotted_path(node: ast.AST) -> list[str] | None:
    """``a.b["c"][0]`` → ``["a", "b", "c", "0"]``; ``None`` if ``node`` is not a plain lookup chain."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str | int) and not isinstance(node.slice.value, bool):
            parts.append(str(node.slice.value))
            node = node.value
        elif isinstance(node, ast.Name):
            return [node.id, *reversed(parts)]
        else:
            return None


Part = str | Expression


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and expressions, in order."""

    source: str
    parts: tuple[Part, ...]
    language: Language = field(repr=False, compare=False)

    @property
    def expressions(self) -> list[Expression]:
        return [p for p in self.parts if isinstance(p, Expression)]

    @property
    def single(self) -> Expression | None:
        """The expression when the template is exactly one ``{{ }}`` (surrounding whitespace ignored)."""
        inner = [p for p in self.parts if not (isinstance(p, str) and not p.strip())]
        return inner[0] if len(inner) == 1 and isinstance(inner[0], Expression) else None

    def names(self) -> set[str]:
        return set().union(*(e.names() for e in self.expressions))

    def paths(self) -> list[str]:
        return [p for e in self.expressions for p in e.paths()]

    def render(self, scope: Mapping[str, Any], *, keep_type: bool = False, required: bool = False,
               text: Callable[[Any], str] | None = None) -> Any:
        """Fill the template from ``scope``.

        ``keep_type``: a template that is one expression returns its value unchanged.
        ``required``: return ``None`` unless every expression has a non-empty value (mapping memories).
        ``text`` turns values into text (default :func:`to_text`).
        """
        if keep_type and (only := self.single) is not None:
            return self.language.evaluate(only, scope)
        as_text = text or to_text
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = self.language.evaluate(part, scope)
            if required and is_empty(value):
                return None
            piece = as_text(value)
            if required and not piece:
                return None
            out.append(piece)
        return "".join(out)


def is_empty(value: Any) -> bool:
    """``None``, ``""``, ``[]`` and ``{}`` count as no value."""
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def to_text(value: Any) -> str:
    """Default text of a value: ``None`` → ``""``, lists and dicts as JSON, anything else ``str()``."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


# --- the language ---------------------------------------------------------------------------------
class Language:
    """The template language with a set of callable functions; parsing is cached per source text."""

    def __init__(self, functions: Mapping[str, Function] | None = None, *, cache_size: int = 4096):
        self.functions: dict[str, Function] = dict(BUILTINS if functions is None else functions)
        self._templates: dict[str, Template] = {}
        self._expressions: dict[str, Expression] = {}
        self._cache_size = cache_size

    def extend(self, functions: Mapping[str, Function]) -> Language:
        """A new language with more functions."""
        return Language({**self.functions, **functions}, cache_size=self._cache_size)

    # parsing
    def template(self, source: str) -> Template:
        """Parse a template; :class:`TemplateError` naming the position of the first problem."""
        cached = self._templates.get(source)
        if cached is None:
            cached = Template(source, tuple(self._parts(source)), self)
            self._remember(self._templates, source, cached)
        return cached

    def expression(self, source: str) -> Expression:
        """Parse one bare expression (no braces), e.g. a workflow condition."""
        cached = self._expressions.get(source)
        if cached is None:
            cached = self._expression(source, source, 0)
            self._remember(self._expressions, source, cached)
        return cached

    def check(self, source: str) -> None:
        self.template(source)

    def _remember(self, cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= self._cache_size:
            cache.clear()
        cache[key] = value

    def _parts(self, source: str) -> Iterator[Part]:
        pos = 0
        while (start := source.find(OPEN, pos)) >= 0:
            if start > pos:
                yield source[pos:start]
            end = _expression_end(source, start + len(OPEN))
            if end is None:
                raise TemplateError("'{{' is not closed by '}}'", source, start)
            yield self._expression(source[start + len(OPEN):end], source, start + len(OPEN))
            pos = end + len(CLOSE)
        if pos < len(source):
            yield source[pos:]

    def _expression(self, text: str, template: str, offset: int) -> Expression:
        stripped = text.strip()
        lead = offset + len(text) - len(text.lstrip())
        if not stripped:
            raise TemplateError("empty expression", template, offset)
        try:
            tree = ast.parse(stripped, mode="eval").body
        except SyntaxError as exc:
            raise TemplateError(f"invalid expression: {exc.msg}", template,
                                lead + _index(stripped, exc.lineno, exc.offset)) from None
        tree = _Filters().visit(tree)
        for node in ast.walk(tree):
            problem = self._problem(node)
            if problem:
                where = _index(stripped, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1)
                raise TemplateError(problem, template, lead + where)
        return Expression(stripped, tree, lead)

    def _problem(self, node: ast.AST) -> str | None:
        if not isinstance(node, _ALLOWED):
            return f"{type(node).__name__} is not allowed"
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in self.functions or node.keywords:
                return f"only these functions may be called: {', '.join(sorted(self.functions))}"
            low, high = self.functions[name].arity
            if not low <= len(node.args) <= high:
                return f"{name} takes {low if low == high else f'{low} to {high}'} argument(s)"
            if any(isinstance(a, ast.Starred) for a in node.args):
                return "'*' arguments are not allowed"
        if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add):
            return "only '+' is allowed as an operator (and '|' for filters)"
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return "attribute names starting with '_' are not allowed"
        return None

    # evaluation
    def evaluate(self, expression: Expression | str, scope: Mapping[str, Any]) -> Any:
        """The value of an expression in ``scope`` (names missing from ``scope`` are ``None``)."""
        expr = self.expression(expression) if isinstance(expression, str) else expression
        return self._eval(expr.tree, scope)

    def _eval(self, node: ast.expr, scope: Mapping[str, Any]) -> Any:  # noqa: PLR0911 - one branch per node
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return scope.get(node.id)
        if isinstance(node, ast.Attribute):
            return _get(self._eval(node.value, scope), node.attr)
        if isinstance(node, ast.Subscript):
            return _get(self._eval(node.value, scope), self._eval(node.slice, scope))
        if isinstance(node, ast.List | ast.Tuple):
            return [self._eval(e, scope) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self._eval(k, scope) if k is not None else None: self._eval(v, scope)
                    for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, scope) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, scope)
            if isinstance(node.op, ast.Not):
                return not value
            return -value if isinstance(value, int | float) else None
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, scope), self._eval(node.right, scope)
            if isinstance(left, str) or isinstance(right, str):
                return to_text_plain(left) + to_text_plain(right)
            try:
                return left + right
            except TypeError:
                return None
        if isinstance(node, ast.Call):
            func = self.functions[node.func.id]  # type: ignore[attr-defined]
            return func.call(*(self._eval(a, scope) for a in node.args))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, scope)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, scope)
                try:
                    if not COMPARE[type(op)](left, right):
                        return False
                except TypeError:
                    return False
                left = right
            return True
        raise TemplateError(f"{type(node).__name__} is not allowed", "", 0)


def to_text_plain(value: Any) -> str:
    return "" if value is None else str(value)


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        try:
            return obj.get(key)
        except TypeError:  # unhashable key
            return None
    if isinstance(obj, list | tuple) and isinstance(key, int) and not isinstance(key, bool) \
            and -len(obj) <= key < len(obj):
        return obj[key]
    return None


class _Filters(ast.NodeTransformer):
    """``value | f`` → ``f(value)`` and ``value | f(a)`` → ``f(value, a)``."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.BitOr):
            return node
        target = node.right
        if isinstance(target, ast.Name):
            call = ast.Call(func=target, args=[node.left], keywords=[])
        elif isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
            call = ast.Call(func=target.func, args=[node.left, *target.args], keywords=target.keywords)
        else:
            return node  # reported as a disallowed operator
        return ast.copy_location(call, target)


def _expression_end(source: str, pos: int) -> int | None:
    """Index of the ``}}`` closing an expression that starts at ``pos`` (strings and brackets skipped)."""
    depth, quote, i = 0, "", pos
    while i < len(source):
        ch = source[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif depth == 0 and source.startswith(CLOSE, i):
            return i
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return None


def _index(text: str, lineno: int | None, col: int | None) -> int:
    """0-based index in ``text`` of a 1-based (line, column) pair from the parser."""
    lines = text.split("\n")
    line = max(1, min(lineno or 1, len(lines)))
    base = sum(len(x) + 1 for x in lines[: line - 1])
    return min(len(text), base + max(0, (col or 1) - 1))


def literal(text: str) -> str:
    """Template source for literal ``text`` (every ``{{`` escaped)."""
    return text.replace(OPEN, LITERAL_OPEN)


DEFAULT = Language()
"""The language with the built-in functions only (workflows, agents)."""


def parse(source: str) -> Template:
    """:meth:`Language.template` of the default language."""
    return DEFAULT.template(source)


def render(source: str, scope: Mapping[str, Any], **options: Any) -> Any:
    """Parse (cached) and render ``source`` with the default language (see :meth:`Template.render`)."""
    return DEFAULT.template(source).render(scope, **options)
