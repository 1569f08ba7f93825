"""Daily token budgets: exhaustion, the reset at UTC midnight, per-user budgets set by admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.clock import FrozenClock
from tests.api.conftest import Start
from tests.api.usage_helpers import QUERY, STREAM, UsageApp, direct
from tests.conftest import Account
from tests.fake_llm import ScriptedChatModel, scripted

pytestmark = pytest.mark.usefixtures("backend")


def answers(count: int) -> ScriptedChatModel:
    """A model that answers `count` direct turns."""
    return scripted(*[reply for i in range(count) for reply in direct(f"Answer {i}.")])


async def _patch_budget(ua: UsageApp, account: Account, value: int | None) -> dict[str, Any]:
    response = await ua.client.patch(
        f"/api/v1/users/{account.id}",
        json={"daily_token_budget": value},
        headers=ua.admin.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_budget_exhaustion_and_reset_at_midnight(start: Start, clock: FrozenClock) -> None:
    # Ahead of the real date: access tokens are also checked against the real clock.
    clock.set(datetime(2027, 5, 4, 22, 0, tzinfo=UTC))
    ua = await start(answers(3), daily_token_budget=20)
    before = await ua.usage()
    assert before["budget"] == {
        "daily_tokens": 20,
        "used_today": 0,
        "remaining": 20,
        "resets_at": "2027-05-05T00:00:00Z",
    }
    first = await ua.turn()  # starts under budget; its tokens take the user over it
    used = first["usage"]["input_tokens"] + first["usage"]["output_tokens"]
    assert used >= 20

    for path in (QUERY, STREAM):
        refused = await ua.client.post(path, json={"message": "more"}, headers=ua.user.headers)
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"] == "token_budget_exceeded"
        assert "2027-05-05T00:00:00" in body["detail"]
        assert body["meta"]["resets_at"] == "2027-05-05T00:00:00+00:00"
        assert body["meta"]["daily_tokens"] == 20
        assert body["meta"]["used_today"] == used
        assert refused.headers["Retry-After"] == str(2 * 3600)

    usage = await ua.usage()
    assert usage["budget"]["remaining"] == 0
    assert usage["budget"]["used_today"] == used
    assert usage["totals"]["turns"] == 1  # refused turns neither ran nor were recorded
    conversations = await ua.client.get("/api/v1/agent/conversations", headers=ua.user.headers)
    assert conversations.json()["total"] == 1

    # Another user has a budget of their own.
    other = await ua.new_user()
    assert (await ua.turn(other))["answer"] == "Answer 1."

    clock.set(datetime(2027, 5, 4, 23, 59, 59, tzinfo=UTC))
    await ua.login(ua.user)
    still = await ua.client.post(QUERY, json={"message": "late"}, headers=ua.user.headers)
    assert still.status_code == 429
    assert still.headers["Retry-After"] == "1"

    clock.set(datetime(2027, 5, 5, 0, 0, 1, tzinfo=UTC))  # a new UTC day
    await ua.login(ua.user)
    assert (await ua.usage())["budget"]["remaining"] == 20
    assert (await ua.turn())["answer"] == "Answer 2."


async def test_admin_sets_a_users_own_budget(start: Start, clock: FrozenClock) -> None:
    ua = await start(answers(5))  # MAI_DAILY_TOKEN_BUDGET is off
    other = await ua.new_user()
    assert (await ua.usage())["budget"]["daily_tokens"] is None

    shown = await _patch_budget(ua, ua.user, 1)
    assert shown["daily_token_budget"] == 1
    me = await ua.client.get("/api/v1/users/me", headers=ua.user.headers)
    assert me.json()["daily_token_budget"] == 1
    await ua.turn()
    refused = await ua.client.post(QUERY, json={"message": "x"}, headers=ua.user.headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "token_budget_exceeded"
    await ua.turn(other)  # no budget for the other user

    big = await _patch_budget(ua, ua.user, 1_000_000)
    assert big["daily_token_budget"] == 1_000_000
    usage = await ua.usage()
    assert usage["budget"]["daily_tokens"] == 1_000_000
    assert usage["budget"]["remaining"] == 1_000_000 - usage["budget"]["used_today"]
    await ua.turn()

    cleared = await _patch_budget(ua, ua.user, None)  # back to the default: off
    assert cleared["daily_token_budget"] is None
    await ua.turn()

    invalid = await ua.client.patch(
        f"/api/v1/users/{ua.user.id}", json={"daily_token_budget": -1}, headers=ua.admin.headers
    )
    assert invalid.status_code == 422
    forbidden = await ua.client.patch(
        f"/api/v1/users/{ua.user.id}", json={"daily_token_budget": 5}, headers=ua.user.headers
    )
    assert forbidden.status_code == 403
    # Other fields are left alone when only the budget changes, and vice versa.
    renamed = await ua.client.patch(
        f"/api/v1/users/{ua.user.id}", json={"is_active": True}, headers=ua.admin.headers
    )
    assert renamed.json()["daily_token_budget"] is None


async def test_zero_exempts_a_user_from_the_default_budget(start: Start) -> None:
    ua = await start(answers(3), daily_token_budget=1)
    await ua.turn()
    assert (
        await ua.client.post(QUERY, json={"message": "x"}, headers=ua.user.headers)
    ).status_code == 429
    await _patch_budget(ua, ua.user, 0)
    usage = await ua.usage()
    assert usage["budget"]["daily_tokens"] is None
    assert usage["budget"]["remaining"] is None
    await ua.turn()
    await ua.turn()


async def test_redis_down_budgets_and_analytics_still_work(start: Start) -> None:
    # Nothing listens on port 1: the cache fails open, answers come from the database.
    ua = await start(answers(2), daily_token_budget=1, redis_url="redis://127.0.0.1:1/0")
    await ua.turn()
    refused = await ua.client.post(QUERY, json={"message": "x"}, headers=ua.user.headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "token_budget_exceeded"
    usage = await ua.usage()
    assert usage["totals"]["turns"] == 1
    assert usage["budget"]["remaining"] == 0
    assert (await ua.system())["totals"]["turns"] == 1
