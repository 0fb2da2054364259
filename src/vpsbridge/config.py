"""Settings for every vpsbridge process.

Sources, highest priority first: explicit keyword arguments (tests), environment variables
(``VPSBRIDGE_*``), a ``.env`` file in the working directory, an optional TOML file (``--config`` or
``VPSBRIDGE_CONFIG``), then the defaults. The defaults are the *embedded* mode: SQLite in a data
directory, the worker in the web process and an in-process cache. Setting ``database_url`` to a
PostgreSQL URL and ``redis_url`` switches to *scale-out* mode with nothing else to change.

Invalid values raise :class:`ConfigError`, whose message names the offending setting the way an
operator would type it (``VPSBRIDGE_DATABASE_URL``), so the CLI can print it and exit with code 2.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "VPSBRIDGE_"

#: Periodic tasks and their default interval in seconds (0 disables a task). Capability issues add
#: their own tasks; an interval for an unknown task name is kept and ignored, so a config file can be
#: shared between versions.
DEFAULT_TASK_INTERVALS: dict[str, int] = {
    "upstream_log_purge": 3600,
    "job_log_purge": 3600,
    "dns_reconcile": 86400,
    "stock_recalc": 7200,
    "usage_sync": 86400,
}


class ConfigError(Exception):
    """A setting is missing or invalid; ``str()`` is a message meant for an operator."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vpsbridge"


class Settings(BaseSettings):
    """Every knob of vpsbridge. Field names map to ``VPSBRIDGE_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # --- where state lives -------------------------------------------------------------------
    data_dir: Path = Field(default_factory=_default_data_dir, description="Directory for SQLite and keys.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/vpsbridge.db.",
    )
    redis_url: str | None = Field(default=None, description="redis://host:port/db enables the Redis cache.")
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    db_pool_size: int = Field(default=10, ge=1)

    # --- secrets ------------------------------------------------------------------------------
    encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Fernet keys, newest first. Empty in embedded mode: a key file in data_dir is used.",
    )
    bridge_secret: SecretStr | None = Field(default=None, description="Shared HMAC secret of the PHP bridge.")
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token required by /metrics.")
    session_secret: SecretStr | None = Field(default=None, description="Signs cookies; generated if empty.")

    # --- web ----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="External base URL used in printed links.")
    secure_cookies: bool = Field(default=True, description="Set the Secure flag on session cookies.")

    # --- worker and jobs ----------------------------------------------------------------------
    worker_concurrency: int = Field(default=8, ge=1, le=1000)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_heartbeat_seconds: float = Field(default=15.0, gt=0)
    job_max_attempts: int = Field(default=8, ge=1)
    job_backoff_base_seconds: float = Field(default=2.0, gt=0)
    job_backoff_max_seconds: float = Field(default=600.0, gt=0)
    job_log_retention_days: int = Field(default=90, ge=1)
    time_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies every engine delay (waits, backoff, leases); tests shrink it.",
    )
    task_intervals: dict[str, int] = Field(default_factory=dict)

    # --- upstream HTTP ------------------------------------------------------------------------
    upstream_connect_timeout: float = Field(default=10.0, gt=0)
    upstream_read_timeout: float = Field(default=30.0, gt=0)
    upstream_log_retention_days: int = Field(default=14, ge=0)
    upstream_log_body_bytes: int = Field(default=4096, ge=0)

    # --- DNS ----------------------------------------------------------------------------------
    dns_resolvers: list[str] = Field(
        default_factory=list, description="Nameservers for forward confirmation; empty = the system's."
    )
    dns_resolver_port: int = Field(default=53, ge=1, le=65535, description="Port of those nameservers.")
    dns_resolver_timeout: float = Field(default=3.0, gt=0, description="Seconds per forward lookup.")
    dns_fcrdns_positive_ttl: float = Field(default=300.0, ge=0, description="Cache a confirmation.")
    dns_fcrdns_negative_ttl: float = Field(default=30.0, ge=0, description="Cache a non-confirmation.")
    dns_ptr_private: bool = Field(default=False, description="Also write PTRs for private addresses.")

    # --- WHMCS API (vpsbridge reporting back to billing) ---------------------------------------
    whmcs_url: str | None = Field(
        default=None, description="WHMCS system URL, e.g. https://billing.example.com/."
    )
    whmcs_api_identifier: str | None = Field(default=None, description="WHMCS API credential identifier.")
    whmcs_api_secret: SecretStr | None = Field(default=None, description="WHMCS API credential secret.")
    whmcs_api_access_key: SecretStr | None = Field(
        default=None, description="WHMCS $api_access_key (instead of an IP allow-list entry)."
    )
    whmcs_verify_tls: bool = Field(default=True, description="Verify the WHMCS TLS certificate.")

    # --- logs ---------------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        allowed = ("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://", "postgres://")
        if not value.startswith(allowed):
            raise ValueError("must start with sqlite+aiosqlite://, postgresql+asyncpg:// or postgresql://")
        if value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("task_intervals")
    @classmethod
    def _check_intervals(cls, value: dict[str, int]) -> dict[str, int]:
        for name, seconds in value.items():
            if seconds < 0:
                raise ValueError(f"interval of task {name!r} must be >= 0 (0 disables it)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_path = _CONFIG_FILE.get("path")
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # --- derived values -----------------------------------------------------------------------
    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'vpsbridge.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def mode(self) -> Literal["embedded", "scale-out"]:
        """Embedded = SQLite; scale-out = PostgreSQL (Redis is optional but recommended)."""
        return "embedded" if self.is_sqlite else "scale-out"

    def interval(self, task: str) -> int:
        """Interval in seconds of a periodic task (0 = disabled)."""
        if task in self.task_intervals:
            return self.task_intervals[task]
        return DEFAULT_TASK_INTERVALS.get(task, 0)

    def scaled(self, seconds: float) -> float:
        """An engine delay after applying ``time_scale``."""
        return seconds * self.time_scale


# The TOML path is process-wide state chosen by ``--config`` before settings are first loaded.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def _env_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + "__".join(parts).upper() if parts else "configuration"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings, turning validation failures into one :class:`ConfigError` per call.

    ``config_file`` (or ``VPSBRIDGE_CONFIG``) names an optional TOML file whose keys are the field
    names (``database_url = "..."``, ``[task_intervals]``).
    """
    path = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if path is not None:
        toml = Path(path)
        if not toml.is_file():
            raise ConfigError(f"--config / {ENV_PREFIX}CONFIG: file not found: {toml}")
        _CONFIG_FILE["path"] = toml
    else:
        _CONFIG_FILE["path"] = None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _env_name(tuple(err["loc"]))
            if err["type"] == "extra_forbidden":
                lines.append(f"{name}: unknown setting")
            else:
                lines.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    except Exception as exc:  # a TOML syntax error or an unreadable .env file
        raise ConfigError(f"invalid configuration: {exc}") from None
