"""MAI_SMTP_URL parsing and its validation in Settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.core.mail import parse_smtp_url


def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://mailer:p%40ss@mail.example.com:587?starttls=true")
    assert (plain.host, plain.port, plain.username, plain.password) == (
        "mail.example.com",
        587,
        "mailer",
        "p@ss",
    )
    assert plain.start_tls is True
    assert plain.use_tls is False
    tls = parse_smtp_url("smtps://mail.example.com")
    assert (tls.port, tls.use_tls, tls.start_tls, tls.username) == (465, True, False, None)
    assert parse_smtp_url("smtp://localhost").port == 25


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://mail.example.com", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtp://host:notaport", "invalid port"),
    ],
)
def test_bad_smtp_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_smtp_url(url)


def test_settings_validate_approval_options() -> None:
    with pytest.raises(ValidationError, match="smtp"):
        Settings(_env_file=None, smtp_url="mail.example.com")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="both name send_email"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            approval_required_tools="send_email,http_api",
            approval_exempt_tools="send_email",
        )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, approval_required_tools=" http_api , calculator", smtp_url=""
    )
    assert settings.approval_required_tools == ["http_api", "calculator"]
    assert settings.smtp_url is None
