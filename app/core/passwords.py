"""Password quality rules: not a common password, not the email, enough variety when short.

The common-password list (app/core/common-passwords.txt.gz, 19,640 entries, one lower-cased
password a line) is the list Django ships as django/contrib/auth/common-passwords.txt.gz
(Django 5.2.8, BSD-3-Clause, compiled by Royce Williams from leaked-password corpora). It is
bundled unchanged so that nothing is downloaded at run time; see README, "Security".
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from app.core.errors import BadRequest

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt.gz")
# Below this length a password must mix character classes (MAI_PASSWORD_MIN_CLASSES).
LONG_PASSWORD_CHARS = 12
# A local part this short ("a@x.org") would forbid most passwords: only longer ones count.
MIN_LOCAL_PART_CHARS = 3


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def character_classes(password: str) -> int:
    """How many of lower-case, upper-case, digits and other characters the password uses."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def check_password_quality(password: str, email: str | None, min_classes: int) -> None:
    """Refuse a common password, one containing the email's local part, or a short plain one.

    Each refusal is a 400 whose code and message name the rule that failed.
    """
    lowered = password.lower()
    if lowered in common_passwords():
        raise BadRequest(
            "This password is in the list of commonly used passwords; choose another.",
            code="password_too_common",
        )
    local_part = (email or "").split("@", 1)[0].strip().lower()
    if len(local_part) >= MIN_LOCAL_PART_CHARS and local_part in lowered:
        raise BadRequest(
            "The password must not contain your email address or its name part.",
            code="password_contains_email",
        )
    if len(password) < LONG_PASSWORD_CHARS and character_classes(password) < min_classes:
        raise BadRequest(
            f"A password shorter than {LONG_PASSWORD_CHARS} characters must use at least "
            f"{min_classes} of: lower-case letters, upper-case letters, digits, other "
            "characters. Use a longer password or mix more kinds of characters.",
            code="password_too_simple",
        )
