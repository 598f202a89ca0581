"""LLM configuration: model tiers and transport settings, built from :class:`memrelay.engine.core.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from memrelay.engine.adapters.llm.errors import LLMNotConfigured
from memrelay.engine.core.errors import ValidationFailed

if TYPE_CHECKING:
    from memrelay.engine.core.settings import Settings

Tier = Literal["basic", "pro", "ultra"]
TIERS: tuple[str, ...] = get_args(Tier)


@dataclass(frozen=True)
class LLMConfig:
    """Which litellm model serves each tier, and how to reach the provider.

    Any litellm provider works by configuration: ``openai/gpt-4o-mini``, ``anthropic/claude-...``,
    ``ollama/llama3`` or ``openai/<name>`` with ``api_base`` pointing at an OpenAI-compatible server.
    """

    models: dict[str, str]  # tier -> litellm model; must contain "basic"
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 3  # retries after the first attempt (429, 5xx, connection errors)
    backoff_base_s: float = 0.5  # first exponential backoff step (plus up to the same in jitter)
    backoff_max_s: float = 20.0
    max_retry_after_s: float = 60.0  # a longer provider Retry-After fails fast instead of sleeping
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> USD per (in, out) token

    def __post_init__(self) -> None:
        if not self.models.get("basic"):
            raise LLMNotConfigured()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> LLMConfig:
        """Build from ``MEMRELAY_LLM_*``; pro and ultra fall back to basic. Raises LLMNotConfigured."""
        if not settings.llm_model:
            raise LLMNotConfigured()
        models = {
            "basic": settings.llm_model,
            "pro": settings.llm_model_pro or settings.llm_model,
            "ultra": settings.llm_model_ultra or settings.llm_model_pro or settings.llm_model,
        }
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(
            models=models,
            api_base=settings.llm_api_base,
            api_key=key,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            prices={m: (p.input_per_mtok / 1e6, p.output_per_mtok / 1e6) for m, p in settings.llm_prices.items()},
            **overrides,  # type: ignore[arg-type]
        )

    def model_for(self, tier: str) -> str:
        """The litellm model for ``tier``; unset pro/ultra fall back to the next tier down."""
        if tier not in TIERS:
            raise ValidationFailed(f"unknown LLM tier {tier!r}", details={"tier": tier, "allowed": list(TIERS)})
        for candidate in TIERS[TIERS.index(tier)::-1]:
            if self.models.get(candidate):
                return self.models[candidate]
        return self.models["basic"]


def require_llm(settings: Settings, feature: str | None = None) -> LLMConfig:
    """The LLM config, or :class:`LLMNotConfigured` (503) naming ``MEMRELAY_LLM_MODEL``."""
    if not settings.llm_configured:
        raise LLMNotConfigured(feature)
    return LLMConfig.from_settings(settings)
