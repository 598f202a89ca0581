"""JSON from clients, bounded: nesting depth, numbers, and text that can be stored.

Every request body and webhook payload is decoded here, so bad input is refused with a 400 before it
reaches a model, the database or a recursive walk:

* nesting deeper than :data:`MAX_DEPTH` arrays/objects;
* integers outside the signed 64-bit range, and ``NaN``/``Infinity`` (not JSON);
* strings or object keys with a lone UTF-16 surrogate (``"\\ud800"``), which no database can store.
"""

from __future__ import annotations

import json
from typing import Any

from memrelay.engine.core.errors import BadRequest

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number", details={"limit": "finite numbers only"})


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        raise BadRequest("a number in the body is outside the 64-bit integer range",
                         details={"limit": "integers between -2^63 and 2^63-1"})
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_tree(data: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise BadRequest if ``data`` nests deeper than ``max_depth`` or holds a lone surrogate (iterative walk)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _has_surrogate(node):
                raise BadRequest("a string in the body holds an unpaired UTF-16 surrogate",
                                 details={"limit": "valid Unicode text only"})
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                raise BadRequest(f"the body nests deeper than {max_depth} levels", details={"maxDepth": max_depth})
            if isinstance(node, dict):
                stack.extend((k, depth + 1) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)


def loads_bounded(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode client JSON within the limits above; BadRequest (400) naming the problem otherwise."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except UnicodeDecodeError:
        raise BadRequest("body is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest(f"the body nests deeper than {max_depth} levels", details={"maxDepth": max_depth}) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    check_tree(data, max_depth=max_depth)
    return data
