"""The engine's only way to talk to an LLM: plain and schema-validated completions through litellm.

Every request goes through ``litellm.completion`` with litellm's own retries off; memrelay retries
(:mod:`memrelay.engine.adapters.llm.retry`), checks the budget before each request, and reports aggregated
:class:`Usage` once per public call (also when the call fails after spending tokens).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import openai
from pydantic import BaseModel, ValidationError

from memrelay.engine.adapters.llm.budget import BudgetGuard
from memrelay.engine.adapters.llm.config import LLMConfig
from memrelay.engine.adapters.llm.errors import LLMInvalidOutput, LLMUpstreamError, UnpricedModel
from memrelay.engine.adapters.llm.retry import retrying, to_upstream_error
from memrelay.engine.adapters.llm.runtime import litellm
from memrelay.engine.adapters.llm.usage import Usage, estimate_cost, token_prices

if TYPE_CHECKING:
    from memrelay.engine.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Messages = list[dict[str, Any]]
UsageCallback = Callable[[Usage], None]

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_MAX_ERRORS_SHOWN = 8


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class Structured(Generic[T]):
    value: T
    usage: Usage
    model: str = ""


@dataclass
class _Meter:
    """Usage collected during one public call."""

    usage: Usage = field(default_factory=Usage)


class LLMClient:
    """Sync LLM client over litellm; safe to share between threads."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        budget: BudgetGuard | None = None,
        on_usage: UsageCallback | None = None,
    ):
        self.config = config
        self.budget = budget
        self.on_usage = on_usage

    @classmethod
    def from_settings(
        cls, settings: Settings, *, budget: BudgetGuard | None = None, on_usage: UsageCallback | None = None
    ) -> LLMClient:
        return cls(LLMConfig.from_settings(settings), budget=budget, on_usage=on_usage)

    # --- public API ------------------------------------------------------------------------------
    def complete(
        self,
        messages: Messages,
        *,
        tier: str = "basic",
        temperature: float = 0.2,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> Completion:
        """One chat completion on ``tier``'s model."""
        model = self.config.model_for(tier)
        with self._metered() as meter:
            text, finish = self._request(
                model, messages, meter, temperature=temperature, max_tokens=max_tokens, json_mode=json_mode
            )
        return Completion(text=text, usage=meter.usage, model=model, finish_reason=finish)

    def structured(self, messages: Messages, schema: type[T], *, tier: str = "basic") -> Structured[T]:
        """A ``schema`` instance from the model's JSON answer, with exactly one repair attempt."""
        model = self.config.model_for(tier)
        conversation = with_schema_instruction(messages, schema)
        with self._metered() as meter:
            text, _ = self._request(model, conversation, meter, temperature=0.0, json_mode=True)
            value, error = parse_as(text, schema)
            if value is None:
                log.info("LLM output did not match %s, asking %s for a repair: %s", schema.__name__, model, error)
                conversation = [*conversation, {"role": "assistant", "content": text},
                                {"role": "user", "content": repair_prompt(error)}]
                text, _ = self._request(model, conversation, meter, temperature=0.0, json_mode=True)
                value, second_error = parse_as(text, schema)
                if value is None:
                    raise LLMInvalidOutput(
                        f"LLM output did not match {schema.__name__} after one repair attempt: {second_error}",
                        details={"model": model, "schema": schema.__name__, "errors": [error, second_error]},
                    )
        return Structured(value=value, usage=meter.usage, model=model)

    # --- internals -------------------------------------------------------------------------------
    @contextmanager
    def _metered(self) -> Iterator[_Meter]:
        """Collect one public call's usage; report it once and attach it to LLM errors."""
        meter = _Meter()
        try:
            yield meter
        except LLMUpstreamError as exc:
            if exc.usage is None:
                exc.usage = meter.usage
            raise
        finally:
            if self.on_usage is not None and meter.usage.calls:
                self.on_usage(meter.usage)

    def _request(
        self,
        model: str,
        messages: Messages,
        meter: _Meter,
        *,
        temperature: float,
        max_tokens: int | None = None,
        json_mode: bool = False,
    ) -> tuple[str, str | None]:
        """One logical request (with retries); adds its usage to ``meter``."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "timeout": self.config.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,  # providers without e.g. temperature/response_format just skip them
        }
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        if self.config.api_key:
            kwargs["api_key"] = self.config.api_key
        if self.budget is not None and getattr(self.budget, "limit_usd", None) is not None \
                and token_prices(model, self.config.prices) is None:
            raise UnpricedModel(model)  # a dollar budget over a $0 model would never stop spending
        estimate = estimate_cost(model, messages, max_tokens, self.config.prices) if self.budget is not None else 0.0

        def attempt() -> Any:
            if self.budget is not None:
                self.budget.check(estimate)
            return litellm.completion(**kwargs)

        retryer = retrying(self.config)
        try:
            response = retryer(attempt)
        except openai.OpenAIError as exc:
            attempts = int(retryer.statistics.get("attempt_number", 1))
            raise to_upstream_error(exc, model=model, attempts=attempts, timeout_s=self.config.timeout_s) from exc
        meter.usage += Usage.from_response(response, model, self.config.prices)
        choice = response.choices[0]
        return choice.message.content or "", getattr(choice, "finish_reason", None)


def with_schema_instruction(messages: Messages, schema: type[BaseModel]) -> Messages:
    """``messages`` plus a system instruction to answer with JSON matching ``schema``."""
    instruction = (
        "Answer with a single JSON object and nothing else. It must validate against this JSON Schema:\n"
        + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )
    messages = list(messages)
    first = messages[0] if messages else None
    if first and first.get("role") == "system" and isinstance(first.get("content"), str):
        return [{**first, "content": f"{first['content']}\n\n{instruction}"}, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def parse_as(text: str, schema: type[T]) -> tuple[T | None, str]:
    """Validate ``text`` (optionally inside a Markdown code fence) as ``schema``; (value, "") or (None, why)."""
    fenced = _FENCE.match(text)
    candidate = fenced.group(1) if fenced else text.strip()
    try:
        return schema.model_validate_json(candidate), ""
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:_MAX_ERRORS_SHOWN]
        ]
        return None, "; ".join(problems)


def repair_prompt(error: str) -> str:
    return (
        f"Your previous answer could not be used: {error}. "
        "Reply again with only the corrected JSON object that matches the schema — no prose, no code fence."
    )
