"""The one settings object: every knob MAI has, read from `MAI_*` variables and `.env`."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ADMIN_PASSWORD = "change-me-admin"


class Environment(StrEnum):
    """Where the service runs; production turns on the strict checks."""

    development = "development"
    test = "test"
    production = "production"


class StartupError(Exception):
    """A reason the service cannot start: one line, printed without a traceback, naming what
    to do. `label` says which kind (the README's table of start errors lists them)."""

    label: ClassVar[str] = "start error"

    def __init__(self, line: str) -> None:
        self.line = line
        super().__init__(line)


class ConfigError(StartupError):
    """Misconfiguration, reported at start as one line naming the variable."""

    label = "configuration error"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Configuration for the whole service; unset URLs select the embedded parts."""

    model_config = SettingsConfigDict(
        env_prefix="MAI_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: object) -> object:
        """The one rule for empty values: `MAI_X=` (a copied .env.example, compose's
        `${MAI_X:-}`) or a blank keyword means unset, for every field and every source."""
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if not (isinstance(value, str) and not value.strip())
            }
        return data

    env: Environment = Environment.development
    data_dir: Path = Path("./data")

    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    auto_migrate: bool | None = None

    redis_url: str | None = None
    redis_prefix: str = "mai:"

    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None

    # Knowledge base: uploads, chunking, embeddings and the Qdrant collection.
    kb_max_upload_mb: int = Field(default=25, ge=1, le=2048)
    kb_max_unpacked_mb: int = Field(default=200, ge=1, le=16384)
    # None: the embedding model's window (its sentence-transformers config, or a known model).
    kb_chunk_tokens: int | None = Field(default=None, ge=16, le=8192)
    kb_chunk_overlap: int = Field(default=50, ge=0, le=4096)
    kb_qdrant_collection: str | None = None
    # Knowledge-base ingestion isolation: parsing runs in a child process with these limits, and
    # a pool of workers serves users round-robin so one user's files cannot starve the others.
    kb_parse_max_memory_mb: int = Field(default=1024, ge=64, le=65536)
    kb_parse_timeout_seconds: float = Field(default=120.0, gt=0, le=86400)
    kb_max_text_chars: int = Field(default=5_000_000, ge=1000, le=500_000_000)
    kb_workers: int = Field(default=2, ge=1, le=64)
    # Knowledge-base documents as people write them: chunks under this many tokens are merged
    # with a neighbouring section.
    kb_min_chunk_tokens: int = Field(default=50, ge=0, le=4096)
    # Knowledge-base relevance: the least cosine similarity a dense hit needs (dense mode, and the
    # dense side of hybrid; keyword hits need a shared term instead; None: no threshold), and
    # optional reranking of the top candidates by the chat model in one structured call.
    kb_min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    kb_rerank: Literal["off", "llm"] = "off"
    kb_rerank_candidates: int = Field(default=20, ge=2, le=100)
    embedding_provider: Literal["fastembed", "openai"] = "fastembed"
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_model_path: Path | None = None
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1, le=65536)
    embedding_batch_size: int = Field(default=64, ge=1, le=2048)
    embedding_max_tokens: int = Field(default=512, ge=16, le=131072)
    # Knowledge base from URLs: hosts or networks (CIDR) a fetch may reach even though they are
    # loopback, private, link-local or metadata addresses; and the time one fetch may take.
    kb_url_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kb_url_timeout_seconds: float = Field(default=20.0, gt=0, le=600)

    @field_validator("kb_url_allowlist", mode="before")
    @classmethod
    def _url_allowlist(cls, value: object) -> object:
        return _split_csv(value)

    llm_base_url: str = "http://localhost:1234/v1"
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_context_tokens: int = Field(default=8192, ge=512)
    health_timeout_seconds: float = Field(default=2.0, gt=0)

    # Agent API: history kept in the model's context, SSE heartbeats, run liveness.
    agent_max_history_messages: int = Field(default=50, ge=2, le=1000)
    agent_stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # At shutdown, turns still running get this long to finish before they are interrupted.
    agent_shutdown_grace_seconds: float = Field(default=20.0, ge=0)

    # The run engine: every run of every graph is a row in the runs table, claimed by a
    # worker under a lease renewed by heartbeat; a lease that expires hands the run to
    # another worker, which resumes it from its last checkpoint. The lease replaced the
    # conversation lock of the first agent API, whose MAI_AGENT_RUN_STALE_SECONDS (how long an
    # unrefreshed lock meant a dead process) still sets it.
    run_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        validation_alias=AliasChoices(
            "MAI_RUN_LEASE_SECONDS", "MAI_AGENT_RUN_STALE_SECONDS", "run_lease_seconds"
        ),
    )
    run_concurrency: int = Field(default=16, ge=1, le=1000)
    run_queue_limit: int = Field(default=1000, ge=1)
    run_events_ttl_seconds: float = Field(default=3600.0, gt=0)
    run_max_attempts: int = Field(default=3, ge=1, le=100)
    # When a step's checkpoint is written. `sync` (the default) writes it before the next step
    # starts, so a tool node only runs once the message asking for its calls is stored: a
    # worker killed mid-tool resumes with the same tool call ids (its side effects are
    # deduplicated by id) instead of asking the model again for new ones. `async` overlaps the
    # write with the next step (LangGraph's default; a crash can repeat a model call), `exit`
    # writes at the end only (a crash restarts the run). A run may ask for its own.
    run_durability: Literal["sync", "async", "exit"] = "sync"
    run_retry_window_seconds: float = Field(default=600.0, ge=0)
    run_timeout_seconds: float = Field(default=900.0, gt=0)
    run_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    # Whether this process executes runs (`mai serve` does by default; `mai worker` always).
    run_workers_enabled: bool = True
    # The graphs to serve (langgraph.json format); default: the project's langgraph.json.
    graphs_file: Path | None = None

    # Tools. web_search: SearXNG (MAI_WEB_SEARCH_URL = the instance), Tavily or Brave
    # (MAI_WEB_SEARCH_API_KEY; the URL defaults to the provider's API); off when unconfigured.
    # http_api: the APIs declared in MAI_API_TOOLS_FILE (YAML); off when unset.
    web_search_provider: Literal["searxng", "tavily", "brave"] | None = None
    web_search_url: str | None = None
    web_search_api_key: SecretStr | None = None
    api_tools_file: Path | None = None
    # Default per-call tool timeout, and the model <-> tools rounds allowed in one turn.
    tool_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_tool_iterations: int = Field(default=8, ge=1, le=50)

    @field_validator("web_search_provider", mode="before")
    @classmethod
    def _web_search_provider(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("web_search_url")
    @classmethod
    def _web_search_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL such as http://searxng:8080")
        return value.rstrip("/") if value else value

    @field_validator("api_tools_file")
    @classmethod
    def _api_tools_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from graphs.tools import ToolConfigError
            from graphs.tools.http_api import load_api_definitions

            try:
                load_api_definitions(value)
            except ToolConfigError as error:
                raise ValueError(str(error).removeprefix("MAI_API_TOOLS_FILE: ")) from None
        return value

    # MCP. Servers whose tools the agents use (MAI_MCP_SERVERS_FILE, YAML; see the README): each
    # connection is pinged every MAI_MCP_PING_SECONDS and, while down, retried with backoff from
    # MAI_MCP_RETRY_SECONDS; the start waits at most MAI_MCP_START_TIMEOUT_SECONDS for them.
    # MAI as an MCP server at /mcp offers the graphs of MAI_MCP_GRAPHS as tools.
    mcp_servers_file: Path | None = None
    mcp_ping_seconds: float = Field(default=15.0, gt=0, le=3600)
    mcp_retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    mcp_start_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    mcp_graphs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["assistant", "planner"]
    )

    @field_validator("mcp_servers_file")
    @classmethod
    def _mcp_servers_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from graphs.tools import ToolConfigError
            from graphs.tools.mcp_config import load_mcp_servers

            try:
                load_mcp_servers(value)
            except ToolConfigError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("mcp_graphs", mode="before")
    @classmethod
    def _mcp_graphs(cls, value: object) -> object:
        return _split_csv(value)

    # Human approval. Which tools need a person's approval: each tool's own flag,
    # overridden by these comma-separated lists of tool names; pending approvals expire (as
    # rejected, reason "expired") after MAI_APPROVAL_TIMEOUT_SECONDS, checked by a sweeper
    # every MAI_APPROVAL_SWEEP_SECONDS. The webhook gets a signed JSON POST on every request
    # and decision (X-MAI-Signature: HMAC-SHA256 hex of the body with the secret).
    approval_required_tools: Annotated[list[str], NoDecode] = Field(default_factory=list)
    approval_exempt_tools: Annotated[list[str], NoDecode] = Field(default_factory=list)
    approval_timeout_seconds: float = Field(default=86_400.0, gt=0)
    approval_sweep_seconds: float = Field(default=30.0, gt=0)
    approval_webhook_url: str | None = None
    approval_webhook_secret: SecretStr | None = None
    approval_webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    approval_webhook_backoff_seconds: float = Field(default=1.0, ge=0)
    # send_email: SMTP at MAI_SMTP_URL (smtp://user:pass@host:port, smtps:// for TLS,
    # ?starttls=true to upgrade); unset: approved emails go to the outbox table admins read.
    smtp_url: SecretStr | None = None
    smtp_from: str = "mai@localhost"

    # OpenAI-compatible API (/v1): the graphs offered as models, each as MAI_OPENAI_MODEL_PREFIX
    # + graph id (the bare graph id is accepted too), the public URL approval links point at,
    # and the largest chat-completions body taken (413 past it).
    openai_graphs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["assistant", "planner"]
    )
    openai_model_prefix: str = Field(default="mai-", max_length=50)
    openai_public_url: str | None = None
    openai_max_body_bytes: int = Field(default=1_000_000, ge=1024)

    @field_validator("openai_graphs", mode="before")
    @classmethod
    def _openai_graphs(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("approval_required_tools", "approval_exempt_tools", mode="before")
    @classmethod
    def _tool_lists(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("approval_webhook_url")
    @classmethod
    def _approval_webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from app.core.mail import parse_smtp_url

            parse_smtp_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _approval_lists_disjoint(self) -> Settings:
        both = sorted(set(self.approval_required_tools) & set(self.approval_exempt_tools))
        if both:
            raise ValueError(
                "MAI_APPROVAL_REQUIRED_TOOLS and MAI_APPROVAL_EXEMPT_TOOLS both name "
                + ", ".join(both)
            )
        return self

    jwt_secret: SecretStr | None = None
    access_token_ttl_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)

    admin_email: str | None = None
    admin_password: SecretStr | None = None

    # Rate limits (sliding window of one minute; 0 turns a limit off).
    rate_limit_per_minute: int = Field(default=60, ge=0)
    auth_rate_limit_per_minute: int = Field(default=5, ge=0)

    # Usage, cost and budgets. Budget: tokens per user per UTC day (unset or 0: off);
    # prices: a YAML/JSON file of USD per million input/output tokens per model.
    daily_token_budget: int | None = Field(default=None, ge=0)
    model_prices_file: Path | None = None
    analytics_cache_seconds: int = Field(default=300, ge=0, le=86400)

    @field_validator("model_prices_file")
    @classmethod
    def _model_prices_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from app.core.pricing import PriceFileError, load_price_table

            try:
                load_price_table(value)
            except PriceFileError as error:
                raise ValueError(str(error)) from None
        return value

    # Metrics (GET /metrics, Prometheus text). Unset token: the endpoint is public, so keep it
    # on an internal network; set: scrapers must send `Authorization: Bearer <token>`.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    # Tracing: every agent run is traced to Langfuse when LANGFUSE_PUBLIC_KEY is set.
    # These three use Langfuse's own variable names (no MAI_ prefix). Spans are exported in the
    # background: a Langfuse outage never slows or fails a request.
    langfuse_public_key: str | None = Field(
        default=None, validation_alias=AliasChoices("LANGFUSE_PUBLIC_KEY", "langfuse_public_key")
    )
    langfuse_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LANGFUSE_SECRET_KEY", "langfuse_secret_key")
    )
    langfuse_host: str = Field(
        default="https://cloud.langfuse.com",
        validation_alias=AliasChoices("LANGFUSE_HOST", "LANGFUSE_BASE_URL", "langfuse_host"),
    )

    @field_validator("langfuse_host", mode="before")
    @classmethod
    def _langfuse_host(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// URL such as http://langfuse:3000")
            return value.rstrip("/")
        return value

    @model_validator(mode="after")
    def _langfuse_keys_together(self) -> Settings:
        if self.langfuse_public_key is not None and self.langfuse_secret_key is None:
            raise ValueError("LANGFUSE_SECRET_KEY must be set when LANGFUSE_PUBLIC_KEY is set")
        return self

    @property
    def tracing_enabled(self) -> bool:
        """Whether agent runs are traced to Langfuse (LANGFUSE_PUBLIC_KEY is set)."""
        return self.langfuse_public_key is not None

    # Planner, sentiment and moderation graphs: defaults of their run contexts. The graphs read
    # the same variables themselves when run without the service (LangGraph Studio).
    planner_approval: Literal["always", "never", "auto"] = "auto"
    planner_approval_cost_usd: float = Field(default=0.05, ge=0)
    planner_step_cost_usd: float = Field(default=0.01, ge=0)
    planner_failure_policy: Literal["fail_fast", "continue", "retry"] = "continue"
    planner_max_attempts: int = Field(default=3, ge=1, le=10)
    planner_step_timeout_seconds: float = Field(default=120.0, gt=0)
    sentiment_glossary: Path | None = None
    moderation_block_threshold: float = Field(default=0.8, ge=0, le=1)
    moderation_review_threshold: float = Field(default=0.5, ge=0, le=1)
    moderation_error_strategy: Literal["fail_fast", "continue"] = "continue"

    @field_validator("sentiment_glossary", mode="before")
    @classmethod
    def _glossary_empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _moderation_thresholds(self) -> Settings:
        if self.moderation_review_threshold > self.moderation_block_threshold:
            raise ValueError(
                "MAI_MODERATION_REVIEW_THRESHOLD: must not be above MAI_MODERATION_BLOCK_THRESHOLD"
            )
        return self

    # Security hardening: who may sign up, password rules, request limits before auth,
    # trusted proxies, account lockout, what /health shows without a token.
    # MAI_REGISTRATION: open (anyone signs up), invite (admins create users or issue
    # single-use invite codes) or closed (admins create users); unset: open, invite in production.
    registration: Literal["open", "invite", "closed"] | None = None
    invite_ttl_hours: int = Field(default=7 * 24, ge=1, le=24 * 365)
    # Passwords shorter than 12 characters need this many of: lower, upper, digit, other (0: off).
    password_min_classes: int = Field(default=3, ge=0, le=4)
    # JSON (and any non-upload) bodies; uploads are capped by MAI_KB_MAX_UPLOAD_MB instead.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_json_depth: int = Field(default=32, ge=2, le=512)
    # A client that stops sending its body for this long gets 408 (uvicorn: idle keep-alive).
    request_read_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # `mai serve`: request headers must be in within this long (slowloris); idle keep-alive.
    request_header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=600)
    max_streams_per_user: int = Field(default=10, ge=0)
    # Re-check the caller of an SSE stream at least this often (and on every event).
    stream_auth_recheck_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Addresses or CIDR networks whose X-Forwarded-For is believed; default: none.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Failed logins per account within the window before it is locked (0: no lockout).
    login_max_failures: int = Field(default=10, ge=0)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1, le=7 * 24 * 3600)
    # token: /health details (URLs, models, latencies) need an admin's or the metrics token.
    health_details: Literal["token", "public"] = "token"

    @field_validator("registration", mode="before")
    @classmethod
    def _registration(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: object) -> object:
        import ipaddress

        values = _split_csv(value)
        if isinstance(values, list):
            for item in values:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not an IP address or CIDR network such as 10.0.0.0/8"
                    ) from None
            return [
                str(ipaddress.ip_network(str(item), strict=False)) if "/" in str(item) else item
                for item in values
            ]
        return values

    @field_validator("admin_email")
    @classmethod
    def _admin_email(cls, value: str | None) -> str | None:
        if not value:
            return None
        from email_validator import EmailNotValidError, validate_email

        # The same check login applies: an address it refuses could never sign in.
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValueError(f"{value!r} can never sign in: {error}") from None
        return value

    @property
    def effective_registration(self) -> Literal["open", "invite", "closed"]:
        """MAI_REGISTRATION, defaulting to open (invite when MAI_ENV=production)."""
        if self.registration is not None:
            return self.registration
        return "invite" if self.env is Environment.production else "open"

    # Long-term memory: a LangGraph store (pgvector on PostgreSQL, sqlite-vec on SQLite) with a
    # semantic index on the knowledge base's embedding model. MAI_MEMORY_ENABLED=false turns
    # recall and writing off for the whole service; TTL unset keeps memories until deleted,
    # set, a memory not read for that many days expires (reads refresh it).
    memory_enabled: bool = True
    memory_ttl_days: float | None = Field(default=None, gt=0)
    memory_recall_k: int = Field(default=5, ge=1, le=50)
    memory_min_score: float = Field(default=0.3, ge=-1.0, le=1.0)
    memory_duplicate_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    memory_max_per_user: int = Field(default=1000, ge=1)

    @field_validator("memory_ttl_days", mode="before")
    @classmethod
    def _memory_ttl_empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    # Retention: what the sweeper (every MAI_RETENTION_SWEEP_SECONDS, MAI_RETENTION_BATCH_SIZE
    # threads or rows per statement) and `mai prune` remove. Each thread keeps its latest
    # checkpoint and the MAI_CHECKPOINT_HISTORY before it; threads with a run in progress are
    # never touched. Unset TTLs keep everything.
    checkpoint_history: int = Field(default=20, ge=0, le=10_000)
    thread_ttl_days: int | None = Field(default=None, ge=1)
    usage_retention_days: int | None = Field(default=None, ge=1)
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=200, ge=1, le=100_000)
    # The running summary of a long conversation is re-summarised past this many tokens (the
    # graph reads MAI_SUMMARY_MAX_TOKENS into its Context; validated here at start).
    summary_max_tokens: int = Field(default=1000, ge=50, le=100_000)

    # Operability: where `mai serve` listens and how many worker processes it starts (the
    # command's --host/--port/--workers options override these).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value[len(plain) :]
        if value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            return value
        raise ValueError(
            "must be a postgresql+asyncpg://user:pass@host/db URL, a sqlite+aiosqlite:///path URL, "
            "or unset for the embedded SQLite database"
        )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL, or unset for in-process parts")
        return value

    @field_validator("embedding_base_url")
    @classmethod
    def _embedding_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL such as http://localhost:1234/v1")
        return value.rstrip("/")

    @field_validator("llm_base_url")
    @classmethod
    def _llm_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL such as http://localhost:1234/v1")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_checks(self) -> Settings:
        if self.env is Environment.production:
            if self.jwt_secret is None or len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError(
                    "MAI_JWT_SECRET must be set to at least 32 characters when MAI_ENV=production"
                )
            if (
                self.admin_password is not None
                and self.admin_password.get_secret_value() == DEFAULT_ADMIN_PASSWORD
            ):
                raise ValueError(
                    "MAI_ADMIN_PASSWORD must not be the default password when MAI_ENV=production"
                )
        if self.kb_chunk_tokens is not None and self.kb_chunk_overlap >= self.kb_chunk_tokens:
            raise ValueError("MAI_KB_CHUNK_OVERLAP must be smaller than MAI_KB_CHUNK_TOKENS")
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("MAI_ADMIN_EMAIL and MAI_ADMIN_PASSWORD must be set together")
        if self.admin_password is not None and not (
            8 <= len(self.admin_password.get_secret_value().encode()) <= 72
        ):
            raise ValueError("MAI_ADMIN_PASSWORD must be 8 to 72 bytes long")
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mai.db').resolve()}"

    @property
    def uses_postgres(self) -> bool:
        """Whether the app database (and the checkpointer) is PostgreSQL."""
        return self.effective_database_url.startswith("postgresql")

    @property
    def should_auto_migrate(self) -> bool:
        """Upgrade the schema at start: on by default only for the embedded database."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return not self.uses_postgres

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind the app database, if it is SQLite."""
        url = self.effective_database_url
        if not url.startswith("sqlite"):
            return None
        return Path(url.split(":///", 1)[1])

    @property
    def postgres_conninfo(self) -> str | None:
        """A libpq URL for psycopg (the LangGraph checkpointer) derived from the app URL."""
        if not self.uses_postgres:
            return None
        return "postgresql://" + self.effective_database_url.split("://", 1)[1]

    @property
    def qdrant_path(self) -> Path:
        """Where Qdrant local mode kept its files (moved to the embedded engine at start)."""
        return self.data_dir / "qdrant"

    @property
    def kb_vectors_path(self) -> Path:
        """Where the embedded vector engine (Qdrant Edge) keeps its shards, one per collection."""
        return self.data_dir / "vectors"

    @property
    def kb_files_dir(self) -> Path:
        """Where the original files of knowledge-base documents are kept (one folder per user)."""
        return self.data_dir / "kb"

    @property
    def effective_embedding_base_url(self) -> str:
        """The OpenAI-compatible embeddings server: MAI_EMBEDDING_BASE_URL or the LLM server."""
        return self.embedding_base_url or self.llm_base_url

    @cached_property
    def jwt_signing_key(self) -> str:
        """The HS256 key: MAI_JWT_SECRET, or one generated once and kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL so two workers starting together agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def format_validation_error(error: ValidationError) -> str:
    """Turn a settings validation error into one line naming the variable."""
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if location:
        name = location[0]
        # Fields read under a name of their own (LANGFUSE_*) are reported under that name.
        return f"{name if name.isupper() else 'MAI_' + name.upper()}: {message}"
    return message


def load_settings() -> Settings:
    """Read the settings, raising ConfigError with one readable line on misconfiguration."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None
