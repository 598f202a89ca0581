"""Field paths, the value transforms used by mapping files, and the mapping template language.

Mapping templates are the shared template language (:mod:`memrelay.engine.domain.templates`) with every
transform available as a filter: ``{{ email | domain_from_email }}``, ``{{ tags | join("; ") }}``,
``{{ stage | map_values({"closedwon": "won"}) }}``, ``{{ amount | minor_to_major(currency) }}``.

Every function here is pure. Transforms never raise on bad data: they return ``None`` and append a
warning, so one odd CRM value cannot fail a whole record.
"""

from __future__ import annotations

import json
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from memrelay.connectors.formdata import as_list
from memrelay.connectors.money import amount_major
from memrelay.connectors.timeutil import parse_datetime
from memrelay.engine.domain.templates import DEFAULT, Function, Language


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Returned by :func:`get_path` when a field is absent (distinct from a present ``None``)."""

FREE_EMAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com yahoo.com yahoo.co.uk ymail.com hotmail.com hotmail.co.uk outlook.com
    live.com msn.com icloud.com me.com mac.com aol.com proton.me protonmail.com pm.me gmx.com gmx.de
    gmx.net web.de mail.com yandex.com yandex.ru zoho.com qq.com 163.com 126.com hey.com fastmail.com
    mail.ru t-online.de orange.fr free.fr laposte.net libero.it naver.com""".split()
)

# -- field paths ------------------------------------------------------------------------------------


def get_path(data: Any, path: str) -> Any:
    """Resolve ``a.b.0.c`` in nested dicts/lists; a literal key containing dots wins. ``MISSING`` if absent."""
    if isinstance(data, Mapping) and path in data:
        return data[path]
    head, sep, rest = path.partition(".")
    if isinstance(data, Mapping):
        child = data[head] if head in data else MISSING
    elif isinstance(data, list | tuple) and head.isascii() and head.isdigit() and int(head) < len(data):
        child = data[int(head)]
    else:
        child = MISSING
    if child is MISSING or not sep:
        return child
    return get_path(child, rest)


def is_empty(value: Any) -> bool:
    return value is MISSING or value is None or value == "" or value == [] or value == {}


# -- templates --------------------------------------------------------------------------------------

PROPS = "_props"
"""``{{ _props.name }}`` in memory and tag templates is the *mapped* property ``name`` (normalised value)."""
RECORD = "_record"
"""``{{ _record["odd-name"] }}`` reads a source field whose name is not an identifier."""


