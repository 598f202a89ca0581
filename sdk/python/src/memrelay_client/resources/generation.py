"""Generation: prompt runs, saved agents, background jobs and LLM usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Unpack

from memrelay_client._decode import as_dict, listed, one
from memrelay_client._protocol import Call
from memrelay_client._resource import ModeT, Resource, operation
from memrelay_client.models._base import RecordKeys, RecordRef, drop_none, identifiers
from memrelay_client.models.generation import (
    Agent,
    Instruction,
    JobStatus,
    OutputSpec,
    PromptResult,
    QueuedJob,
    Usage,
)

Channel = Literal["email", "sms", "push", "slack", "in_app"]
Tier = Literal["basic", "pro", "ultra"]


class MemorizeBack(RecordKeys, total=False):
    """Where ``prompt`` stores what it generated (record keys, ``type``) and whether to store the outputs."""

    type: str
    capture_outputs: bool


def _memorize_back(memorize: MemorizeBack) -> dict[str, Any]:
    keys = RecordRef(**{k: v for k, v in memorize.items() if k != "capture_outputs"})  # type: ignore[typeddict-item]
    return {**identifiers(keys), **drop_none(captureOutputs=memorize.get("capture_outputs"))}


def _prompt_body(prompt: str | None, instructions: Sequence[Instruction] | None, *, context: str | None,
                 outputs: Sequence[OutputSpec] | None, channel: Channel | None, evaluate: bool | None,
                 evaluation_criteria: Sequence[str] | None, memorize: MemorizeBack | None,
                 session_id: str | None, use_guidelines: bool | None, context_tokens: int | None,
                 tier: Tier | None, record: RecordRef, run_async: bool) -> dict[str, Any]:
    if (prompt is None) == (instructions is None):
        raise TypeError("prompt() needs exactly one of 'prompt' or 'instructions'")
    steps = [Instruction(prompt=prompt)] if prompt is not None else list(instructions or ())
    memo = None if memorize is None else _memorize_back(memorize)
    return {"instructions": [s.body() for s in steps], **identifiers(record),
            **drop_none(context=context, outputs=None if outputs is None else [o.body() for o in outputs],
                        channel=channel, evaluate=evaluate,
                        evaluationCriteria=None if evaluation_criteria is None else list(evaluation_criteria),
                        memorize=memo, sessionId=session_id, useGuidelines=use_guidelines,
                        contextTokens=context_tokens, tier=tier, **({"async": True} if run_async else {}))}


class Generation(Resource[ModeT]):
    """``client.generation``: Personize's ``prompt`` (multi-step generation grounded in memory and
    guidelines) and saved agents."""

    @operation
    def prompt(self, prompt: str | None = None, *, instructions: Sequence[Instruction] | None = None,
               context: str | None = None, outputs: Sequence[OutputSpec] | None = None,
               channel: Channel | None = None, evaluate: bool | None = None,
               evaluation_criteria: Sequence[str] | None = None, memorize: MemorizeBack | None = None,
               session_id: str | None = None, use_guidelines: bool | None = None, context_tokens: int | None = None,
               tier: Tier | None = None, **record: Unpack[RecordRef]) -> Call[PromptResult]:
        """Generate from ``prompt`` (or multi-step ``instructions``) with the record's memory and the org's
        guidelines; named ``outputs``, channel rules, evaluation and memorize-back are optional."""
        body = _prompt_body(prompt, instructions, context=context, outputs=outputs, channel=channel,
                            evaluate=evaluate, evaluation_criteria=evaluation_criteria, memorize=memorize,
                            session_id=session_id, use_guidelines=use_guidelines, context_tokens=context_tokens,
                            tier=tier, record=record, run_async=False)
        return Call("POST", "/prompt", one(PromptResult), json=body)

    @operation
    def submit_prompt(self, prompt: str | None = None, *, instructions: Sequence[Instruction] | None = None,
                      context: str | None = None, outputs: Sequence[OutputSpec] | None = None,
                      channel: Channel | None = None, memorize: MemorizeBack | None = None,
                      tier: Tier | None = None, **record: Unpack[RecordRef]) -> Call[QueuedJob]:
        """Queue a ``prompt`` as a background job; poll :meth:`job` with the ``job_id``."""
        body = _prompt_body(prompt, instructions, context=context, outputs=outputs, channel=channel, evaluate=None,
                            evaluation_criteria=None, memorize=memorize, session_id=None, use_guidelines=None,
                            context_tokens=None, tier=tier, record=record, run_async=True)
        return Call("POST", "/prompt", one(QueuedJob), json=body)

    @operation
    def job(self, job_id: str) -> Call[JobStatus]:
        """A background job's status, with its result or error once finished."""
        return Call("GET", f"/jobs/{job_id}", one(JobStatus))

    @operation
    def list_agents(self) -> Call[list[Agent]]:
        """Saved agents (prompt actions)."""
        return Call("GET", "/agents", listed(Agent, "agents"))

    @operation
    def create_agent(self, name: str, spec: Mapping[str, Any], *, description: str = "") -> Call[Agent]:
        """Save a /prompt body whose strings are templates (``{{ input }}``, ``{{ name | upper }}``)."""
        return Call("POST", "/agents", one(Agent), json={"name": name, "description": description, "spec": dict(spec)})

    @operation
    def get_agent(self, agent_id: str) -> Call[Agent]:
        """One agent, with the ``variables`` its templates read."""
        return Call("GET", f"/agents/{agent_id}", one(Agent))

    @operation
    def update_agent(self, agent_id: str, *, name: str | None = None, description: str | None = None,
                     spec: Mapping[str, Any] | None = None) -> Call[Agent]:
        """Change some fields of an agent."""
        body = drop_none(name=name, description=description, spec=None if spec is None else dict(spec))
        return Call("PATCH", f"/agents/{agent_id}", one(Agent), json=body)

    @operation
    def delete_agent(self, agent_id: str) -> Call[dict[str, Any]]:
        """Delete an agent."""
        return Call("DELETE", f"/agents/{agent_id}", as_dict)

    @operation
    def run_agent(self, agent_id: str, input: str | None = None, *,  # noqa: A002 - Personize's name
                  variables: Mapping[str, Any] | None = None) -> Call[PromptResult]:
        """Run an agent with its variables filled in (``input`` is the usual one)."""
        body = drop_none(input=input, variables=None if variables is None else dict(variables))
        return Call("POST", f"/agents/{agent_id}/run", one(PromptResult), json=body)

    @operation
    def submit_agent_run(self, agent_id: str, input: str | None = None, *,  # noqa: A002 - Personize's name
                         variables: Mapping[str, Any] | None = None) -> Call[QueuedJob]:
        """Queue an agent run as a background job; poll :meth:`job`."""
        body = {"async": True, **drop_none(input=input, variables=None if variables is None else dict(variables))}
        return Call("POST", f"/agents/{agent_id}/run", one(QueuedJob), json=body)

    @operation
    def usage(self) -> Call[Usage]:
        """This month's LLM usage by feature, spending and the org's budget."""
        return Call("GET", "/usage", one(Usage))
