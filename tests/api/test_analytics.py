"""Usage analytics: events recorded per turn, cost from a price file, buckets, cache, validation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import inspect, select, text

from app.core.clock import FrozenClock
from app.core.db import create_engine, downgrade_schema
from app.models import UsageDaily, UsageEvent
from app.services.retention import retention_for
from tests.api.agent_helpers import parse_sse
from tests.api.conftest import Start
from tests.api.usage_helpers import (
    STREAM,
    SYSTEM,
    USAGE,
    direct,
    input_tokens_of,
    reply_tokens,
)
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.fake_llm import ask_tools, scripted, tool_call
from tests.kb.support import HashEmbedder, ingest

EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}

pytestmark = pytest.mark.usefixtures("backend")


async def test_completed_turn_records_tokens_from_the_model(start: Start) -> None:
    replies = direct("Paris is the capital of France.")
    ua = await start(scripted(*replies))
    body = await ua.turn(message="What is the capital of France?")
    inputs, outputs = input_tokens_of(ua.model), reply_tokens(*replies)
    assert len(ua.model.calls) == 2  # route + answer
    assert body["usage"] == {"input_tokens": inputs, "output_tokens": outputs}

    usage = await ua.usage()
    totals = usage["totals"]
    assert totals["turns"] == totals["completed"] == 1
    assert totals["failed"] == totals["awaiting_approval"] == 0
    assert totals["input_tokens"] == inputs
    assert totals["output_tokens"] == outputs
    assert totals["total_tokens"] == inputs + outputs
    assert totals["cost_usd"] == 0.0  # no price file: every model is free
    assert usage["user_id"] == ua.user.id
    assert len(usage["buckets"]) == 30  # the default range: the last 30 UTC days
    assert usage["buckets"][-1]["turns"] == 1
    assert sum(b["turns"] for b in usage["buckets"]) == 1
    [model] = usage["models"]
    assert model["model"] == "scripted-fake"
    assert model["turns"] == 1
    assert model["avg_latency_ms"] is not None
    assert usage["budget"]["daily_tokens"] is None  # MAI_DAILY_TOKEN_BUDGET is off
    assert usage["budget"]["remaining"] is None
    assert usage["budget"]["used_today"] == inputs + outputs

    other = await ua.new_user()
    assert (await ua.usage(other))["totals"]["turns"] == 0

    system = await ua.system()
    assert system["totals"]["turns"] == 1
    assert system["active_users"] == 1
    assert system["error_rate"] == 0.0
    assert system["latency_ms"]["p50"] is not None
    assert system["latency_ms"]["p95"] >= system["latency_ms"]["p50"]
    assert system["ttft_ms"] == {"p50": None, "p95": None}  # not streamed
    assert system["approval_wait_ms"] == {"p50": None, "p95": None}  # it never paused
    assert system["tools"] == []


async def test_tool_turn_records_tools_with_status(start: Start) -> None:
    replies = [
        {"route": "tools"},
        ask_tools(tool_call("calculator", {"expression": "2+2"})),
        "It is 4.",
    ]
    ua = await start(scripted(*replies))
    body = await ua.turn(message="What is 2+2?")
    assert body["usage"]["output_tokens"] == reply_tokens(*replies)
    assert body["usage"]["input_tokens"] == input_tokens_of(ua.model)
    system = await ua.system()
    assert system["tools"] == [
        {"name": "calculator", "calls": 1, "errors": 0, "rejected": 0, "statuses": {"ok": 1}}
    ]
    assert system["totals"]["input_tokens"] == body["usage"]["input_tokens"]


async def test_failed_turn_is_recorded_and_counts_in_the_error_rate(start: Start) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    ua = await start(
        scripted({"route": "direct"}, openai.APIConnectionError(request=request), *direct("Ok."))
    )
    failed = await ua.client.post(
        "/api/v1/agent/query", json={"message": "first"}, headers=ua.user.headers
    )
    assert failed.status_code == 503
    await ua.settle()
    usage = await ua.usage()
    assert usage["totals"]["failed"] == 1
    assert usage["totals"]["completed"] == 0
    # The route call succeeded before the answer call failed: its tokens count.
    assert usage["totals"]["input_tokens"] == input_tokens_of(ua.model, 0, 1)
    assert usage["totals"]["output_tokens"] == reply_tokens({"route": "direct"})
    assert (await ua.system())["error_rate"] == 1.0

    await ua.turn(message="second")
    usage = await ua.usage()
    assert (usage["totals"]["completed"], usage["totals"]["failed"]) == (1, 1)
    system = await ua.system()
    assert system["error_rate"] == 0.5
    [model] = system["models"]
    assert (model["turns"], model["failed"]) == (2, 1)


async def test_streamed_turn_records_tokens_and_time_to_first_token(start: Start) -> None:
    replies = direct("Streaming works word by word.")
    ua = await start(scripted(*replies))
    response = await ua.client.post(STREAM, json={"message": "stream"}, headers=ua.user.headers)
    assert response.status_code == 200, response.text
    events, _ = parse_sse(response.text)
    assert [e.event for e in events][-2:] == ["values", "end"]
    await ua.settle()
    usage = await ua.usage()
    assert usage["totals"]["input_tokens"] == input_tokens_of(ua.model)
    assert usage["totals"]["output_tokens"] == reply_tokens(*replies)
    assert usage["totals"]["completed"] == 1
    system = await ua.system()
    assert system["ttft_ms"]["p50"] is not None
    assert 0 <= system["ttft_ms"]["p50"] <= system["latency_ms"]["p50"]


async def test_cost_comes_from_the_yaml_price_file(start: Start, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "# USD per million tokens\n"
        "models:\n"
        "  scripted-fake: {input: 1000, output: 4000}\n"
        "  gpt-4o: {input: 2.5, output: 10}\n"
    )
    ua = await start(
        scripted(*direct("One."), *direct("Two more words.")), model_prices_file=prices
    )
    first = await ua.turn()
    second = await ua.turn()
    expected = sum(
        (t["usage"]["input_tokens"] * 1000 + t["usage"]["output_tokens"] * 4000) / 1_000_000
        for t in (first, second)
    )
    usage = await ua.usage()
    assert usage["totals"]["cost_usd"] == pytest.approx(expected, abs=1e-8)
    assert usage["totals"]["cost_usd"] > 0
    assert usage["models"][0]["cost_usd"] == pytest.approx(expected, abs=1e-8)
    system = await ua.system()
    assert system["totals"]["cost_usd"] == pytest.approx(expected, abs=1e-8)


async def test_json_price_file_globs_and_unknown_models(
    start: Start, app_factory: AppFactory, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"scripted-*": {"input": 500, "output": 500}}))
    ua = await start(scripted(*direct("Priced.")), model_prices_file=prices)
    priced = await ua.turn()
    tokens = priced["usage"]["input_tokens"] + priced["usage"]["output_tokens"]
    usage = await ua.usage()
    assert usage["totals"]["cost_usd"] == pytest.approx(tokens * 500 / 1_000_000, abs=1e-8)
    # On PostgreSQL both instances share the run queue: the first one's worker (and its
    # scripted model) must not take the second one's run.
    await app_factory.stop(ua.app)

    local = await start(
        scripted(*direct("Free."), model_name="local-llama"),
        model_prices_file=prices,
        data_dir=tmp_path / "second-instance",
    )
    free = await local.turn()
    usage = await local.usage()
    assert usage["models"][0]["model"] == "local-llama"
    assert usage["totals"]["cost_usd"] == 0.0
    assert usage["totals"]["total_tokens"] == sum(free["usage"].values()) > 0


async def test_buckets_across_day_week_and_month_boundaries(
    start: Start, clock: FrozenClock
) -> None:
    # Ahead of the real date: access tokens are also checked against the real clock.
    clock.set(datetime(2027, 2, 28, 23, 58, tzinfo=UTC))  # a Sunday, two minutes to midnight
    ua = await start(scripted(*[reply for _ in range(5) for reply in direct("Answer.")]))
    a = await ua.turn()  # Sun 28 Feb 23:58
    clock.advance(timedelta(minutes=4))
    b = await ua.turn()  # Mon 1 March 00:02
    c = await ua.turn()
    clock.set(datetime(2027, 3, 8, 10, 0, tzinfo=UTC))  # the next Monday
    await ua.login(ua.user)
    await ua.login(ua.admin)
    d = await ua.turn()
    clock.set(datetime(2027, 4, 2, 12, 0, tzinfo=UTC))
    await ua.login(ua.user)
    await ua.login(ua.admin)
    e = await ua.turn()

    def tokens(*turns: dict[str, Any]) -> int:
        return sum(t["usage"]["input_tokens"] + t["usage"]["output_tokens"] for t in turns)

    days = await ua.usage(**{"from": "2027-02-28", "to": "2027-03-01"})
    assert [(x["start"][:10], x["turns"]) for x in days["buckets"]] == [
        ("2027-02-28", 1),
        ("2027-03-01", 2),
    ]
    assert days["buckets"][0]["total_tokens"] == tokens(a)
    assert days["buckets"][1]["total_tokens"] == tokens(b, c)
    assert days["from"].startswith("2027-02-28T00:00:00")
    assert days["to"].startswith("2027-03-02T00:00:00")  # a date `to` includes that day

    weeks = await ua.usage(**{"from": "2027-02-22", "to": "2027-03-14", "granularity": "week"})
    assert [(x["start"][:10], x["turns"]) for x in weeks["buckets"]] == [
        ("2027-02-22", 1),
        ("2027-03-01", 2),
        ("2027-03-08", 1),
    ]
    assert weeks["buckets"][1]["end"][:10] == "2027-03-08"

    months = await ua.usage(**{"from": "2027-02-01", "to": "2027-04-30", "granularity": "month"})
    assert [(x["start"][:10], x["turns"]) for x in months["buckets"]] == [
        ("2027-02-01", 1),
        ("2027-03-01", 3),
        ("2027-04-01", 1),
    ]
    assert months["totals"]["total_tokens"] == tokens(a, b, c, d, e)

    # Times are exact: from is inclusive, to exclusive.
    edge = await ua.usage(**{"from": "2027-02-28T23:58:00Z", "to": "2027-03-01T00:02:00Z"})
    assert edge["totals"]["turns"] == 1
    offset = await ua.usage(**{"from": "2027-03-01T01:00:00+01:00", "to": "2027-03-01T00:03:00"})
    assert offset["totals"]["turns"] == 2  # 01:00+01:00 is midnight UTC

    assert (await ua.usage())["budget"]["used_today"] == tokens(e)


async def test_new_event_invalidates_the_cached_answer(start: Start) -> None:
    ua = await start(scripted(*direct("First."), *direct("Second.")))
    await ua.turn()
    assert (await ua.usage())["totals"]["turns"] == 1
    assert (await ua.system())["totals"]["turns"] == 1

    # A row written behind the service's back does not bump the version: the cache still
    # answers, which shows the aggregates are served from the cache.
    async with ua.resources.sessionmaker() as session:
        session.add(
            UsageEvent(
                user_id=uuid.UUID(ua.user.id),
                kind="agent_turn",
                model="scripted-fake",
                input_tokens=1,
                output_tokens=1,
                cost_usd=0.0,
                streamed=False,
                tools=[],
                status="completed",
                details={},
                created_at=ua.resources.clock.now(),
            )
        )
        await session.commit()
    assert (await ua.usage())["totals"]["turns"] == 1
    assert (await ua.system())["totals"]["turns"] == 1

    await ua.turn()  # a recorded event bumps the versions: both answers are recomputed
    assert (await ua.usage())["totals"]["turns"] == 3
    assert (await ua.system())["totals"]["turns"] == 3


async def test_range_validation(start: Start) -> None:
    ua = await start(scripted())
    headers = ua.user.headers
    cases = [
        ({"from": "2026-03-02", "to": "2026-03-01"}, 400, "invalid_range"),
        ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T10:00:00Z"}, 400, "invalid_range"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, 400, "range_too_long"),
        ({"from": "yesterday"}, 422, "invalid_date"),
        ({"from": "2026-02-30"}, 422, "invalid_date"),
        ({"to": "9999-12-31"}, 422, "date_out_of_range"),
        # These were 500s: the default `from` (30 days before) and the move to UTC overflowed.
        ({"to": "0001-01-01"}, 422, "date_out_of_range"),
        ({"from": "0001-01-01T00:00:00+05:00"}, 422, "date_out_of_range"),
        ({"to": "9999-12-31T23:00:00-05:00"}, 422, "date_out_of_range"),
        ({"granularity": "hour"}, 422, "validation_error"),
    ]
    for params, status, code in cases:
        response = await ua.client.get(USAGE, params=params, headers=headers)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"] == code
        assert response.json()["detail"]
    one_day = await ua.client.get(
        USAGE, params={"from": "2026-03-01", "to": "2026-03-01"}, headers=headers
    )
    assert one_day.status_code == 200
    assert len(one_day.json()["buckets"]) == 1
    year = await ua.client.get(
        USAGE,
        params={"from": "2025-01-01", "to": "2025-12-31", "granularity": "month"},
        headers=headers,
    )
    assert year.status_code == 200
    assert len(year.json()["buckets"]) == 12


async def test_admin_routes(start: Start) -> None:
    ua = await start(scripted(*direct("Hi.")))
    await ua.turn()
    for path in (SYSTEM, f"/api/v1/analytics/users/{ua.user.id}"):
        refused = await ua.client.get(path, headers=ua.user.headers)
        assert refused.status_code == 403
        assert refused.json()["error"] == "admin_required"
    missing = await ua.client.get(
        f"/api/v1/analytics/users/{uuid.uuid4()}", headers=ua.admin.headers
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == "user_not_found"
    seen = await ua.client.get(f"/api/v1/analytics/users/{ua.user.id}", headers=ua.admin.headers)
    assert seen.status_code == 200
    body = seen.json()
    assert body["email"] == ua.user.email
    assert body["totals"]["turns"] == 1
    assert body == {**(await ua.usage()), "email": ua.user.email}
    unauthenticated = await ua.client.get(USAGE)
    assert unauthenticated.status_code == 401


async def test_knowledge_base_uploads_and_searches_are_events(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    app = await app_factory(settings_factory(rate_limit_per_minute=0), embedder=HashEmbedder())
    async with client_for(app) as http:
        account = await register(http)
        document = await ingest(
            http, account.headers, "pumps.txt", b"The HX-200 pump needs a new gasket every year."
        )
        for query in ("gasket", "pump"):
            found = await http.post(
                "/api/v1/kb/search", json={"query": query}, headers=account.headers
            )
            assert found.status_code == 200, found.text
        usage = (await http.get(USAGE, headers=account.headers)).json()
        assert usage["totals"]["kb_uploads"] == 1
        assert usage["totals"]["kb_searches"] == 2
        assert usage["totals"]["turns"] == 0
        assert usage["totals"]["total_tokens"] == 0
        assert usage["buckets"][-1]["kb_searches"] == 2
        async with app.state.resources.sessionmaker() as session:
            events = (
                (await session.execute(select(UsageEvent).where(UsageEvent.kind == "kb_upload")))
                .scalars()
                .all()
            )
        assert [e.details["document_id"] for e in events] == [document["id"]]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_downgrading_usage_keeps_users_and_their_sessions(
    app_factory: AppFactory, settings_factory: SettingsFactory
) -> None:
    # SQLite rebuilds a table to drop a column; with foreign keys on, dropping the old `users`
    # would cascade into every table that references it. The migration must not do that.
    settings = settings_factory()
    app = await app_factory(settings)
    async with client_for(app) as http:
        account = await register(http)
    await app_factory.stop(app)
    engine = create_engine(settings)
    try:
        await downgrade_schema(engine, "0002_agent")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("users")}
            )
            sessions = await conn.scalar(text("SELECT count(*) FROM refresh_tokens"))
        assert "usage_events" not in tables
        assert "feedback" not in tables
        assert "daily_token_budget" not in columns
        assert sessions == 1
    finally:
        await engine.dispose()
    app = await app_factory(settings)  # upgrades again at start
    async with client_for(app) as http:
        me = await http.get("/api/v1/users/me", headers=account.headers)
        assert me.status_code == 200, me.text
        assert me.json()["daily_token_budget"] is None


async def test_paused_turn_is_one_turn_and_a_rejected_call_is_not_an_error(
    start: Start, clock: FrozenClock
) -> None:
    replies = [
        {"route": "tools"},
        ask_tools(tool_call("send_email", EMAIL), content="You asked me to mail Ada."),
        "I did not send it.",
    ]
    ua = await start(scripted(*replies))
    response = await ua.client.post(
        "/api/v1/agent/query", json={"message": "Mail Ada"}, headers=ua.user.headers
    )
    assert response.status_code == 200, response.text
    paused = response.json()
    assert paused["status"] == "awaiting_approval"
    await ua.settle()
    waiting = await ua.usage()
    assert (waiting["totals"]["turns"], waiting["totals"]["awaiting_approval"]) == (1, 1)

    clock.advance(timedelta(seconds=90))  # the person takes a minute and a half to decide
    [approval] = paused["approvals"]
    decided = await ua.client.post(
        f"/api/v1/approvals/{approval['id']}/reject",
        json={"reason": "wrong recipient"},
        headers=ua.user.headers,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "completed"
    await ua.settle()

    usage = await ua.usage()
    totals = usage["totals"]
    assert (totals["turns"], totals["completed"], totals["awaiting_approval"]) == (1, 1, 0)
    assert totals["failed"] == 0
    # Both halves of the turn count: the tokens before the pause and after the decision.
    assert totals["input_tokens"] == input_tokens_of(ua.model)
    assert totals["output_tokens"] == reply_tokens(*replies)
    system = await ua.system()
    assert system["tools"] == [
        {
            "name": "send_email",
            "calls": 1,
            "errors": 0,
            "rejected": 1,
            "statuses": {"rejected": 1},
        }
    ]
    assert system["error_rate"] == 0.0
    assert system["approval_wait_ms"] == {"p50": 90_000, "p95": 90_000}
    async with ua.resources.sessionmaker() as session:
        [event] = (
            await session.scalars(select(UsageEvent).where(UsageEvent.kind == "agent_turn"))
        ).all()
    assert event.run_id == paused["run_id"]
    assert event.approval_wait_ms == 90_000
    assert event.status == "completed"


async def test_totals_survive_retention_rolling_events_up_into_days(
    start: Start, clock: FrozenClock
) -> None:
    # No cache: every answer below is computed from the tables.
    ua = await start(
        scripted(*direct("One."), *direct("Two words."), *direct("Three.")),
        usage_retention_days=7,
        analytics_cache_seconds=0,
    )
    await ua.turn()
    await ua.turn()
    other = await ua.new_user()
    await ua.turn(other)
    today = clock.now().date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    weeks = {**span, "granularity": "week"}
    before = (await ua.usage(**span), await ua.usage(**weeks), await ua.system(**span))
    assert before[0]["totals"]["turns"] == 2
    assert before[2]["active_users"] == 2

    clock.advance(timedelta(days=8))
    report = await retention_for(ua.resources).run()
    assert report.usage_events >= 2
    async with ua.resources.sessionmaker() as session:
        assert (await session.scalars(select(UsageEvent))).all() == []
        assert (await session.scalars(select(UsageDaily))).all() != []
    await ua.login(ua.user)
    await ua.login(ua.admin)

    after = (await ua.usage(**span), await ua.usage(**weeks), await ua.system(**span))
    for old, new in zip(before, after, strict=True):
        assert new["totals"] == old["totals"]
    assert after[0]["buckets"] == before[0]["buckets"]
    assert after[1]["buckets"] == before[1]["buckets"]
    assert after[2]["active_users"] == before[2]["active_users"]
    for old, new in zip(before[0]["models"], after[0]["models"], strict=True):
        assert {k: v for k, v in new.items() if k != "avg_latency_ms"} == {
            k: v for k, v in old.items() if k != "avg_latency_ms"
        }
    # A range that starts mid-day leaves that rolled-up day out (only whole days count).
    later = await ua.usage(**{"from": f"{today.isoformat()}T12:00:00Z", "to": span["to"]})
    assert later["totals"]["turns"] == 0