def to_text(value: Any) -> str:
    """How values read inside memory text: ``250000.0 -> "250000"``, lists joined with ``", "``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(to_text(v) for v in value if not is_empty(v))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value).strip()


# -- transforms -------------------------------------------------------------------------------------


@dataclass
class TransformContext:
    """What a transform may look at besides its input value."""

    record: Mapping[str, Any]
    warnings: list[str] = field(default_factory=list)

    def lookup(self, path: str) -> Any:
        value = get_path(self.record, path)
        return None if value is MISSING else value


def _each(func: Callable[[Any, Any, TransformContext], Any]) -> Callable[[Any, Any, TransformContext], Any]:
    """Apply an element transform to every item of a list value."""

    def apply(value: Any, arg: Any, ctx: TransformContext) -> Any:
        if isinstance(value, list):
            return [func(item, arg, ctx) for item in value]
        return func(value, arg, ctx)

    return apply


@_each
def t_lower(value: Any, arg: Any, ctx: TransformContext) -> Any:
    return value.lower() if isinstance(value, str) else value


@_each
def t_strip(value: Any, arg: Any, ctx: TransformContext) -> Any:
    return value.strip() if isinstance(value, str) else value


@_each
def t_domain_from_email(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if not isinstance(value, str) or value.count("@") != 1:
        return None
    domain = value.strip().rsplit("@", 1)[1].strip().lower().rstrip(".")
    if "." not in domain or " " in domain:
        return None
    allow_free = bool(arg.get("allow_free")) if isinstance(arg, dict) else False
    return domain if allow_free or domain not in FREE_EMAIL_DOMAINS else None


@_each
def t_domain_from_url(value: Any, arg: Any, ctx: TransformContext) -> Any:
    """``https://www.Acme.com/x -> acme.com``; an email address yields its non-free-mail domain."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if "@" in text and "://" not in text:  # an email address: its company domain
        return t_domain_from_email(text, None, ctx)
    try:
        host = urlsplit(text if "://" in text else f"http://{text}").hostname
    except ValueError:
        host = None
    if not host or "." not in host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def t_minor_to_major(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if value is None:
        return None
    if isinstance(arg, dict) and "currency" in arg:
        currency = arg["currency"]
    else:
        currency = ctx.lookup(arg["currency_field"] if isinstance(arg, dict) else arg)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.warnings.append(f"minor_to_major: {value!r} is not an integer amount")
        return None
    if not isinstance(currency, str) or not currency.strip():
        ctx.warnings.append("minor_to_major: no currency for the amount")
        return None
    return amount_major(value, currency)


@_each
def t_parse_date(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        ctx.warnings.append(f"parse_date: cannot parse {value!r}")
        return None
    return parsed.date().isoformat() if arg == "date" else parsed.isoformat()


def t_join(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if isinstance(value, list | tuple):
        return (arg if arg is not None else ", ").join(to_text(v) for v in value if not is_empty(v))
    return value


def t_split(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if value is None:
        return None
    return [str(v).strip() if isinstance(v, str) else v for v in as_list(value, arg or ",")]


@_each
def t_number(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        if not text:
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
    ctx.warnings.append(f"number: cannot parse {value!r}")
    return None


MAP_VALUES_OTHERWISE = "*"
"""``map_values`` key whose target replaces every unmapped value (``"*": null`` drops them)."""


@_each
def t_map_values(value: Any, arg: Any, ctx: TransformContext) -> Any:
    if value is None:
        return None
    try:
        if value in arg:
            return arg[value]
    except TypeError:  # unhashable value
        return value
    text = to_text(value)  # YAML keys may have been read as numbers/booleans
    fallback = arg.get(MAP_VALUES_OTHERWISE, value)
    return next((target for key, target in arg.items() if to_text(key) == text), fallback)


def t_template(value: Any, arg: Any, ctx: TransformContext) -> Any:
    """``{{ value }}`` is the current value; other names are record fields."""
    scope = ChainMap({"value": value, RECORD: ctx.record}, dict(ctx.record))
    text = MAPPING_TEMPLATES.template(arg).render(scope, required=True, text=to_text)
    if text is None:
        return None
    return text.strip() or None


TRANSFORMS: dict[str, Callable[[Any, Any, TransformContext], Any]] = {
    "lower": t_lower,
    "strip": t_strip,
    "domain_from_email": t_domain_from_email,
    "domain_from_url": t_domain_from_url,
    "minor_to_major": t_minor_to_major,
    "parse_date": t_parse_date,
    "join": t_join,
    "split": t_split,
    "number": t_number,
    "map_values": t_map_values,
    "template": t_template,
}


# -- argument checks (run when a mapping file is loaded) -------------------------------------------


def _no_arg(name: str) -> Callable[[Any], None]:
    def check(arg: Any) -> None:
        if arg is not None:
            raise ValueError(f"{name} takes no argument")

    return check


def _optional_str(name: str) -> Callable[[Any], None]:
    def check(arg: Any) -> None:
        if arg is not None and not isinstance(arg, str):
            raise ValueError(f"{name} takes a separator string")

    return check


def _check_domain_from_email(arg: Any) -> None:
    if arg is not None and not (isinstance(arg, dict) and set(arg) <= {"allow_free"}):
        raise ValueError("domain_from_email takes no argument or {allow_free: true}")


def _check_minor_to_major(arg: Any) -> None:
    if isinstance(arg, str) and arg.strip():
        return
    if isinstance(arg, dict) and len(arg) == 1:
        key, val = next(iter(arg.items()))
        if key in ("currency_field", "currency") and isinstance(val, str) and val.strip():
            return
    raise ValueError(
        "minor_to_major needs the currency: {minor_to_major: <currency field>}, "
        "{minor_to_major: {currency_field: <field>}} or {minor_to_major: {currency: usd}}"
    )


def _check_parse_date(arg: Any) -> None:
    if arg not in (None, "date", "datetime"):
        raise ValueError("parse_date takes no argument, 'date' or 'datetime'")


def _check_map_values(arg: Any) -> None:
    if not isinstance(arg, dict) or not arg:
        raise ValueError("map_values needs a non-empty mapping {from: to}")


def _check_template(arg: Any) -> None:
    if not isinstance(arg, str) or not arg:
        raise ValueError("template needs a template string")
    if PROPS in MAPPING_TEMPLATES.template(arg).names():
        raise ValueError(f"{PROPS} (mapped properties) is only available in memories and tags")


ARG_CHECKS: dict[str, Callable[[Any], None]] = {
    "lower": _no_arg("lower"),
    "strip": _no_arg("strip"),
    "domain_from_email": _check_domain_from_email,
    "domain_from_url": _no_arg("domain_from_url"),
    "minor_to_major": _check_minor_to_major,
    "parse_date": _check_parse_date,
    "join": _optional_str("join"),
    "split": _optional_str("split"),
    "number": _no_arg("number"),
    "map_values": _check_map_values,
    "template": _check_template,
}


# -- transforms as template filters ----------------------------------------------------------------


def _filter(name: str, arity: tuple[int, int] = (1, 1),
            arg: Callable[..., Any] = lambda *args: args[0] if args else None) -> Function:
    """A transform as a template function; its warnings are dropped (a template renders or skips)."""

    def call(value: Any, *args: Any) -> Any:
        return TRANSFORMS[name](value, arg(*args), TransformContext(record={}))

    return Function(call, arity)


MAPPING_FILTERS: dict[str, Function] = {
    "lower": _filter("lower"),
    "strip": _filter("strip"),
    "domain_from_email": _filter("domain_from_email", (1, 2), lambda allow_free=False: {"allow_free": allow_free}),
    "domain_from_url": _filter("domain_from_url"),
    "minor_to_major": _filter("minor_to_major", (2, 2), lambda currency: {"currency": currency}),
    "parse_date": _filter("parse_date", (1, 2)),
    "join": _filter("join", (1, 2)),
    "split": _filter("split", (1, 2)),
    "number": _filter("number"),
    "map_values": _filter("map_values", (2, 2)),
}

MAPPING_TEMPLATES: Language = DEFAULT.extend(MAPPING_FILTERS)
"""The template language of mapping files: the built-ins plus every transform but ``template``."""


def template_fields(template: str) -> list[str]:
    """The record field paths a mapping template reads (``_props`` excluded, ``_record["x"]`` as ``x``).

    ``TemplateError`` (a ``ValueError``) if the template does not parse.
    """
    fields = []
    for path in MAPPING_TEMPLATES.template(template).paths():
        head, _, rest = path.partition(".")
        if head == PROPS:
            continue
        fields.append(rest if head == RECORD else path)
    return [f for f in fields if f]
