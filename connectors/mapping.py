"""Declarative YAML mappings from a source record to memrelay keys, properties, memories and tags.

A mapping file::

    version: 2
    connector: hubspot
    objects:
      contact:                       # the event's source_object_type
        entity_type: contact
        timestamp: lastmodifieddate  # source_timestamp (falls back to the event's occurred_at)
        keys:
          primary: email
          email: {source: email, transform: [strip, lower]}
          website_url: {source: email, transform: [domain_from_email]}
          custom: {hubspot_contact_id: id}
        properties:
          first_name: firstname                      # shorthand for {source: firstname}
          job_title: {source: [jobtitle, title], transform: [strip]}
          notes: {source: notes, extractMemories: true}
        memories:
          - "{{ firstname }} {{ lastname }} is {{ jobtitle }} at {{ company }}."
          - template: "Lifecycle stage changed to {{ _props.lifecycle_stage }}."
            when: {_event.type: contact.propertyChange}
        tags: [hubspot, "portal:{{ _event.portal_id }}"]

A field spec is a path (``a.b.0``), a list of fallback paths, or ``{source, default, transform}``.
Transforms: ``lower``, ``strip``, ``domain_from_email`` (free-mail domains dropped unless
``{allow_free: true}``), ``domain_from_url``, ``minor_to_major`` (needs the currency field),
``parse_date`` (``date`` for a date only), ``join``, ``split``, ``number``, ``map_values {from: to}``,
``template`` (``{{ value }}`` is the current value, other names are record fields).
``map_values`` maps unlisted values to its ``"*"`` entry when present (``"*": null`` drops them).

Templates (memories, tags, the ``template`` transform) are the shared template language
(:mod:`memrelay.engine.domain.templates`): record fields by name (``{{ fields.message }}``,
``{{ items[0] }}``, ``{{ _record["odd-name"] }}``), every transform as a filter
(``{{ email | domain_from_email }}``), and in memories and tags ``{{ _props.name }}``: the mapped
(transformed) property value. A memory may be ``{template, when: {field: value-or-list}}`` to render
only for matching records.

``version: 1`` files (or no version) use the legacy ``{field}`` / ``{@property}`` syntax; they are
translated on load (:mod:`memrelay.connectors.mapping_legacy`) and ``lint`` warns about them.

:func:`map_event` maps an :class:`~memrelay.connectors.base.InboundEvent`: its ``record`` plus an ``_event``
field (``type``, ``connector``, ``object_id``, ``occurred_at`` and the event's ``attributes``), so
templates and ``when`` clauses can use ``{{ _event.type }}`` or ``_event.property_name``.

Semantics of :func:`apply_mapping`: an absent or empty source field contributes nothing (a mapping
never clears a stored value); a memory template renders only when all its expressions have values.

Errors point at the file and line: :func:`load_mapping` raises ``ValidationFailed`` whose
``details["problems"]`` lists ``{path, line, location, message, severity}``; :func:`lint_mapping_file`
returns the same problems, warnings included, without raising.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from memrelay.connectors.base import InboundEvent
from memrelay.connectors.mapping_legacy import (
    LEGACY_VERSION,
    VERSION,
    is_legacy,
    template_locations,
    upgrade_data,
)
from memrelay.connectors.registry import CONNECTORS, connector_info
from memrelay.connectors.timeutil import parse_datetime
from memrelay.connectors.transforms import (
    ARG_CHECKS,
    MAPPING_TEMPLATES,
    MISSING,
    PROPS,
    RECORD,
    TRANSFORMS,
    TransformContext,
    get_path,
    is_empty,
    to_text,
)
from memrelay.engine.core.errors import NotFound, ValidationFailed

MAX_MAPPING_BYTES = 512 * 1024
RESERVED_KEYS = ("primary", "email", "website_url")

PropertyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=128)]
# custom key names may be camelCase: Personize's documented keys are dealId, ticketId, studentNumber
KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]
FieldPath = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^{}]+$")]
TransformName = Literal[
    "lower", "strip", "domain_from_email", "domain_from_url", "minor_to_major", "parse_date",
    "join", "split", "number", "map_values", "template",
]  # fmt: skip


# -- models -----------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TransformSpec(_Model):
    """One transform step: ``lower`` or ``{join: "; "}`` in YAML."""

    name: TransformName
    arg: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and len(data) == 1 and "name" not in data:
            ((name, arg),) = data.items()
            return {"name": name, "arg": arg}
        return data

    @model_validator(mode="after")
    def _check_arg(self) -> TransformSpec:
        ARG_CHECKS[self.name](self.arg)
        return self


class FieldSpec(_Model):
    """Where a value comes from: fallback source paths, a default, then transforms in order."""

    source: list[FieldPath] = Field(default_factory=list)
    default: Any = None
    transform: list[TransformSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str | list):
            data = {"source": data}
        if isinstance(data, dict) and isinstance(data.get("source"), str):
            data = {**data, "source": [data["source"]]}
        return data

    @model_validator(mode="after")
    def _needs_input(self) -> FieldSpec:
        if not self.source and self.default is None and not any(t.name == "template" for t in self.transform):
            raise ValueError("needs a source, a default or a template transform")
        return self


class PropertyMapping(FieldSpec):
    extract_memories: bool = Field(False, alias="extractMemories")


class KeysSpec(_Model):
    primary: FieldSpec | None = None
    email: FieldSpec | None = None
    website_url: FieldSpec | None = None
    custom: dict[KeyName, FieldSpec] = Field(default_factory=dict)

    @field_validator("custom")
    @classmethod
    def _not_reserved(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        clash = sorted(set(value) & set(RESERVED_KEYS))
        if clash:
            raise ValueError(f"custom key names may not be {', '.join(clash)}")
        return value

    def specs(self) -> dict[str, FieldSpec]:
        named = {name: getattr(self, name) for name in RESERVED_KEYS if getattr(self, name) is not None}
        return {**named, **self.custom}


class MemorySpec(_Model):
    """A memory template, rendered only when every ``when`` field equals (one of) the given value(s)."""

    template: Annotated[str, StringConstraints(min_length=1)]
    when: dict[FieldPath, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"template": data} if isinstance(data, str) else data

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        MAPPING_TEMPLATES.template(value)
        return value

    def applies(self, ctx: TransformContext) -> bool:
        for path, expected in self.when.items():
            actual = get_path(ctx.record, path)
            allowed = expected if isinstance(expected, list) else [expected]
            if is_empty(actual) or to_text(actual) not in {to_text(v) for v in allowed}:
                return False
        return True


class ObjectMapping(_Model):
    entity_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    keys: KeysSpec
    properties: dict[PropertyName, PropertyMapping] = Field(default_factory=dict)
    memories: list[MemorySpec] = Field(default_factory=list)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(default_factory=list)
    timestamp: FieldSpec | None = None

    @field_validator("keys")
    @classmethod
    def _some_key(cls, value: KeysSpec) -> KeysSpec:
        if not value.specs():
            raise ValueError("at least one key (primary, email, website_url or custom) is required")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, values: list[str]) -> list[str]:
        for value in values:
            MAPPING_TEMPLATES.template(value)
        return values


class MappingSpec(_Model):
    """A whole mapping file."""

    version: Literal[1, 2] = LEGACY_VERSION
    connector: str | None = None
    description: str = ""
    objects: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], ObjectMapping] = Field(
        min_length=1
    )

    @model_validator(mode="before")
    @classmethod
    def _upgrade_legacy(cls, data: Any) -> Any:
        """A version-1 document (``{field}`` templates) is translated to version 2 before validation."""
        if not is_legacy(data):
            return data
        upgraded, problems = upgrade_data(data)
        if problems:
            loc, message = problems[0]
            raise ValueError(f"{_location(loc)}: {message}")
        return upgraded

    def object_for(self, object_type: str) -> ObjectMapping | None:
        """The mapping for a source object type (exact match first, then case-insensitive)."""
        if object_type in self.objects:
            return self.objects[object_type]
        wanted = object_type.lower()
        return next((obj for name, obj in self.objects.items() if name.lower() == wanted), None)


# -- applying ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappedRecord:
    """The result of mapping one source record (plain data, JSON-friendly except ``source_timestamp``)."""

    object_type: str
    entity_type: str
    keys: dict[str, str]
    properties: dict[str, Any]
    memories: list[str]
    tags: list[str]
    source_timestamp: datetime | None
    extract_memories: list[str] = field(default_factory=list)
    """Property names whose text should also go through AI memory extraction."""
    warnings: list[str] = field(default_factory=list)

    @property
    def primary_key(self) -> str | None:
        return self.keys.get("primary")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_timestamp"] = self.source_timestamp.isoformat() if self.source_timestamp else None
        return data


def _resolve(spec: FieldSpec, ctx: TransformContext) -> Any:
    """The transformed value, or ``MISSING`` when no source field has a value and there is no default."""
    value: Any = MISSING
    for path in spec.source:
        candidate = get_path(ctx.record, path)
        if not is_empty(candidate):
            value = candidate
            break
    if value is MISSING:
        if spec.default is not None:
            value = spec.default
        elif spec.source:
            return MISSING
        else:
            value = None  # template-only spec
    for step in spec.transform:
        value = TRANSFORMS[step.name](value, step.arg, ctx)
    if isinstance(value, str):
        value = value.strip()
    return MISSING if is_empty(value) else value


def _render(template: str, scope: Mapping[str, Any]) -> str | None:
    """A memory or tag: ``None`` unless every expression has a value."""
    text = MAPPING_TEMPLATES.template(template).render(scope, required=True, text=to_text)
    return (text.strip() or None) if text is not None else None


def _key_text(name: str, value: Any, ctx: TransformContext) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    ctx.warnings.append(f"key {name}: {type(value).__name__} value ignored")
    return None


def apply_mapping(
    mapping: MappingSpec,
    object_type: str,
    source_record: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
) -> MappedRecord:
    """Map one source record; ``NotFound`` if ``mapping`` has no entry for ``object_type``.

    ``occurred_at`` (the event's provider time) is the ``source_timestamp`` when the mapping's
    ``timestamp`` field is absent or unparseable.
    """
    obj = mapping.object_for(object_type)
    if obj is None:
        raise NotFound(f"mapping has no object {object_type!r}", details={"objects": sorted(mapping.objects)})
    ctx = TransformContext(record=source_record)

    keys: dict[str, str] = {}
    for name, spec in obj.keys.specs().items():
        value = _resolve(spec, ctx)
        if value is not MISSING and (text := _key_text(name, value, ctx)) is not None:
            keys[name] = text

    properties: dict[str, Any] = {}
    for name, spec in obj.properties.items():
        value = _resolve(spec, ctx)
        if value is not MISSING:
            properties[name] = value

    scope = ChainMap({PROPS: properties, RECORD: source_record}, dict(source_record))
    memories = [
        text
        for memory in obj.memories
        if memory.applies(ctx) and (text := _render(memory.template, scope)) is not None
    ]
    tags = list(dict.fromkeys(text for tag in obj.tags if (text := _render(tag, scope)) is not None))

    source_timestamp = None
    if obj.timestamp is not None:
        raw = _resolve(obj.timestamp, ctx)
        source_timestamp = parse_datetime(raw) if raw is not MISSING else None
    return MappedRecord(
        object_type=object_type,
        entity_type=obj.entity_type,
        keys=keys,
        properties=properties,
        memories=memories,
        tags=tags,
        source_timestamp=source_timestamp or occurred_at,
        extract_memories=[
            name for name, spec in obj.properties.items() if spec.extract_memories and name in properties
        ],
        warnings=ctx.warnings,
    )


EVENT_FIELD = "_event"


def event_context(event: InboundEvent) -> dict[str, Any]:
    """The mapping input for an event: ``record`` plus the ``_event`` meta field."""
    meta = {
        **event.attributes,
        "type": event.event_type,
        "connector": event.connector,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "occurred_at": event.occurred_at.isoformat(),
    }
    return {**event.record, EVENT_FIELD: meta}


def map_event(mapping: MappingSpec, event: InboundEvent) -> MappedRecord:
    """:func:`apply_mapping` for an event (its source object type, record, ``_event`` and time)."""
    return apply_mapping(
        mapping, event.source_object_type, event_context(event), occurred_at=event.occurred_at
    )


# -- loading with line numbers ----------------------------------------------------------------------


@dataclass(frozen=True)
class MappingProblem:
    """One problem in a mapping file: ``path`` is the file, ``location`` the key path inside it."""

    path: str
    line: int | None
    location: str
    message: str
    severity: Literal["error", "warning"] = "error"
    """Warnings (a version-1 file) do not stop the file from loading."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{where}: {'warning: ' if self.severity == 'warning' else ''}{text}"


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_for(root: Node, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node that ``loc`` reaches (unmatched parts are skipped)."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    node, line = value_node, key_node.start_mark.line + 1
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _message(error: Mapping[str, Any]) -> str:
    loc, kind, ctx = error.get("loc") or (), error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}" if loc else "unknown key"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing required key"
    if kind == "literal_error":
        return f"{error.get('input')!r} is not allowed; expected {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        what = "name" if loc and loc[-1] == "[key]" else "value"
        return f"invalid {what} {error.get('input')!r}: must match {ctx.get('pattern')}"
    return str(error["msg"]).removeprefix("Value error, ")


def _duplicate_keys(node: Node, path: str, seen: set[int] | None = None) -> list[MappingProblem]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # aliases point at the same node
        return []
    seen.add(id(node))
    problems: list[MappingProblem] = []
    if isinstance(node, MappingNode):
        names: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                if key_node.value in names:
                    problems.append(
                        MappingProblem(
                            path, key_node.start_mark.line + 1, "", f"duplicate key {key_node.value!r}"
                        )
                    )
                names.add(key_node.value)
            problems += _duplicate_keys(value_node, path, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, path, seen)
    return problems


def _parse(text: str, path: str) -> tuple[MappingSpec | None, list[MappingProblem]]:
    if len(text.encode("utf-8")) > MAX_MAPPING_BYTES:
        return None, [MappingProblem(path, None, "", f"file is larger than {MAX_MAPPING_BYTES} bytes")]
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters here (ReaderError)
    except yaml.YAMLError as exc:
        return None, [MappingProblem(path, None, "", f"YAML error: {exc}")]
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except RecursionError:
        return None, [MappingProblem(path, None, "", "YAML nests too deeply")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part) or "invalid YAML"
        return None, [
            MappingProblem(path, mark.line + 1 if mark else None, "", f"YAML syntax error: {message}")
        ]
    except yaml.YAMLError as exc:
        return None, [MappingProblem(path, None, "", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    if root is None:
        return None, [MappingProblem(path, 1, "", "the file is empty")]
    problems = _duplicate_keys(root, path)
    if not isinstance(data, dict):
        return None, [
            *problems,
            MappingProblem(path, root.start_mark.line + 1, "", "the top level must be a mapping"),
        ]
    if is_legacy(data):
        problems += _legacy_warning(root, data, path)
        data, untranslatable = upgrade_data(data)
        problems += [MappingProblem(path, _line_for(root, loc), _location(loc), message)
                     for loc, message in untranslatable]
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error.get("loc") or ())
            problems.append(MappingProblem(path, _line_for(root, loc), _location(loc), _message(error)))
        return None, problems
    return (None if _errors(problems) else spec), problems


def _errors(problems: list[MappingProblem]) -> list[MappingProblem]:
    return [p for p in problems if p.severity == "error"]


def _legacy_warning(root: Node, data: dict[str, Any], path: str) -> list[MappingProblem]:
    templates = sum(1 for _ in template_locations(data))
    if not templates:
        return []
    return [MappingProblem(
        path, _line_for(root, ("version",)), "version",
        f"version {LEGACY_VERSION} mapping: its {templates} template(s) use the legacy {{field}} syntax and are "
        f"translated on load; run `memrelay mappings upgrade {path}` to rewrite it as version {VERSION} "
        "({{ field }} templates)", "warning")]


def load_mapping_text(text: str, *, path: str = "<string>") -> MappingSpec:
    """Parse and validate mapping YAML; ``ValidationFailed`` listing every problem with its line."""
    spec, problems = _parse(text, path)
    problems = _errors(problems)
    if problems or spec is None:
        raise ValidationFailed(
            f"invalid mapping {path}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            details={"path": path, "problems": [p.to_dict() for p in problems]},
        )
    return spec


def load_mapping(path: str | Path) -> MappingSpec:
    """Load a mapping file (see :func:`load_mapping_text`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"cannot read mapping {file}: {exc}", details={"path": str(file)}) from exc
    return load_mapping_text(text, path=str(file))


def lint_mapping_file(path: str | Path) -> list[MappingProblem]:
    """All problems in a mapping file, warnings included (no errors = valid). Backs ``memrelay mappings lint``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [MappingProblem(str(file), None, "", f"cannot read file: {exc}")]
    return _parse(text, str(file))[1]


def default_mapping_path(connector_name: str) -> Path:
    """The shipped default mapping file of a connector (``connectors/<package>/mapping.yaml``);
    ``NotFound`` for an unknown connector."""
    return connector_info(connector_name).default_mapping


def default_mapping_files() -> list[Path]:
    """Every shipped default mapping file (the form connectors share one)."""
    return sorted({info.default_mapping for info in CONNECTORS})


@cache
def load_default_mapping(connector_name: str) -> MappingSpec:
    """The validated default mapping for a connector (cached; models are immutable)."""
    return load_mapping(default_mapping_path(connector_name))
