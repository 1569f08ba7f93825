"""Schema-driven fuzzing: no input the OpenAPI schema allows (or breaks) makes the API answer 5xx.

Schemathesis generates cases for every operation from the app's own OpenAPI schema, both valid
(positive) and invalid (negative) ones; each is sent through the ASGI app as a signed-in user
(and again as an admin when the route needs one). Every answer must be below 500, every
error must come in the one JSON shape {error, detail, request_id} (OpenAI's error shape under
the OpenAI-compatible `/v1`), and every answer must be one the schema documents: its status,
content type and body (schemathesis' conformance checks).

Cases are generated first (synchronously, with Hypothesis) and then sent on the test's own event
loop: the app's database and vector-store clients live on that loop. Generation is derandomized
and bounded in draws per operation, so the bounded run is reproducible and takes minutes, not
tens of minutes; `MAI_FUZZ_EXAMPLES=200` hunts with more (and random) cases, unbounded.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from langchain_core.messages import BaseMessage
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure as SchemaFailure
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.models import Role, User
from tests.conftest import Account, StartAgent, register
from tests.fake_llm import responding

# Per generation mode: 10 valid + 10 invalid cases per operation in the bounded run.
EXAMPLES = int(os.environ.get("MAI_FUZZ_EXAMPLES", "10"))
HUNTING = "MAI_FUZZ_EXAMPLES" in os.environ
# The bounded run uses the embedded backend; a hunt can add postgres (MAI_FUZZ_BACKENDS).
BACKENDS = os.environ.get("MAI_FUZZ_BACKENDS", "sqlite").split(",")
BASE_URL = "http://testserver"

# An endless event stream: the ASGI transport would wait for its end forever (its auth and
# filtering are covered in test_approvals.py).
SKIPPED = {("GET", "/api/v1/approvals/events")}
# Operations that end the caller's session: each case gets an account of its own.
DISPOSABLE = {("POST", "/api/v1/auth/logout")}


def _answer(messages: list[BaseMessage]) -> str:
    """Route every turn straight to an answer; never runs out."""
    if messages and '{"route"' in str(messages[0].content):
        return '{"route": "direct"}'
    return "A fuzzed answer."


@dataclass
class Failure:
    """One answer that broke the contract, with what reproduces it."""

    operation: str
    status: int
    body: str
    request: str


# Draws per operation and mode before generation stops with what it has. Hypothesis would try
# up to a thousand times for an operation with no invalid input to offer (a path parameter of
# plain text): give up on one that yielded nothing in FUTILE draws, and on any after ATTEMPTS.
FUTILE = 60
ATTEMPTS = EXAMPLES * 40


class _Enough(Exception):
    """Raised from inside a draw once the attempts are spent."""


def _cases(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Draw `count` cases from a schemathesis strategy, without sending anything."""
    drawn: list[Any] = []
    attempts = 0

    @st.composite
    def bounded(draw: st.DrawFn) -> Any:
        nonlocal attempts
        attempts += 1
        if not HUNTING and (attempts > ATTEMPTS or (attempts > FUTILE and not drawn)):
            raise _Enough
        return draw(strategy)

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=not HUNTING,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(bounded())
    def collect(case: Any) -> None:
        drawn.append(case)

    # Unsatisfiable: nothing to break, a negative case of an operation without inputs. Once the
    # attempts are spent, Hypothesis replays the draw that stopped and, finding it stop again
    # at another point, reports the strategy as flaky: either way the cases drawn are kept.
    with contextlib.suppress(Unsatisfiable, _Enough, FlakyStrategyDefinition):
        collect()
    return drawn


def _operations(schema: dict[str, Any]) -> Iterator[Any]:
    loaded = schemathesis.openapi.from_dict(schema)
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIPPED:
            yield operation


