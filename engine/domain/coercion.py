"""Typed coercion and validation of property values against their collection definition."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

from memrelay.engine.core.errors import ValidationFailed
from memrelay.engine.core.properties_types import PropertySpec, PropertyType

ARRAY_SEP = "\x1f"
MAX_VALUE_CHARS = 65_536  # a text value, or an array's items together; larger values are refused (422)
MAX_ARRAY_ITEMS = 1_000
MAX_NUMBER = 1e21  # magnitude bound of a number property (beyond it floats lose every integer digit)
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def _fail(spec: PropertySpec, value: Any, why: str) -> ValidationFailed:
    return ValidationFailed(f"property {spec.propertyName!r} ({spec.type.value}): {why}",
                            details={"property": spec.propertyName, "type": spec.type.value, "value": repr(value)[:200]})


def coerce(spec: PropertySpec, value: Any) -> Any:
    """Return ``value`` converted to the property's type, or raise 422 naming the property."""
    if value is None:
        return None
    t = spec.type
    if t == PropertyType.TEXT:
        if isinstance(value, dict | list):
            raise _fail(spec, value, "expected text")
        return _bounded_text(spec, str(value))
    if t == PropertyType.NUMBER:
        if isinstance(value, bool):
            raise _fail(spec, value, "expected a number")
        if isinstance(value, str):
            cleaned = value.strip().replace(",", "").replace("$", "").replace("€", "").replace("£", "")
            try:
                value = float(cleaned)
            except ValueError:
                raise _fail(spec, value, "expected a number") from None
        if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
            raise _fail(spec, value, "expected a number")
        if abs(value) > MAX_NUMBER:
            raise _fail(spec, value, f"numbers are limited to ±{MAX_NUMBER:g}")
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
    if t == PropertyType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _fail(spec, value, "expected true or false")
    if t == PropertyType.DATE:
        return parse_date_value(spec, value)
    if t == PropertyType.OPTIONS:
        allowed = spec.options or []
        lookup = {option_key(o): o for o in allowed}
        if isinstance(value, str) and option_key(value) in lookup:
            return lookup[option_key(value)]
        raise ValidationFailed(f"property {spec.propertyName!r}: {value!r} is not an allowed option",
                               details={"property": spec.propertyName, "allowed": allowed})
    if t == PropertyType.ARRAY:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise _fail(spec, value, "expected an array")
        if len(value) > MAX_ARRAY_ITEMS:
            raise _fail(spec, "[...]", f"arrays are limited to {MAX_ARRAY_ITEMS} items")
        _bounded_text(spec, "".join(str(v) for v in value))
        return list(value)
    raise _fail(spec, value, "unsupported type")  # pragma: no cover - enum is exhaustive


def _bounded_text(spec: PropertySpec, text: str) -> str:
    if len(text) > MAX_VALUE_CHARS:
        raise ValidationFailed(f"property {spec.propertyName!r}: value longer than {MAX_VALUE_CHARS} characters",
                               details={"property": spec.propertyName, "length": len(text), "max": MAX_VALUE_CHARS})
    return text


def option_key(text: str) -> str:
    """'Closed Won', 'closed-won' and 'closed_won' name the same option."""
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def parse_date_value(spec: PropertySpec, value: Any) -> str:
    """Dates are stored as ISO-8601 strings (date or UTC datetime)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        secs = value / 1000 if value > 10**11 else value  # epoch ms or s
        try:
            return datetime.fromtimestamp(secs, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise _fail(spec, value, "epoch time outside the years 1-9999") from None
    if isinstance(value, str) and len(value) <= 64:
        v = value.strip()
        try:
            if len(v) == 10:
                return date.fromisoformat(v).isoformat()
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
        except ValueError:
            pass
    raise _fail(spec, value, "expected an ISO-8601 date")


def search_columns(spec: PropertySpec | None, value: Any) -> tuple[str | None, float | None]:
    """Denormalised columns used by search: case-folded text and a number (epoch seconds for dates)."""
    if value is None:
        return None, None
    t = spec.type if spec else None
    if t == PropertyType.NUMBER or (t is None and isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            return str(value)[:512], float(value)
        except (OverflowError, ValueError):
            return str(value)[:512], None
    if t == PropertyType.BOOLEAN or isinstance(value, bool):
        return ("true" if value else "false"), (1.0 if value else 0.0)
    if t == PropertyType.DATE:
        iso = str(value)
        dt = datetime.fromisoformat(iso) if "T" in iso else datetime.fromisoformat(iso + "T00:00:00+00:00")
        return iso[:512], (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, list):
        items = [str(v).casefold() for v in value]
        return (ARRAY_SEP + ARRAY_SEP.join(items) + ARRAY_SEP)[:512], None
    if isinstance(value, dict):
        return None, None
    return str(value).casefold()[:512], None
