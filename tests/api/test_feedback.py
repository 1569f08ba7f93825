"""Feedback: create, update, isolation, validation, the conversation view, admin lists and stats."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.core.clock import FrozenClock
from tests.api.usage_helpers import FEEDBACK, UsageApp, direct, start_usage_app
from tests.conftest import Account, AppFactory, SettingsFactory
from tests.fake_llm import scripted

pytestmark = pytest.mark.usefixtures("backend")

CONVERSATIONS = "/api/v1/agent/conversations"


@pytest.fixture
async def ua(app_factory: AppFactory, settings_factory: SettingsFactory) -> AsyncIterator[UsageApp]:
    """An app whose model answers twelve direct turns."""
    model = scripted(*[reply for i in range(12) for reply in direct(f"Answer {i}.")])
    usage_app = await start_usage_app(app_factory, settings_factory, model)
    yield usage_app
    await usage_app.client.aclose()


async def _send(ua: UsageApp, account: Account, **body: Any) -> Any:
    return await ua.client.post(FEEDBACK, json=body, headers=account.headers)


async def _list(ua: UsageApp, **params: Any) -> dict[str, Any]:
    response = await ua.client.get(FEEDBACK, params=params, headers=ua.admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_then_update_and_show_on_the_message(ua: UsageApp) -> None:
    turn = await ua.turn(message="Tell me something")
    created = await _send(
        ua,
        ua.user,
        message_id=turn["message_id"],
        rating="up",
        score=5,
        comment="  Spot on.  ",
        tags=["Accurate", "fast", "accurate"],
    )
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["rating"] == "up"
    assert first["score"] == 5
    assert first["comment"] == "Spot on."
    assert first["tags"] == ["accurate", "fast"]
    assert first["message_id"] == turn["message_id"]
    assert first["conversation_id"] == turn["conversation_id"]
    assert first["user_id"] == ua.user.id

    updated = await _send(ua, ua.user, message_id=turn["message_id"], rating="down", tags=["wrong"])
    assert updated.status_code == 200, updated.text
    second = updated.json()
    assert second["id"] == first["id"]  # the same feedback, replaced
    assert (second["rating"], second["score"], second["comment"]) == ("down", None, None)
    assert second["tags"] == ["wrong"]
    assert (await _list(ua))["total"] == 1

    detail = (
        await ua.client.get(f"{CONVERSATIONS}/{turn['conversation_id']}", headers=ua.user.headers)
    ).json()
    user_message, answer = detail["messages"]
    assert user_message["feedback"] is None
    assert answer["feedback"]["rating"] == "down"
    assert answer["feedback"]["tags"] == ["wrong"]
    assert answer["feedback"]["id"] == first["id"]


async def test_feedback_is_only_for_your_own_assistant_messages(ua: UsageApp) -> None:
    turn = await ua.turn()
    detail = (
        await ua.client.get(f"{CONVERSATIONS}/{turn['conversation_id']}", headers=ua.user.headers)
    ).json()
    user_message_id = detail["messages"][0]["id"]

    own_question = await _send(ua, ua.user, message_id=user_message_id, rating="up")
    assert own_question.status_code == 400
    assert own_question.json()["error"] == "not_an_assistant_message"

    stranger = await ua.new_user()
    for message_id in (turn["message_id"], user_message_id, str(uuid.uuid4())):
        hidden = await _send(ua, stranger, message_id=message_id, rating="down")
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["error"] == "message_not_found"
    assert (await _list(ua))["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"rating": "meh"},
        {"rating": "up", "score": 0},
        {"rating": "up", "score": 6},
        {"rating": "up", "comment": "x" * 2001},
        {"rating": "up", "tags": ["x" * 65]},
        {"rating": "up", "tags": [""]},
        {"rating": "up", "tags": [f"t{i}" for i in range(11)]},
        {"rating": "up", "unknown": 1},
        {},
    ],
)
async def test_invalid_feedback_is_422(ua: UsageApp, body: dict[str, Any]) -> None:
    turn = await ua.turn()
    payload = {"message_id": turn["message_id"], **body} if body else {}
    response = await ua.client.post(FEEDBACK, json=payload, headers=ua.user.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"


async def test_longest_comment_is_accepted(ua: UsageApp) -> None:
    turn = await ua.turn()
    response = await _send(
        ua, ua.user, message_id=turn["message_id"], rating="up", comment="y" * 2000
    )
    assert response.status_code == 201
    assert len(response.json()["comment"]) == 2000


async def test_admin_lists_with_filters_and_pages(ua: UsageApp, clock: FrozenClock) -> None:
    alice, bob = ua.user, await ua.new_user()
    plan = [
        (alice, "up", 5, ["fast"]),
        (alice, "down", 1, ["wrong", "slow"]),
        (bob, "up", 4, ["fast", "clear"]),
        (bob, "down", None, ["wrong"]),
    ]
    start = clock.now()
    ids = []
    for account, rating, score, tags in plan:
        turn = await ua.turn(account)
        response = await _send(
            ua, account, message_id=turn["message_id"], rating=rating, score=score, tags=tags
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        clock.advance(timedelta(hours=1))
        for signed_in in (alice, bob, ua.admin):
            await ua.login(signed_in)

    everything = await _list(ua)
    assert everything["total"] == 4
    assert [item["id"] for item in everything["items"]] == ids[::-1]  # newest first
    assert everything["items"][0]["model"] == "scripted-fake"

    assert {i["id"] for i in (await _list(ua, rating="down"))["items"]} == {ids[1], ids[3]}
    assert {i["id"] for i in (await _list(ua, tag="FAST"))["items"]} == {ids[0], ids[2]}
    assert {i["id"] for i in (await _list(ua, user_id=bob.id))["items"]} == {ids[2], ids[3]}
    both = await _list(ua, rating="up", user_id=bob.id)
    assert [i["id"] for i in both["items"]] == [ids[2]]

    window = {
        "from": (start + timedelta(minutes=30)).isoformat(),
        "to": (start + timedelta(hours=2, minutes=30)).isoformat(),
    }
    assert {i["id"] for i in (await _list(ua, **window))["items"]} == {ids[1], ids[2]}

    page = await _list(ua, limit=3, offset=3)
    assert page["total"] == 4
    assert [i["id"] for i in page["items"]] == [ids[0]]

    refused = await ua.client.get(FEEDBACK, headers=alice.headers)
    assert refused.status_code == 403
    bad = await ua.client.get(
        FEEDBACK, params={"from": "2027-01-02", "to": "2027-01-01"}, headers=ua.admin.headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_range"


async def test_stats_per_day_and_model_with_scores_and_tags(
    ua: UsageApp, clock: FrozenClock
) -> None:
    # Ahead of the real date: access tokens are also checked against the real clock.
    clock.set(datetime(2027, 6, 1, 22, 0, tzinfo=UTC))
    for account in (ua.user, ua.admin):
        await ua.login(account)
    day_one = [("up", 5, ["fast", "clear"]), ("up", 4, ["fast"]), ("down", 1, ["wrong"])]
    for rating, score, tags in day_one:
        turn = await ua.turn()
        sent = await _send(
            ua, ua.user, message_id=turn["message_id"], rating=rating, score=score, tags=tags
        )
        assert sent.status_code == 201
    clock.set(datetime(2027, 6, 2, 9, 0, tzinfo=UTC))
    for account in (ua.user, ua.admin):
        await ua.login(account)
    turn = await ua.turn()
    sent = await _send(ua, ua.user, message_id=turn["message_id"], rating="down", tags=["fast"])
    assert sent.status_code == 201

    response = await ua.client.get(
        f"{FEEDBACK}/stats",
        params={"from": "2027-06-01", "to": "2027-06-02"},
        headers=ua.admin.headers,
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["totals"] == {
        "up": 2,
        "down": 2,
        "total": 4,
        "up_share": 0.5,
        "down_share": 0.5,
        "avg_score": pytest.approx(10 / 3, abs=1e-3),
    }
    assert [(d["day"], d["up"], d["down"]) for d in stats["by_day"]] == [
        ("2027-06-01", 2, 1),
        ("2027-06-02", 0, 1),
    ]
    assert stats["by_day"][0]["up_share"] == pytest.approx(0.6667, abs=1e-4)
    assert stats["by_day"][1]["avg_score"] is None
    [model] = stats["by_model"]
    assert (model["model"], model["up"], model["down"]) == ("scripted-fake", 2, 2)
    assert stats["top_tags"][0] == {"tag": "fast", "count": 3}
    assert {t["tag"] for t in stats["top_tags"]} == {"fast", "clear", "wrong"}

    only_first_day = await ua.client.get(
        f"{FEEDBACK}/stats",
        params={"from": "2027-06-01", "to": "2027-06-01"},
        headers=ua.admin.headers,
    )
    assert only_first_day.json()["totals"]["total"] == 3
    downs = await ua.client.get(
        f"{FEEDBACK}/stats", params={"rating": "down"}, headers=ua.admin.headers
    )
    assert downs.json()["totals"]["down"] == 2
    assert downs.json()["totals"]["up"] == 0
    refused = await ua.client.get(f"{FEEDBACK}/stats", headers=ua.user.headers)
    assert refused.status_code == 403
