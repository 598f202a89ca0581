"""Load workflow definitions from YAML, with errors that name the file and line.

Definitions ship in ``workflows/definitions/*.yaml``; an installation may add its own in
``<data dir>/workflows/*.yaml``. Ids must be unique across both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from memrelay.engine.core.errors import ConfigError, NotFound
from memrelay.workflows import expressions
from memrelay.workflows.models import STEP_TYPES, GraphError, WorkflowDef

SHIPPED_DIR = Path(__file__).parent / "definitions"
Loc = tuple[str | int, ...]
TAGS = frozenset((*STEP_TYPES, "webhook", "schedule", "manual"))


class WorkflowLoadError(ConfigError):
    """A definition that does not parse or validate; ``details`` carry file and line."""

    code = "workflow_invalid"

    def __init__(self, path: str, line: int | None, message: str):
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", details={"file": path, "line": line})
        self.path, self.line = path, line


def _compose(text: str, path: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML into plain data plus a map from each value's location to its 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise WorkflowLoadError(path, mark.line + 1 if mark else None, f"invalid YAML: {exc}") from None
    lines: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> Any:
        lines[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                key = yaml.safe_load(yaml.serialize(k)) if not isinstance(k, yaml.ScalarNode) else k.value
                out[key] = walk(v, (*loc, key))
                lines[(*loc, key)] = k.start_mark.line + 1  # a key's problems point at the key
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(v, (*loc, i)) for i, v in enumerate(n.value)]
        return yaml.safe_load(yaml.serialize(n))

    if node is None:
        raise WorkflowLoadError(path, 1, "the file is empty")
    return walk(node, ()), lines


def _line(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` (pydantic's union tags dropped), or of its nearest known parent."""
    clean: list[str | int] = []
    for p in loc:
        if p in TAGS and clean and (isinstance(clean[-1], int) or clean[-1] == "trigger"):
            continue
        clean.append(p)
    key = tuple(clean)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return lines.get(())


def parse_definition(text: str, path: str = "<string>") -> WorkflowDef:
    """Validate one definition; raise WorkflowLoadError with file and line on any problem."""
    data, lines = _compose(text, path)
    if not isinstance(data, dict):
        raise WorkflowLoadError(path, 1, "a workflow definition must be a mapping")
    try:
        wf = WorkflowDef.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, GraphError):
            raise WorkflowLoadError(path, _line(lines, ("steps", cause.index)), str(cause)) from None
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "definition"
        msg = err["msg"]
        if err["type"] == "union_tag_invalid":
            loc, msg = (*loc, "type"), f"unknown step type {err['input'].get('type')!r}" if isinstance(
                err.get("input"), dict) else msg
        extra = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise WorkflowLoadError(path, _line(lines, loc), f"{field}: {msg}{extra}") from None
    for i, step in enumerate(wf.steps):
        fields = step.model_dump(by_alias=True, exclude={"id", "type", "name", "after", "retries"})
        for loc, value in _strings(fields, ("steps", i)):
            try:
                expressions.check(value)
            except expressions.ExpressionError as exc:
                where = ".".join(str(p) for p in loc[2:])
                raise WorkflowLoadError(path, _line(lines, loc), f"step {step.id!r}, {where}: {exc}") from None
    if wf.foreach:
        try:
            expressions.parse(wf.foreach)
        except expressions.ExpressionError as exc:
            raise WorkflowLoadError(path, _line(lines, ("foreach",)), str(exc)) from None
    return wf


def _strings(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    """Every string in a JSON-like value with its location (templates are checked one by one)."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, (*loc, k))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, (*loc, i))]
    return [(loc, value)] if isinstance(value, str) else []


def load_file(path: Path) -> WorkflowDef:
    return parse_definition(path.read_text(encoding="utf-8"), str(path))


@dataclass(frozen=True)
class Registry:
    """All known definitions by id, with the file each came from."""

    workflows: dict[str, WorkflowDef]
    files: dict[str, Path]

    def get(self, workflow_id: str) -> WorkflowDef:
        try:
            return self.workflows[workflow_id]
        except KeyError:
            raise NotFound(f"workflow {workflow_id!r} not found") from None

    def all(self) -> list[WorkflowDef]:
        return [self.workflows[k] for k in sorted(self.workflows)]


def load_dirs(*dirs: Path) -> Registry:
    workflows: dict[str, WorkflowDef] = {}
    files: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            wf = load_file(path)
            if wf.id in workflows:
                raise WorkflowLoadError(str(path), 1, f"workflow id {wf.id!r} is already defined in {files[wf.id]}")
            workflows[wf.id], files[wf.id] = wf, path
    return Registry(workflows, files)


_cache: dict[tuple[Any, ...], Registry] = {}


def registry(data_dir: Path | None = None) -> Registry:
    """Shipped definitions plus ``<data_dir>/workflows`` (cached until a file changes)."""
    dirs = [SHIPPED_DIR] + ([data_dir / "workflows"] if data_dir is not None else [])
    stamp = tuple((str(p), p.stat().st_mtime_ns) for d in dirs if d.is_dir() for p in sorted(d.glob("*.yaml")))
    if stamp not in _cache:
        _cache.clear()
        _cache[stamp] = load_dirs(*dirs)
    return _cache[stamp]
