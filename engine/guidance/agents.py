"""Agents: saved prompt actions — a generation request whose strings are templates (``{{ input }}``,
:mod:`memrelay.engine.domain.templates`) — run on demand."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from memrelay.engine.core.errors import Conflict, NotFound, ValidationFailed
from memrelay.engine.core.util import iso, new_id, utcnow
from memrelay.engine.domain import templates
from memrelay.engine.guidance.generation import Generator, PromptRequest
from memrelay.engine.stores.db.database import Database
from memrelay.engine.stores.db.models_llm import Agent


class AgentCreate(BaseModel):
    """POST /agents and PUT /agents/<id>: ``spec`` is a /prompt request body whose strings are templates
    (``{{ input }}``, ``{{ name | upper }}``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    spec: dict[str, Any]


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    spec: dict[str, Any] | None = None


class AgentRun(BaseModel):
    """POST /agents/<id>/run: values for the agent's variables (``input`` is the usual one)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    input: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    run_async: bool = Field(False, alias="async")

    def values(self) -> dict[str, Any]:
        return {**self.variables, **({"input": self.input} if self.input is not None else {})}


def variables_in(value: Any) -> set[str]:
    """Every variable (free name) the templates anywhere in a JSON-like value read.

    ``TemplateError`` (422, naming the position) for a string that is not a valid template.
    """
    if isinstance(value, str):
        return templates.parse(value).names() if templates.OPEN in value else set()
    if isinstance(value, dict):
        return set().union(*(variables_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables_in(v) for v in value)) if value else set()
    return set()


def render(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with its templates filled from ``values`` (strings stay strings; structure preserved)."""
    if isinstance(value, str):
        return templates.parse(value).render(values) if templates.OPEN in value else value
    if isinstance(value, dict):
        return {k: render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values) for v in value]
    return value


def validate_spec(spec: dict[str, Any]) -> None:
    """The spec must be a valid /prompt request once variables are filled in (422 otherwise)."""
    sample = render(spec, {name: "x" for name in variables_in(spec)})
    try:
        PromptRequest.model_validate(sample)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("agent spec is not a valid prompt request", details={"errors": errors}) from None


def agent_to_dict(a: Agent) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "description": a.description, "spec": a.spec,
            "variables": sorted(variables_in(a.spec)), "version": a.version,
            "createdAt": iso(a.created_at), "updatedAt": iso(a.updated_at)}


class Agents:
    """Agent CRUD and runs (``memrelay.engine.guidance.agents``)."""

    def __init__(self, db: Database, generation: Generator):
        self.db, self.generation = db, generation

    def create(self, org_id: str, body: AgentCreate) -> dict[str, Any]:
        validate_spec(body.spec)
        now = utcnow()
        a = Agent(id=new_id("agt"), org_id=org_id, name=body.name, description=body.description, spec=body.spec,
                  version=1, created_at=now, updated_at=now)
        try:
            with self.db.session() as s:
                s.add(a)
        except IntegrityError:
            raise Conflict(f"an agent named {body.name!r} already exists") from None
        return agent_to_dict(a)

    def list(self, org_id: str) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [agent_to_dict(a) for a in s.scalars(select(Agent).where(Agent.org_id == org_id)
                                                        .order_by(Agent.name))]

    def get(self, org_id: str, agent_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return agent_to_dict(self._get(s, org_id, agent_id))

    def update(self, org_id: str, agent_id: str, body: AgentPatch | AgentCreate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "spec" in changes:
            validate_spec(changes["spec"])
        try:
            with self.db.session() as s:
                a = self._get(s, org_id, agent_id)
                for name, value in changes.items():
                    setattr(a, name, value)
                a.version += 1
                a.updated_at = utcnow()
                s.flush()
                return agent_to_dict(a)
        except IntegrityError:
            raise Conflict(f"an agent named {changes.get('name')!r} already exists") from None

    def delete(self, org_id: str, agent_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            s.delete(self._get(s, org_id, agent_id))
        return {"id": agent_id, "deleted": True}

    def prompt_request(self, org_id: str, agent_id: str, run: AgentRun) -> PromptRequest:
        """The agent's prompt request with variables filled in (422 naming missing variables)."""
        with self.db.read() as s:
            spec = self._get(s, org_id, agent_id).spec
        values = run.values()
        missing = sorted(variables_in(spec) - set(values))
        if missing:
            raise ValidationFailed("missing agent variables: " + ", ".join(missing), details={"missing": missing})
        return PromptRequest.model_validate(render(spec, values))

    def run(self, org_id: str, agent_id: str, run: AgentRun) -> dict[str, Any]:
        result = self.generation.generate(org_id, self.prompt_request(org_id, agent_id, run))
        return {"agentId": agent_id, **result}

    @staticmethod
    def _get(s: Any, org_id: str, agent_id: str) -> Agent:
        a = s.scalar(select(Agent).where(Agent.org_id == org_id, Agent.id == agent_id))
        if a is None:
            raise NotFound(f"agent {agent_id} not found")
        return a