def _request(case: Any, headers: dict[str, str]) -> httpx.Request:
    """Serialize a case as schemathesis would send it (query, multipart, raw bodies alike)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    prepared = requests.Request(**kwargs).prepare()
    return httpx.Request(
        str(prepared.method),
        str(prepared.url),
        headers=dict(prepared.headers),
        content=prepared.body or b"",
    )


CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _undocumented(case: Any, response: httpx.Response) -> str | None:
    """How an answer differs from what the schema documents for its operation, if it does."""
    try:
        case.validate_response(response, checks=CONFORMANCE)
    except FailureGroup as group:
        return "; ".join(
            f"{failure.title}: {failure.message}"[:200]
            for failure in group.exceptions
            if isinstance(failure, SchemaFailure)
        ) or str(group)
    except SchemaFailure as failure:
        return f"{failure.title}: {failure.message}"[:200]
    return None


def _problem(case: Any, response: httpx.Response) -> str | None:
    """What is wrong with an answer, or None when it keeps the contract."""
    undocumented = _undocumented(case, response)
    if undocumented is not None and response.status_code < 500:
        return f"not as documented: {undocumented}"
    if response.status_code >= 500:
        return "server error"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return "error body is not JSON"
    if response.request.url.path.startswith("/v1/"):
        # The OpenAI-compatible API answers errors in OpenAI's shape.
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= error.keys():
            return "error body lacks OpenAI's {error: {message, type, param, code}}"
        if not (isinstance(error["message"], str) and error["message"]):
            return "error message is not a non-empty string"
        return None
    if not isinstance(body, dict) or not {"error", "detail", "request_id"} <= body.keys():
        return "error body lacks {error, detail, request_id}"
    if not (isinstance(body["error"], str) and isinstance(body["detail"], str) and body["detail"]):
        return "error or detail is not a non-empty string"
    if not body["request_id"]:
        return "error has no request_id"
    return None


@pytest.mark.slow
# Every operation in one test: minutes on a loaded two-core machine, more than the default cap.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_no_input_makes_the_api_fail(start_agent: StartAgent) -> None:
    agent = await start_agent(responding(_answer))
    # A 500 must come back as an answer to inspect, not as the app's exception.
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=agent.app, raise_app_exceptions=False),
        base_url=BASE_URL,
        timeout=30,
    )
    admin: Account = await register(http)
    async with agent.resources.sessionmaker() as session:
        row = await session.get(User, uuid.UUID(admin.id))
        assert row is not None
        row.role = Role.admin.value
        await session.commit()

    failures: list[Failure] = []
    sent = 0
    timings: dict[str, float] = {}
    for operation in _operations(agent.app.openapi()):
        key = (operation.method.upper(), operation.path)
        started = time.perf_counter()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in _cases(operation.as_strategy(generation_mode=mode), EXAMPLES):
                caller = await register(http) if key in DISPOSABLE else agent.user
                try:
                    request = _request(case, caller.headers)
                except (ValueError, TypeError, UnicodeError):
                    continue  # not sendable over HTTP at all (e.g. a header that is not latin-1)
                response = await http.send(request)
                if response.status_code == 403 and response.json().get("error") == (
                    "admin_required"
                ):
                    response = await http.send(_request(case, admin.headers))
                sent += 1
                problem = _problem(case, response)
                if problem is not None:
                    failures.append(
                        Failure(
                            f"{key[0]} {key[1]} ({mode.value}): {problem}",
                            response.status_code,
                            response.text[:300],
                            case.as_curl_command(headers=caller.headers)[:600],
                        )
                    )
        timings[" ".join(key)] = time.perf_counter() - started
    await http.aclose()
    if HUNTING:
        slowest = sorted(timings.items(), key=lambda item: -item[1])[:8]
        print("\n".join(f"{seconds:6.1f}s {name}" for name, seconds in slowest))
    assert sent > 0
    report = "\n\n".join(
        f"{f.operation} -> {f.status}\n  {f.body}\n  {f.request}" for f in failures[:20]
    )
    assert not failures, f"{len(failures)} of {sent} answers broke the contract:\n{report}"
