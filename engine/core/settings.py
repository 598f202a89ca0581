"""Runtime settings, read from ``MEMRELAY_*`` environment variables (pydantic-settings).

Build them with :func:`load_settings` at process start (``create_app``, the worker entry point, the CLI);
never at import time. Tests construct ``Settings(...)`` directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from memrelay.engine.core.errors import ConfigError

ENV_PREFIX = "MEMRELAY_"


class LLMPrice(BaseModel):
    """A model's price in USD per million tokens (for models litellm's price map does not know)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Settings(BaseSettings):
    """Everything memrelay can be configured with. Unset backends mean the embedded default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    data_dir: Path = Field(Path(".memrelay"), description="Where SQLite, Milvus Lite and embedded Redis live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; unset = SQLite file in the data dir.")
    milvus_uri: str | None = Field(None, description="Milvus server URI or Lite file; unset = Lite file in data dir.")
    milvus_lazy: bool = Field(True, description="`memrelay up`/`serve`: start the embedded Milvus Lite only when "
                                                "needed (an org past the exact-search limit, or a Milvus search).")
    milvus_wanted_file: str | None = Field(None, description="Set by `memrelay up` for its children: the embedded "
                                                             "Milvus Lite starts on demand; touching this file asks "
                                                             "for it (until then memories stay pending for the index).")
    redis_url: str | None = Field(None, description="External Redis; unset = memrelay starts its own.")
    exact_search_max_rows: int = Field(
        5_000_000, ge=1, description="Live memories per org up to which org-wide recall and similar records are "
                                     "answered from the org's exact in-process index (a shared memory-mapped file); "
                                     "above it they use Milvus (then `memrelay up` starts its Milvus Lite).")
    # the default is memrelay.engine.memory.org_vectors.DEFAULT_MAX_ROWS (a test keeps them equal)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(2, ge=0, le=64, description="RQ workers started by `memrelay up`.")
    web_workers: int = Field(2, ge=1, le=64, description="gunicorn worker processes.")
    public_url: str | None = Field(None, description="Public base URL providers call (HubSpot v3 signs it).")
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token Prometheus sends to scrape /metrics (unset: /metrics answers only direct "
                          "loopback callers).")

    # --- SQL pool and connection (PostgreSQL; SQLite uses the timeout only) ---------------------
    db_pool_size: int = Field(10, ge=1, le=500, description="Pooled SQL connections kept per process.")
    db_max_overflow: int = Field(20, ge=0, le=500, description="Extra SQL connections a process may open.")
    db_pool_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for a free pooled connection.")
    db_pool_recycle_s: int = Field(1800, ge=0, description="Replace pooled connections older than this (0 = never).")
    db_statement_timeout_ms: int = Field(30_000, ge=0, description="PostgreSQL statement_timeout (0 = none).")
    db_idle_in_transaction_timeout_ms: int = Field(
        60_000, ge=0, description="PostgreSQL idle_in_transaction_session_timeout (0 = none).")
    db_keepalive_idle_s: int = Field(30, ge=0, description="TCP keepalive idle seconds to PostgreSQL (0 = off).")
    db_ping_after_idle_s: float = Field(10.0, ge=0, description=(
        "Ping a pooled PostgreSQL connection on checkout only after it sat idle this long (0 = on every checkout)."))
    db_prepare_threshold: int = Field(5, ge=0, description=(
        "PostgreSQL: prepare a statement server-side after this many runs on a connection (0 = never; use 0 behind "
        "a transaction-mode pooler that does not track prepared statements, e.g. PgBouncer before 1.21)."))
    # --- Redis client -------------------------------------------------------------------------
    redis_socket_timeout_s: float = Field(5.0, gt=0, description="Read/write timeout of Redis commands.")
    redis_connect_timeout_s: float = Field(2.0, gt=0, description="Timeout to connect to Redis.")
    redis_health_check_interval_s: int = Field(30, ge=0, description="Ping an idle Redis connection before use.")
    redis_keepalive: bool = Field(True, description="TCP keepalive on Redis connections.")

    max_request_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(600, ge=1, description="Default per-key request budget per minute.")
    webhook_rate_limit_per_address: int = Field(
        3000, ge=1, description="Webhook deliveries per minute accepted from one client address.")
    webhook_rate_limit_per_source: int = Field(
        3000, ge=1, description="Webhook deliveries per minute accepted for one source.")
    soft_delete_days: int = Field(30, ge=0)
    egress_allow_local_targets: bool = Field(
        False, description="Let an org's allowlist admit loopback (127.0.0.0/8, ::1) and link-local (169.254.0.0/16, "
                           "fe80::/10) outbound webhook / REST-hook targets; off: refused whatever the allowlist says.")
    webhook_retry_schedule_s: list[float] | None = Field(
        None, description="Seconds before each outbound delivery attempt (JSON list; the first is normally 0); "
                          "unset = the deliveries retry policy (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).")
    event_max_attempts: int = Field(
        6, ge=1, le=50, description="Processing attempts of an inbound event before it becomes a dead letter.")
    enrichment_debounce_s: float = Field(
        30.0, ge=0, description="Seconds an inferred property waits after the latest change before it is refreshed.")
    source_clock_skew_s: int = Field(
        300, ge=0, description="A sourceTimestamp further than this in the future is clamped to the receipt time.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    embedder: str = Field("wordllama", description="wordllama | minilm | litellm:<model> (e.g. litellm:openai/text-embedding-3-small)")

    crm_test_hosts: str = Field(
        "", description="Comma-separated hosts a CRM api_base/instance_url may name besides the providers' own "
                        "(local fakes in tests, an on-premise proxy); operator-only.")

    secret_keys: SecretStr | None = Field(
        None, description='Keyring for secrets at rest, JSON {"primary": id, "keys": {id: base64url 32 bytes}}; '
                          "unset = <data dir>/secret_keys.json (created 0600). `memrelay secrets rotate` rotates.")

    llm_model: str | None = Field(None, description="litellm model for tier basic; unset = no LLM.")
    llm_model_pro: str | None = None
    llm_model_ultra: str | None = None
    llm_api_base: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(3, ge=0, le=10)
    llm_monthly_budget_usd: float | None = Field(None, ge=0, description="Default per-org monthly LLM budget.")
    llm_prices: dict[str, LLMPrice] = Field(
        default_factory=dict,
        description='Prices of models litellm cannot price, JSON: {"openai/my-model": {"input_per_mtok": 0.5, '
                    '"output_per_mtok": 1.5}} (USD per million tokens). A budget refuses unpriced models.')

    @field_validator("database_url", "milvus_uri", "redis_url", "llm_model", "llm_model_pro", "llm_model_ultra",
                     "llm_api_base", "public_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        if v is not None and v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://"):]
        if v is not None and v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://"):]
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @model_validator(mode="after")
    def _tiers_need_basic(self) -> Settings:
        if (self.llm_model_pro or self.llm_model_ultra) and not self.llm_model:
            raise ValueError("MEMRELAY_LLM_MODEL must be set when a pro/ultra model is configured")
        return self

    # --- derived locations -------------------------------------------------------------------
    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'memrelay.db').resolve()}"

    @property
    def milvus_target(self) -> str:
        return self.milvus_uri or str((self.data_dir / "milvus.db").resolve())

    @property
    def embedded_redis_socket(self) -> Path:
        return (self.data_dir / "redis" / "redis.sock").resolve()

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def crm_test_host_list(self) -> list[str]:
        return [h.strip() for h in self.crm_test_hosts.split(",") if h.strip()]

    @property
    def llm_configured(self) -> bool:
        return self.llm_model is not None

    def ensure_data_dir(self) -> Path:
        """Create the data dir (0700) and, for the embedded SQLite store, its database file (0600) so SQLite
        (and its -wal/-shm files, which copy the database's mode) never creates it world-readable."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.database_url is None:
            db_file = self.data_dir / "memrelay.db"
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT, 0o600))
            db_file.chmod(0o600)
        return self.data_dir


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into one clear ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            var = ENV_PREFIX + loc[0].upper() if loc else "MEMRELAY_*"
            problems.append(f"{var}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems), details={"problems": problems}) from None
