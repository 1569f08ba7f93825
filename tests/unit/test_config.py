"""Settings: defaults, the embedded paths, and one-line misconfiguration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import ConfigError, Settings, load_settings


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("/data/mai.db")
    assert settings.should_auto_migrate
    assert settings.redis_url is None
    assert settings.qdrant_url is None
    assert settings.llm_base_url == "http://localhost:1234/v1"
    assert settings.bcrypt_rounds == 12


def test_postgres_url_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAI_DATABASE_URL", "postgresql://u:p@db:5432/mai")
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+asyncpg://u:p@db:5432/mai"
    assert settings.postgres_conninfo == "postgresql://u:p@db:5432/mai"
    assert not settings.should_auto_migrate


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAI_DATABASE_URL", "mysql://nope"),
        ("MAI_REDIS_URL", "http://localhost:6379"),
        ("MAI_LLM_BASE_URL", "localhost:1234"),
        ("MAI_ACCESS_TOKEN_TTL_MINUTES", "zero"),
        ("MAI_PLANNER_APPROVAL", "sometimes"),
        ("MAI_PLANNER_FAILURE_POLICY", "ignore"),
        ("MAI_MODERATION_REVIEW_THRESHOLD", "0.9"),
        ("MAI_RUN_DURABILITY", "sometimes"),
        ("MAI_RUN_LEASE_SECONDS", "zero"),
    ],
)
def test_misconfiguration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    line = str(caught.value)
    assert line.startswith(variable + ":")
    assert "\n" not in line


def test_the_older_lock_setting_still_sets_the_run_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAI_AGENT_RUN_STALE_SECONDS", "7")
    assert load_settings().run_lease_seconds == 7
    monkeypatch.setenv("MAI_RUN_LEASE_SECONDS", "4")
    assert load_settings().run_lease_seconds == 4
    assert Settings(run_lease_seconds=2).run_lease_seconds == 2


def test_production_requires_secret_and_real_admin_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAI_ENV", "production")
    with pytest.raises(ConfigError, match="MAI_JWT_SECRET"):
        load_settings()
    monkeypatch.setenv("MAI_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("MAI_ADMIN_EMAIL", "root@example.com")
    monkeypatch.setenv("MAI_ADMIN_PASSWORD", "change-me-admin")
    with pytest.raises(ConfigError, match="MAI_ADMIN_PASSWORD"):
        load_settings()
    monkeypatch.setenv("MAI_ADMIN_PASSWORD", "a-real-password")
    assert load_settings().env == "production"
