"""The planner graph with the scripted model: plans, repairs, approval, parallel steps, policies.

Every test runs on the three checkpointers (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from graphs.planner import EVENT_KIND, INTERRUPT_KIND, Context, PlanInvalid, builder
from graphs.tools import ToolConfig, build_registry
from tests.graphs.conftest import thread
from tests.graphs.http_server import LocalServer
from tests.graphs.planner_support import (
    Library,
    PlannerModel,
    Workers,
    passage,
    plan_json,
    step,
)

Planner = CompiledStateGraph[Any, Any, Any, Any]


@pytest.fixture
def planner(checkpointer: BaseCheckpointSaver[Any]) -> Planner:
    """The planner compiled with the parametrized checkpointer."""
    return builder.compile(checkpointer=checkpointer)


def context(model: PlannerModel, **kwargs: Any) -> Context:
    kwargs.setdefault("approval", "never")
    kwargs.setdefault("failure_policy", "continue")
    return Context(llm=model.llm, user_id="u1", conversation_id="c1", **kwargs)


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text)]}


async def test_a_simple_request_is_one_assistant_step(planner: Planner) -> None:
    model = PlannerModel(
        plan=plan_json(step("s1", "assistant", "Name the capital of France.")),
        route='{"route": "direct"}',
        answer="Paris is the capital of France.",
    )
    result = await planner.ainvoke(
        ask("What is the capital of France?"), thread(), context=context(model)
    )

    assert result["status"] == "completed"
    assert result["answer"] == "Paris is the capital of France."
    assert [s["id"] for s in result["plan"]["steps"]] == ["s1"]
    assert result["results"]["s1"]["status"] == "ok"
    assert result["results"]["s1"]["agent"] == "assistant"
    # One plan call and the assistant's route and answer: a one-step plan needs no synthesis.
    assert model.kinds == {"plan": 1, "route": 1, "answer": 1}
    assert result["usage"]["input_tokens"] > 0
    assert result["messages"][-1].content == result["answer"]


async def test_knowledge_steps_run_in_parallel_and_citations_merge(planner: Planner) -> None:
    vacation = passage("a", "Handbook", "Employees get 25 days of vacation.")
    carry = passage("b", "Handbook", "Up to 5 unused days carry over.")
    remote = passage("c", "Remote policy", "Remote work is allowed two days a week.")
    library = Library({"vacation": [vacation, carry], "remote": [carry, remote]})
    model = PlannerModel(
        plan=plan_json(
            step("s1", "knowledge", "Find the vacation policy."),
            step("s2", "knowledge", "Find the remote work policy."),
            step("s3", "assistant", "Compare the two policies.", ["s1", "s2"]),
        ),
        knowledge=lambda messages: (
            "25 days [1], carry-over [2]."
            if "vacation" in str(messages[-1].content)
            else "Carry-over [1]; remote two days [2]."
        ),
        route='{"route": "direct"}',
        answer="Both are generous.",
        synthesis="You get 25 days [1] with carry-over [2], and remote work two days [3].",
    )
    events: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    config = thread()
    async for mode, chunk in planner.astream(
        ask("Summarize vacation and remote policies"),
        config,
        context=context(model, retriever=library),
        stream_mode=["updates", "custom"],
    ):
        (events if mode == "custom" else updates).append(chunk)
    state = (await planner.aget_state(config)).values

    assert state["status"] == "completed"
    # s1 and s2 are independent: both started before either finished; s3 started after both.
    order = [(e["step_id"], e["status"]) for e in events if e["kind"] == EVENT_KIND]
    first_finish = min(order.index(("s1", "ok")), order.index(("s2", "ok")))
    assert order.index(("s1", "started")) < first_finish
    assert order.index(("s2", "started")) < first_finish
    assert order.index(("s3", "started")) > max(
        order.index(("s1", "ok")), order.index(("s2", "ok"))
    )
    # Results land in the "updates" stream step by step.
    step_updates = [u["run_step"]["results"] for u in updates if "run_step" in u]
    assert sorted(next(iter(r)) for r in step_updates) == ["s1", "s2", "s3"]
    # The shared passage (b) has one number; s2's markers were renumbered for the synthesis.
    catalog = [(c["number"], c["document_id"]) for c in state["citations"]]
    assert catalog == [(1, "doc-a"), (2, "doc-b"), (3, "doc-c")]
    synthesis_prompt = str(model.prompts["synthesis"][0][0].content)
    assert "Carry-over [2]; remote two days [3]." in synthesis_prompt
    assert "25 days [1], carry-over [2]." in synthesis_prompt
    # The assistant step got both knowledge results as its inputs.
    assistant_input = str(model.prompts["route"][0][-1].content)
    assert "25 days" in assistant_input
    assert "remote two days" in assistant_input
    assert model.kinds["knowledge"] == 2
    assert model.kinds["synthesis"] == 1


async def test_a_cyclic_plan_is_repaired_once(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(
        plan=plan_json(step("s1", "alpha", "first", ["s2"]), step("s2", "alpha", "second", ["s1"])),
        repair=plan_json(step("s1", "alpha", "first"), step("s2", "alpha", "second", ["s1"])),
        synthesis="Done.",
    )
    result = await planner.ainvoke(
        ask("do two things"), thread(), context=context(model, capabilities=workers.all("alpha"))
    )

    assert result["status"] == "completed"
    assert workers.calls["alpha"] == 2
    repair_prompt = model.prompts["repair"][0]
    assert "cycle" in str(repair_prompt[-1].content)
    assert model.kinds["plan"] == 1
    assert model.kinds["repair"] == 1


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (plan_json(step("s1", "alpha", "x", ["s2"]), step("s2", "alpha", "y", ["s1"])), "cycle"),
        (plan_json(step("s1", "astrologer", "x")), "unknown agent 'astrologer'"),
        (plan_json(step("s1", "alpha", "x", ["s9"])), "depends on 's9'"),
        ("I would rather not plan.", "no JSON"),
    ],
)
async def test_an_invalid_plan_fails_clearly_after_one_repair(
    planner: Planner, bad: str, expected: str
) -> None:
    workers = Workers()
    model = PlannerModel(plan=bad, repair=bad)

    with pytest.raises(PlanInvalid, match=expected):
        await planner.ainvoke(
            ask("plan it"), thread(), context=context(model, capabilities=workers.all("alpha"))
        )
    assert model.kinds == {"plan": 1, "repair": 1}
    assert workers.calls == {}


async def test_plan_approval_approve(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(plan=plan_json(step("s1", "alpha", "send the report")))
    ctx = context(model, approval="always", capabilities=workers.all("alpha"))
    config = thread()

    paused = await planner.ainvoke(ask("send the report"), config, context=ctx)
    [pending] = paused["__interrupt__"]
    request = pending.value
    assert request["kind"] == INTERRUPT_KIND
    assert request["plan"]["steps"][0]["instruction"] == "send the report"
    assert request["reasons"]
    assert request["error"] is None
    assert workers.calls == {}  # nothing ran before the decision

    result = await planner.ainvoke(
        Command(resume={request["approval_id"]: {"decision": "approved"}}), config, context=ctx
    )
    assert result["status"] == "completed"
    assert result["approval"]["decision"] == "approved"
    assert workers.calls["alpha"] == 1


async def test_plan_approval_reject(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(plan=plan_json(step("s1", "alpha", "delete everything")))
    ctx = context(model, approval="always", capabilities=workers.all("alpha"))
    config = thread()
    await planner.ainvoke(ask("clean up"), config, context=ctx)

    result = await planner.ainvoke(
        Command(resume={"decision": "rejected", "reason": "too risky"}), config, context=ctx
    )
    assert result["status"] == "rejected"
    assert "too risky" in result["answer"]
    assert workers.calls == {}
    assert (await planner.aget_state(config)).next == ()


async def test_plan_approval_modify_is_validated_again(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(
        plan=plan_json(step("s1", "alpha", "draft a post")), synthesis="Both done."
    )
    ctx = context(model, approval="always", capabilities=workers.all("alpha", "beta"))
    config = thread()
    first = await planner.ainvoke(ask("write a post"), config, context=ctx)
    first_id = first["__interrupt__"][0].value["approval_id"]

    # A modification with a cycle is refused: the person is asked again, with the error.
    cyclic = {"steps": [step("a", "alpha", "x", ["b"]), step("b", "beta", "y", ["a"])]}
    again = await planner.ainvoke(
        Command(resume={"decision": "modified", "plan": cyclic}), config, context=ctx
    )
    request = again["__interrupt__"][0].value
    assert "cycle" in request["error"]
    assert request["plan"]["steps"][0]["instruction"] == "draft a post"
    assert request["approval_id"] != first_id
    assert workers.calls == {}

    fixed = {"steps": [step("a", "alpha", "draft"), step("b", "beta", "review", ["a"])]}
    result = await planner.ainvoke(
        Command(resume={"decision": "modified", "plan": fixed}), config, context=ctx
    )
    assert result["status"] == "completed"
    assert result["approval"]["decision"] == "modified"
    assert [s["id"] for s in result["plan"]["steps"]] == ["a", "b"]
    assert workers.calls == {"alpha": 1, "beta": 1}


async def test_auto_approval_asks_above_the_cost_threshold(planner: Planner) -> None:
    workers = Workers()
    steps = [step(f"s{i}", "alpha", f"part {i}") for i in range(1, 4)]
    model = PlannerModel(plan=plan_json(*steps), synthesis="ok")
    cheap = context(
        model, approval="auto", approval_cost_usd=1.0, capabilities=workers.all("alpha")
    )
    costly = context(
        model,
        approval="auto",
        approval_cost_usd=0.02,
        step_cost_usd=0.01,
        capabilities=workers.all("alpha"),
    )

    ran = await planner.ainvoke(ask("three parts"), thread(), context=cheap)
    assert ran["status"] == "completed"
    assert ran["approval"]["decision"] == "not_required"
    paused = await planner.ainvoke(ask("three parts"), thread(), context=costly)
    reasons = paused["__interrupt__"][0].value["reasons"]
    assert any("estimated cost $0.0300" in reason for reason in reasons)


def _failing_plan() -> str:
    return plan_json(
        step("s1", "flaky", "fetch data"),
        step("s2", "alpha", "use the data", ["s1"]),
        step("s3", "beta", "independent work"),
    )


async def test_fail_fast_stops_the_plan(planner: Planner) -> None:
    workers = Workers(fail={"flaky": 1})
    model = PlannerModel(plan=_failing_plan())
    result = await planner.ainvoke(
        ask("go"),
        thread(),
        context=context(
            model, failure_policy="fail_fast", capabilities=workers.all("flaky", "alpha", "beta")
        ),
    )
    assert result["status"] == "failed"
    assert "flaky is down" in result["answer"]
    assert "s2" not in result["results"]
    assert workers.calls["alpha"] == 0
    assert model.kinds["synthesis"] == 0


async def test_continue_synthesizes_what_succeeded_and_says_what_failed(planner: Planner) -> None:
    workers = Workers(fail={"flaky": 1})
    model = PlannerModel(plan=_failing_plan(), synthesis="Here is the independent work.")
    result = await planner.ainvoke(
        ask("go"),
        thread(),
        context=context(
            model, failure_policy="continue", capabilities=workers.all("flaky", "alpha", "beta")
        ),
    )
    assert result["status"] == "partial"
    assert result["results"]["s1"]["status"] == "error"
    assert result["results"]["s2"]["status"] == "skipped"
    assert result["results"]["s3"]["status"] == "ok"
    assert result["answer"].startswith("Here is the independent work.")
    assert "step s1 (flaky): error" in result["answer"]
    assert "step s2 (alpha): skipped" in result["answer"]
    assert workers.calls["alpha"] == 0


async def test_retry_runs_a_failing_step_again(planner: Planner) -> None:
    workers = Workers(fail={"flaky": 2})
    model = PlannerModel(plan=_failing_plan(), synthesis="All done.")
    ctx = context(
        model,
        failure_policy="retry",
        max_attempts=3,
        capabilities=workers.all("flaky", "alpha", "beta"),
    )
    result = await planner.ainvoke(ask("go"), thread(), context=ctx)
    assert result["status"] == "completed"
    assert result["results"]["s1"]["attempts"] == 3
    assert workers.calls == {"flaky": 3, "alpha": 1, "beta": 1}

    exhausted = Workers(fail={"flaky": 5})
    ctx = context(
        model,
        failure_policy="retry",
        max_attempts=2,
        capabilities=exhausted.all("flaky", "alpha", "beta"),
    )
    result = await planner.ainvoke(ask("go"), thread(), context=ctx)
    assert result["status"] == "partial"
    assert result["results"]["s1"]["attempts"] == 2
    assert exhausted.calls["flaky"] == 2


async def test_a_slow_step_times_out(planner: Planner) -> None:
    workers = Workers(delay=2.0)
    model = PlannerModel(plan=plan_json(step("s1", "alpha", "wait")))
    result = await planner.ainvoke(
        ask("go"),
        thread(),
        context=context(model, step_timeout_seconds=0.1, capabilities=workers.all("alpha")),
    )
    assert result["status"] == "failed"
    assert result["results"]["s1"]["status"] == "timeout"
    assert "timed out after 0.1s" in result["answer"]


async def test_cancel_during_execution_then_resume_skips_finished_steps(planner: Planner) -> None:
    workers = Workers()
    workers.gate = asyncio.Event()
    model = PlannerModel(
        plan=plan_json(step("s1", "alpha", "quick"), step("s2", "slow", "long")),
        synthesis="Both finished.",
    )
    ctx = context(model, capabilities=workers.all("alpha", "slow"))
    config = thread()
    run = asyncio.create_task(planner.ainvoke(ask("go"), config, context=ctx))
    await asyncio.wait_for(workers.blocked.wait(), 10)
    # Wait until s1's result is saved as a pending write of the interrupted round.
    for _ in range(200):
        snapshot = await planner.aget_state(config)
        if any(task.name == "run_step" and task.result for task in snapshot.tasks):
            break
        await asyncio.sleep(0.02)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert workers.calls == {"alpha": 1, "slow": 1}

    workers.gate.set()
    result = await planner.ainvoke(None, config, context=ctx)
    assert result["status"] == "completed"
    assert workers.calls == {"alpha": 1, "slow": 2}  # s1 was not run again
    assert model.kinds == {"plan": 1, "synthesis": 1}  # nor was the plan asked again


async def test_plain_text_fallback_when_structured_output_is_missing(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(
        plan="Here is my plan:\n```json\n" + plan_json(step("s1", "alpha", "do it")) + "\n```"
    )
    model.llm.structured_output = False
    result = await planner.ainvoke(
        ask("do it"), thread(), context=context(model, capabilities=workers.all("alpha"))
    )
    assert result["status"] == "completed"
    assert result["answer"] == "alpha did: do it"


async def test_a_second_request_in_the_thread_starts_fresh(planner: Planner) -> None:
    workers = Workers()
    model = PlannerModel(
        plan=[plan_json(step("s1", "alpha", "one")), plan_json(step("x", "beta", "two"))]
    )
    ctx = context(model, capabilities=workers.all("alpha", "beta"))
    config = thread()
    await planner.ainvoke(ask("first"), config, context=ctx)
    result = await planner.ainvoke(ask("second"), config, context=ctx)
    assert list(result["results"]) == ["x"]
    assert result["answer"] == "beta did: two"
    assert len(result["messages"]) == 4


async def test_sentiment_and_moderation_run_as_capabilities(planner: Planner) -> None:
    review = "The support agent was rude. Reach me at jo@example.com"
    model = PlannerModel(
        plan=plan_json(
            step("s1", "sentiment", review),
            step("s2", "moderation", review),
        ),
        sentiment='{"label": "negative", "score": -0.7, "rationale": "Calls the agent rude."}',
        toxicity='{"toxicity": 0.2}',
        pii='{"entities": []}',
        synthesis="The review is negative; the email was masked.",
    )
    result = await planner.ainvoke(
        ask("Analyse this review: " + review), thread(), context=context(model)
    )

    assert result["status"] == "completed"
    sentiment = result["results"]["s1"]
    assert sentiment["data"]["label"] == "negative"
    assert sentiment["text"].startswith("Sentiment: negative (score -0.70).")
    moderation = result["results"]["s2"]
    assert moderation["data"]["verdict"] == "allow"
    assert moderation["data"]["pii_types"] == ["email"]
    assert "jo@example.com" not in moderation["text"]
    assert "[EMAIL_1]" in moderation["text"]
    assert model.kinds["sentiment"] == 1
    assert model.kinds["toxicity"] == 1


async def test_a_tool_approval_inside_an_assistant_step_pauses_the_plan(planner: Planner) -> None:
    from graphs.assistant.approvals import INTERRUPT_KIND as TOOL_APPROVAL
    from tests.fake_llm import ask_tools, tool_call
    from tests.graphs.test_approvals_graph import Recorder

    recorder = Recorder()

    def answer(messages: list[Any]) -> Any:
        if messages[-1].type == "tool":
            return "Noted."
        return ask_tools(tool_call("write_note", {"text": "hello"}, "call-1"))

    workers = Workers()
    model = PlannerModel(
        plan=plan_json(step("s1", "assistant", "Write the note hello."), step("s2", "alpha", "x")),
        route='{"route": "tools"}',
        answer=answer,
        synthesis="Note written.",
    )
    ctx = context(model, tools=recorder.registry(), capabilities=workers.all("alpha"))
    config = thread()
    paused = await planner.ainvoke(ask("write a note"), config, context=ctx)
    [pending] = paused["__interrupt__"]
    assert pending.value["kind"] == TOOL_APPROVAL
    assert pending.value["approvals"][0]["tool"] == "write_note"
    assert recorder.runs == []

    approval_id = pending.value["approvals"][0]["approval_id"]
    result = await planner.ainvoke(
        Command(resume={approval_id: {"decision": "approved"}}), config, context=ctx
    )
    assert result["status"] == "completed"
    assert recorder.runs == [("write_note", "hello")]
    assert workers.calls["alpha"] == 1  # the parallel step ran once, not again on resume
    assert result["results"]["s1"]["text"] == "Noted."


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAI_PLANNER_APPROVAL", "sometimes"),
        ("MAI_PLANNER_FAILURE_POLICY", "ignore"),
        ("MAI_PLANNER_APPROVAL_COST_USD", "cheap"),
    ],
)
def test_a_bad_planner_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        Context()


def test_planner_variables_set_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAI_PLANNER_APPROVAL", "always")
    monkeypatch.setenv("MAI_PLANNER_FAILURE_POLICY", "retry")
    monkeypatch.setenv("MAI_PLANNER_APPROVAL_COST_USD", "0.5")
    context = Context()
    assert context.approval == "always"
    assert context.failure_policy == "retry"
    assert context.approval_cost_usd == 0.5


async def test_web_search_is_offered_only_when_configured(
    planner: Planner, http_server: LocalServer
) -> None:
    http_server.json(
        "GET",
        "/search",
        {"results": [{"title": "Release notes", "url": "https://example.org/r", "content": "v2"}]},
    )
    tools = build_registry(
        ToolConfig(web_search_provider="searxng", web_search_url=http_server.url + "/")
    )
    model = PlannerModel(plan=plan_json(step("s1", "web_search", "latest release notes")))
    result = await planner.ainvoke(
        ask("what is new?"), thread(), context=context(model, tools=tools)
    )
    assert result["status"] == "completed"
    assert "1. Release notes <https://example.org/r>" in result["answer"]
    assert "- web_search:" in str(model.prompts["plan"][0][0].content)

    web_plan = plan_json(step("s1", "web_search", "latest release notes"))
    unconfigured = PlannerModel(plan=web_plan, repair=web_plan)
    with pytest.raises(PlanInvalid, match="unknown agent 'web_search'"):
        await planner.ainvoke(
            ask("what is new?"),
            thread(),
            context=context(unconfigured, tools=build_registry(ToolConfig())),
        )
    assert "- web_search:" not in str(unconfigured.prompts["plan"][0][0].content)


async def test_auto_approval_asks_when_a_step_uses_a_gated_tool(planner: Planner) -> None:
    from tests.graphs.test_approvals_graph import Recorder

    gated = {**step("s1", "assistant", "write the note"), "tools": ["write_note"]}
    plain = {**step("s1", "assistant", "log the note"), "tools": ["log_note"]}
    registry = Recorder().registry()
    model = PlannerModel(plan=plan_json(gated))
    paused = await planner.ainvoke(
        ask("note"), thread(), context=context(model, approval="auto", tools=registry)
    )
    reasons = paused["__interrupt__"][0].value["reasons"]
    assert reasons == ["step s1 uses write_note, which needs approval"]

    model = PlannerModel(plan=plan_json(plain), route='{"route": "direct"}', answer="Logged.")
    result = await planner.ainvoke(
        ask("note"), thread(), context=context(model, approval="auto", tools=registry)
    )
    assert result["approval"]["decision"] == "not_required"
    assert result["answer"] == "Logged."
