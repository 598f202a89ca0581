"""Version-1 mapping templates (``{field}``, ``{@property}``, ``{{`` for a literal brace), translated on load.

Mapping files written before the shared template language say ``version: 1`` (or no version). Their
templates are translated to the template language when the file is loaded, so stored source mappings and
custom files keep working unchanged; ``memrelay mappings lint`` warns about them and
``memrelay mappings upgrade`` rewrites a file as ``version: 2`` (comments and layout kept).

Translation: ``{a.b.0}`` → ``{{ a.b[0] }}``, ``{@stage}`` → ``{{ _props.stage }}``, a field name that is no
identifier ``{first-name}`` → ``{{ _record["first-name"] }}``, ``{{``/``}}`` → literal braces.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterator
from typing import Any, Final

import yaml

from memrelay.connectors.transforms import PROPS, RECORD
from memrelay.engine.domain.templates import LITERAL_OPEN, OPEN

LEGACY_VERSION: Final = 1
VERSION: Final = 2
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"^@?[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Loc = tuple[str | int, ...]


def _name(segment: str) -> bool:
    return bool(_IDENT.match(segment)) and not keyword.iskeyword(segment)


def _expression(placeholder: str) -> str:
    if placeholder.startswith("@"):
        name = placeholder[1:]
        return f"{PROPS}.{name}" if _name(name) and not name.startswith("_") else f"{PROPS}[{json.dumps(name)}]"
    head, *rest = placeholder.split(".")
    out = head if _name(head) else f"{RECORD}[{json.dumps(head)}]"
    for segment in rest:
        if segment.isascii() and segment.isdigit():
            out += f"[{int(segment)}]"
        elif _name(segment) and not segment.startswith("_"):
            out += f".{segment}"
        else:
            out += f"[{json.dumps(segment)}]"
    return out


def translate(template: str) -> str:
    """A version-1 template in the template language; ``ValueError`` for a stray brace or a bad name."""
    pieces: list[tuple[bool, str]] = []  # (is_expression, text)
    literal, position = "", 0
    for match in _TOKEN.finditer(template):
        literal += template[position:match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(f"unbalanced {token!r} in template (write {token * 2} for a literal brace)")
        if not _PLACEHOLDER.match(name.strip()):
            raise ValueError(f"invalid placeholder {{{name}}} in template")
        pieces += [(False, literal), (True, _expression(name.strip()))]
        literal = ""
    pieces.append((False, literal + template[position:]))
    out = ""
    for i, (is_expression, text) in enumerate(pieces):
        if is_expression:
            out += "{{ " + text + " }}"
            continue
        text = text.replace(OPEN, LITERAL_OPEN)
        if text.endswith("{") and i + 1 < len(pieces) and pieces[i + 1][0]:
            text = text[:-1] + '{{ "{" }}'  # a literal brace right before an expression
        out += text
    return out


def template_locations(data: Any) -> Iterator[tuple[Loc, str]]:
    """Every template string in a mapping document, with its location (memories, tags, template transforms)."""
    objects = data.get("objects") if isinstance(data, dict) else None
    for name, obj in (objects or {}).items() if isinstance(objects, dict) else ():
        if not isinstance(obj, dict):
            continue
        base: Loc = ("objects", name)
        for i, memory in enumerate(obj.get("memories") or [] if isinstance(obj.get("memories"), list) else []):
            if isinstance(memory, str):
                yield (*base, "memories", i), memory
            elif isinstance(memory, dict) and isinstance(memory.get("template"), str):
                yield (*base, "memories", i, "template"), memory["template"]
        for i, tag in enumerate(obj.get("tags") or [] if isinstance(obj.get("tags"), list) else []):
            if isinstance(tag, str):
                yield (*base, "tags", i), tag
        specs: list[tuple[Loc, Any]] = [((*base, "timestamp"), obj.get("timestamp"))]
        keys: dict[str, Any] = obj["keys"] if isinstance(obj.get("keys"), dict) else {}
        for key, spec in keys.items():
            if key == "custom" and isinstance(spec, dict):
                specs += [((*base, "keys", "custom", k), v) for k, v in spec.items()]
            else:
                specs.append(((*base, "keys", key), spec))
        props: dict[str, Any] = obj["properties"] if isinstance(obj.get("properties"), dict) else {}
        specs += [((*base, "properties", k), v) for k, v in props.items()]
        for loc, spec in specs:
            steps = spec.get("transform") if isinstance(spec, dict) else None
            for j, step in enumerate(steps if isinstance(steps, list) else []):
                if isinstance(step, dict) and isinstance(step.get("template"), str) and len(step) == 1:
                    yield (*loc, "transform", j, "template"), step["template"]
                elif isinstance(step, dict) and step.get("name") == "template" and isinstance(step.get("arg"), str):
                    yield (*loc, "transform", j, "arg"), step["arg"]


def is_legacy(data: Any) -> bool:
    return isinstance(data, dict) and data.get("version", LEGACY_VERSION) == LEGACY_VERSION


def _replace(data: Any, loc: Loc, value: str) -> Any:
    """A copy of ``data`` with the value at ``loc`` replaced (containers along the way copied)."""
    if not loc:
        return value
    head, rest = loc[0], loc[1:]
    if isinstance(data, dict):
        return {**data, head: _replace(data[head], rest, value)}
    copy = list(data)
    copy[head] = _replace(data[head], rest, value)  # type: ignore[index]
    return copy


def upgrade_data(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[Loc, str]]]:
    """A version-1 document as version 2 (templates translated), and the templates that do not translate."""
    out: dict[str, Any] = {**data, "version": VERSION}
    problems: list[tuple[Loc, str]] = []
    for loc, template in list(template_locations(data)):
        try:
            out = _replace(out, loc, translate(template))
        except ValueError as exc:
            problems.append((loc, str(exc)))
    return out, problems


def upgrade_text(text: str) -> str:
    """Mapping YAML rewritten as version 2: each template scalar replaced in place, comments kept.

    ``ValueError`` if the file is not version 1 or a template does not translate.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.safe_load(text)
    if not is_legacy(data) or root is None:
        raise ValueError("not a version 1 mapping")
    edits: dict[int, tuple[int, str]] = {}
    for loc, template in template_locations(data):
        node, new = _node_at(root, loc), translate(template)
        if node is None or node.start_mark.index in edits or new == template:
            continue  # unchanged, or a YAML alias (edited where the anchor is)
        edits[node.start_mark.index] = (node.end_mark.index, json.dumps(new, ensure_ascii=False))
    version = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "version"), None)
    out, pos = [], 0
    for start in sorted(edits):
        end, new = edits[start]
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    result = "".join(out)
    if version is not None:
        start, end = version.start_mark.index, version.end_mark.index
        shift = sum(len(new) - (end_ - s) for s, (end_, new) in edits.items() if s < start)
        return result[:start + shift] + str(VERSION) + result[end + shift:]
    return f"version: {VERSION}\n" + result


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node if isinstance(node, yaml.ScalarNode) else None
