"""Zapier-style request bodies: JSON or form-encoded, ``__``-flattened keys, comma-joined lists.

Reused by the webhook connectors and by the REST API's Zapier actions:

- :func:`parse_body` decodes JSON or ``application/x-www-form-urlencoded`` into Python values.
- :func:`unflatten` turns ``{"contact__email": "a"}`` into ``{"contact": {"email": "a"}}``; numeric
  segments become list positions (``items__0__sku``).
- :func:`as_list` accepts a list, a JSON array string or a comma-joined string where a list is expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from memrelay.engine.core.errors import BadRequest
from memrelay.engine.core.safejson import loads_bounded

SEPARATOR = "__"
MAX_FIELDS = 1000


def as_list(value: Any, sep: str = ",") -> list[Any]:
    """``None`` -> ``[]``; list/tuple -> list; ``"a, b"`` -> ``["a", "b"]``; ``'["a"]'`` -> ``["a"]``."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in text.split(sep) if part.strip()]
    return [value]


def _segments(key: str, sep: str) -> list[str] | None:
    """Split a flattened key, or ``None`` if it should stay literal (no separator, empty segment)."""
    if sep not in key:
        return None
    parts = key.split(sep)
    return parts if all(parts) else None


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all numeric segments into lists ordered by index (gaps closed)."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(isinstance(key, int) for key in converted):
        return [converted[key] for key in sorted(converted)]
    return {str(key): value for key, value in converted.items()}


def unflatten(flat: Mapping[str, Any], sep: str = SEPARATOR) -> dict[str, Any]:
    """Expand ``sep``-joined keys into nested dicts/lists; raise ``BadRequest`` on conflicting keys."""
    root: dict[Any, Any] = {}
    for key, value in flat.items():
        parts = _segments(key, sep)
        if parts is None:
            if key in root and isinstance(root[key], dict):
                raise BadRequest(
                    f"field {key!r} is both a value and a group of fields", details={"field": key}
                )
            root[key] = value
            continue
        node = root
        for depth, part in enumerate(parts):
            segment: Any = int(part) if depth > 0 and part.isascii() and part.isdigit() else part
            last = depth == len(parts) - 1
            if last:
                if isinstance(node.get(segment), dict):
                    raise BadRequest(
                        f"field {key!r} is both a value and a group of fields", details={"field": key}
                    )
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    raise BadRequest(
                        f"field {key!r} is both a value and a group of fields", details={"field": key}
                    )
                node = child
    return _listify(root)


def _parse_form(text: str) -> dict[str, Any]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise BadRequest(f"too many form fields (max {MAX_FIELDS})") from exc
    fields: dict[str, Any] = {}
    for key, value in pairs:
        if key in fields:  # repeated keys become a list
            existing = fields[key]
            fields[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            fields[key] = value
    return fields


def parse_body(raw_body: bytes, content_type: str) -> Any:
    """Decode a JSON or form-encoded body (sniffed when the content type says neither).

    Form bodies come back as a dict of strings (repeated keys as lists). Nothing is unflattened here.
    """
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not valid UTF-8") from exc
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type.startswith("multipart/"):
        raise BadRequest("multipart bodies are not supported; send JSON or form-encoded data")
    is_json = media_type == "application/json" or media_type.endswith("+json")
    is_form = media_type == "application/x-www-form-urlencoded"
    if not is_json and not is_form:
        is_json = text.lstrip()[:1] in ("{", "[")
    if not is_json:
        return _parse_form(text)
    return loads_bounded(text)


def parse_fields(raw_body: bytes, content_type: str) -> dict[str, Any]:
    """A single JSON object or form body, with top-level ``__`` keys unflattened."""
    body = parse_body(raw_body, content_type)
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object or form-encoded fields")
    return unflatten(body)
