"""Pydantic models of a workflow definition: a trigger and a DAG of typed steps."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memrelay.workflows.cron import parse_cron, parse_interval

STEP_ID = r"^[a-z][a-z0-9_]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- triggers -------------------------------------------------------------------------------------
class WebhookTrigger(_Strict):
    """An inbound event processed by the event pipeline (source connector + event type glob)."""

    type: Literal["webhook"]
    source: list[str] = Field(min_length=1, description="Connector names, e.g. hubspot, stripe, form.")
    event: str = Field(min_length=1, description="Event type or glob, e.g. contact.creation, form.*")
    path: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9\-]{0,80}$",
                             description="Webhook path used when rendered for n8n (default: the workflow id).")

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ScheduleTrigger(_Strict):
    """A cron expression (5 fields, UTC) or a fixed interval such as ``15m``."""

    type: Literal["schedule"]
    cron: str | None = None
    every: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' or 'every'")
        if self.cron is not None:
            parse_cron(self.cron)
        if self.every is not None:
            parse_interval(self.every)
        return self


class ManualTrigger(_Strict):
    """Started by hand (API, CLI), with optional input fields."""

    type: Literal["manual"]
    inputs: dict[str, Any] = Field(default_factory=dict, description="Input names with example values.")


Trigger = Annotated[WebhookTrigger | ScheduleTrigger | ManualTrigger, Field(discriminator="type")]


# --- steps ----------------------------------------------------------------------------------------
class _Step(_Strict):
    id: str = Field(pattern=STEP_ID)
    name: str | None = Field(None, max_length=100, description="Display name (n8n node name).")
    after: list[str] | None = Field(None, description="Steps this one waits for (default: the previous step).")
    retries: int = Field(0, ge=0, le=10, description="Extra attempts after a transient failure.")

    @property
    def title(self) -> str:
        return self.name or self.id.replace("_", " ").capitalize()


class MemorizeStep(_Step):
    type: Literal["memorize"]
    content: str = Field(min_length=1)
    identifiers: dict[str, Any]
    tags: list[str] = Field(default_factory=lambda: ["workflow"], min_length=1)
    enhanced: bool = False


class BatchMemorizeStep(_Step):
    type: Literal["batch-memorize"]
    rows: str = Field(min_length=1, description="Expression giving a list of objects.")
    mapping: dict[str, Any]
    tags: list[str] = Field(default_factory=lambda: ["workflow"])


class EnrichStep(_Step):
    """Derive properties (templates) and/or extract them from text, on one record."""

    type: Literal["enrich"]
    identifiers: dict[str, Any]
    derive: dict[str, Any] = Field(default_factory=dict, description="Property name → template.")
    extract_from: str | None = Field(None, description="Text to extract properties and memories from.")

    @model_validator(mode="after")
    def _something(self) -> EnrichStep:
        if not self.derive and not self.extract_from:
            raise ValueError("enrich needs 'derive' and/or 'extract_from'")
        return self


class RecallStep(_Step):
    type: Literal["recall"]
    identifiers: dict[str, Any]
    query: str = Field(min_length=1)
    limit: int = Field(8, ge=1, le=50)


class DigestStep(_Step):
    type: Literal["digest"]
    identifiers: dict[str, Any]
    token_budget: int = Field(1000, ge=20, le=32_000)


class SignalsStep(_Step):
    """Contacts with memories tagged ``tag`` recorded in the last ``since_hours`` (fan-out source)."""

    type: Literal["signals"]
    tag: str = "deferred"
    since_hours: int = Field(24, ge=1, le=24 * 90)
    entity_type: str = "contact"
    limit: int = Field(100, ge=1, le=1000)


class GenerateStep(_Step):
    type: Literal["generate"]
    instructions: list[str] = Field(min_length=1, max_length=10)
    identifiers: dict[str, Any] | None = None
    context: str | None = None
    channel: Literal["email", "sms", "push", "slack", "in_app"] | None = None
    outputs: list[str] = Field(default_factory=list)
    memorize_back: bool = True


class DeliverStep(_Step):
    """Send a message: an outbound JSON webhook, a Slack incoming webhook, or an SMTP email."""

    type: Literal["deliver"]
    via: Literal["webhook", "slack", "email"]
    url: str | None = Field(None, description="Webhook/Slack URL, a template or 'env:NAME'.")
    to: str | None = None
    subject: str | None = None
    text: str = Field(min_length=1)
    payload: dict[str, Any] | None = Field(None, description="Extra JSON fields for via=webhook.")

    @model_validator(mode="after")
    def _target(self) -> DeliverStep:
        if self.via in ("webhook", "slack") and not self.url:
            raise ValueError(f"deliver via {self.via} needs 'url'")
        if self.via == "email" and not (self.to and self.subject):
            raise ValueError("deliver via email needs 'to' and 'subject'")
        return self


class ConditionStep(_Step):
    """Steps after a false condition are skipped."""

    type: Literal["condition"]
    if_: str = Field(alias="if", min_length=1)


Step = Annotated[MemorizeStep | BatchMemorizeStep | EnrichStep | RecallStep | DigestStep | SignalsStep
                 | GenerateStep | DeliverStep | ConditionStep, Field(discriminator="type")]
STEP_TYPES = ("memorize", "batch-memorize", "enrich", "recall", "digest", "signals", "generate", "deliver",
              "condition")


class WorkflowDef(_Strict):
    """One workflow: id, trigger and steps (a DAG; order in the file is the default chain)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9\-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)
    foreach: str | None = Field(None, description="Expression giving a list: steps after the first run per item.")

    @model_validator(mode="after")
    def _graph(self) -> WorkflowDef:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate step ids: {', '.join(dupes)}")
        for i, step in enumerate(self.steps):
            for dep in self.needs(step):
                if dep not in ids:
                    raise GraphError(i, f"step {step.id!r} waits for unknown step {dep!r}")
        self.order()  # raises GraphError on a cycle
        return self

    def needs(self, step: _Step) -> list[str]:
        if step.after is not None:
            return list(step.after)
        i = next(n for n, s in enumerate(self.steps) if s.id == step.id)
        return [self.steps[i - 1].id] if i else []

    def order(self) -> list[Step]:
        """Steps in a topological order (file order among ready steps)."""
        done: list[str] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if all(d in done for d in self.needs(s))]
            if not ready:
                first = self.steps.index(pending[0])
                cycle = " → ".join(s.id for s in pending)
                raise GraphError(first, f"steps form a cycle: {cycle}")
            for s in ready:
                done.append(s.id)
                pending.remove(s)
        by_id = {s.id: s for s in self.steps}
        return [by_id[i] for i in done]

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


class GraphError(ValueError):
    """A broken step graph; ``index`` is the offending step's position in ``steps``."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
