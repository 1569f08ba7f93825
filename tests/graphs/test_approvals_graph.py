"""Approval interrupts in the assistant graph: pause before any side effect, resume paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from pydantic import BaseModel, Field

from graphs.assistant import Context
from graphs.assistant.approvals import INTERRUPT_KIND, approval_id
from graphs.tools import ToolContext, ToolRegistry, ToolSpec, build_registry
from graphs.tools.email import OutgoingEmail, send_email_tool
from tests.fake_llm import ask_tools, scripted, tool_call
from tests.graphs.conftest import thread

Agent = CompiledStateGraph[Any, Any, Any, Any]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class NoteArgs(BaseModel):
    """A note to write."""

    text: str = Field(min_length=1, max_length=100)


class Recorder:
    """Tools with a visible side effect: every run is recorded."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def spec(self, name: str, *, requires_approval: bool) -> ToolSpec:
        async def run(args: Any, context: ToolContext) -> str:
            self.runs.append((name, args.text))
            return f"{name} wrote {args.text!r}"

        return ToolSpec(
            name=name,
            description=f"Writes a note ({name}).",
            args_schema=NoteArgs,
            coroutine=run,
            category="test",
            requires_approval=requires_approval,
        )

    def registry(self) -> ToolRegistry:
        return build_registry().extended(
            self.spec("write_note", requires_approval=True),
            self.spec("log_note", requires_approval=False),
        )


class Outbox:
    """An email delivery that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def deliver(self, email: OutgoingEmail) -> str:
        self.sent.append(email)
        return "delivered."


def context(llm: Any, tools: ToolRegistry, **kwargs: Any) -> Context:
    return Context(
        llm=llm,
        tools=tools,
        user_id="u1",
        conversation_id="c1",
        run_id="r1",
        clock=lambda: NOW,
        approval_required=None,
        approval_exempt=None,
        **kwargs,
    )


async def start(agent: Agent, ctx: Context, config: dict[str, Any]) -> dict[str, Any]:
    result = await agent.ainvoke(
        {"messages": [HumanMessage(content="please do it")]}, config, context=ctx
    )
    assert isinstance(result, dict)
    return result


async def test_gated_call_pauses_before_anything_runs(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(
            tool_call("write_note", {"text": "hello"}, "c-w"),
            tool_call("log_note", {"text": "side"}, "c-l"),
            content="The user asked me to write this note.",
        ),
        "Done: the note is written.",
    )
    config = thread()
    ctx = context(llm, recorder.registry(), approval_timeout_seconds=3600)
    paused = await start(agent, ctx, config)

    [pause] = paused["__interrupt__"]
    assert pause.value["kind"] == INTERRUPT_KIND
    [request] = pause.value["approvals"]
    thread_id = config["configurable"]["thread_id"]
    assert request == {
        "approval_id": approval_id(thread_id, "c-w"),
        "tool_call_id": "c-w",
        "tool": "write_note",
        "args": {"text": "hello"},
        "reason": "The user asked me to write this note.",
        "user_id": "u1",
        "conversation_id": "c1",
        "run_id": "r1",
        "requested_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(hours=1)).isoformat(),
    }
    # Neither the gated call nor the ungated one of the same round has run.
    assert recorder.runs == []
    state = await agent.aget_state(config)
    assert state.next == ("tools",)

    done = await agent.ainvoke(
        Command(resume={request["approval_id"]: {"decision": "approved"}}), config, context=ctx
    )
    assert "__interrupt__" not in done
    assert sorted(recorder.runs) == [("log_note", "side"), ("write_note", "hello")]
    assert done["answer"] == "Done: the note is written."
    assert {r["name"]: r["status"] for r in done["tool_runs"]} == {
        "write_note": "ok",
        "log_note": "ok",
    }


async def test_rejected_call_is_not_run_and_the_model_is_told_why(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("write_note", {"text": "secret"}, "c1")),
        "I did not write the note: it was rejected.",
    )
    config = thread()
    ctx = context(llm, recorder.registry())
    paused = await start(agent, ctx, config)
    aid = paused["__interrupt__"][0].value["approvals"][0]["approval_id"]
    done = await agent.ainvoke(
        Command(resume={aid: {"decision": "rejected", "reason": "not today"}}),
        config,
        context=ctx,
    )
    assert recorder.runs == []
    [run] = done["tool_runs"]
    assert run["status"] == "rejected"
    assert "rejected" in run["result"]
    assert "not today" in run["result"]
    told = [m for m in llm.calls[-1] if isinstance(m, ToolMessage)]
    assert len(told) == 1
    assert "not today" in str(told[0].content)
    assert told[0].status == "error"
    assert done["answer"] == "I did not write the note: it was rejected."


async def test_expired_call_says_it_expired(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("write_note", {"text": "late"}, "c1")),
        "The request expired.",
    )
    config = thread()
    ctx = context(llm, recorder.registry())
    paused = await start(agent, ctx, config)
    aid = paused["__interrupt__"][0].value["approvals"][0]["approval_id"]
    done = await agent.ainvoke(
        Command(resume={aid: {"decision": "rejected", "reason": "expired"}}), config, context=ctx
    )
    assert recorder.runs == []
    assert done["tool_runs"][0]["status"] == "rejected"
    assert "expired" in done["tool_runs"][0]["result"]


async def test_modified_call_runs_with_the_edited_args(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("write_note", {"text": "draft"}, "c1")),
        "Written.",
    )
    config = thread()
    ctx = context(llm, recorder.registry())
    paused = await start(agent, ctx, config)
    aid = paused["__interrupt__"][0].value["approvals"][0]["approval_id"]
    done = await agent.ainvoke(
        Command(resume={aid: {"decision": "modified", "args": {"text": "final"}}}),
        config,
        context=ctx,
    )
    assert recorder.runs == [("write_note", "final")]
    assert done["tool_runs"][0]["args"] == {"text": "final"}


async def test_two_gated_calls_give_two_approvals_decided_separately(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(
            tool_call("write_note", {"text": "one"}, "c1"),
            tool_call("write_note", {"text": "two"}, "c2"),
        ),
        "One written, one refused.",
    )
    config = thread()
    ctx = context(llm, recorder.registry())
    paused = await start(agent, ctx, config)
    [pause] = paused["__interrupt__"]
    first, second = pause.value["approvals"]
    assert first["approval_id"] != second["approval_id"]
    assert [first["args"], second["args"]] == [{"text": "one"}, {"text": "two"}]
    done = await agent.ainvoke(
        Command(
            resume={
                first["approval_id"]: {"decision": "approved"},
                second["approval_id"]: {"decision": "rejected", "reason": "duplicate"},
            }
        ),
        config,
        context=ctx,
    )
    assert recorder.runs == [("write_note", "one")]
    assert [r["status"] for r in done["tool_runs"]] == ["ok", "rejected"]


async def test_langchain_hitl_shape_asks_and_decides(agent: Agent) -> None:
    """The interrupt also speaks LangChain's human-in-the-loop schema, and a resume with its
    `decisions` list (one per action, in order) decides the calls."""
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"},
        ask_tools(
            tool_call("write_note", {"text": "one"}, "c1"),
            tool_call("write_note", {"text": "two"}, "c2"),
        ),
        "One edited, one refused.",
    )
    config = thread()
    ctx = context(llm, recorder.registry())
    paused = await start(agent, ctx, config)
    [pause] = paused["__interrupt__"]
    assert [a["name"] for a in pause.value["action_requests"]] == ["write_note", "write_note"]
    assert [a["args"] for a in pause.value["action_requests"]] == [{"text": "one"}, {"text": "two"}]
    assert pause.value["review_configs"][0] == {
        "action_name": "write_note",
        "allowed_decisions": ["approve", "edit", "reject"],
    }
    done = await agent.ainvoke(
        Command(
            resume={
                "decisions": [
                    {
                        "type": "edit",
                        "edited_action": {"name": "write_note", "args": {"text": "1"}},
                    },
                    {"type": "reject", "message": "duplicate"},
                ]
            }
        ),
        config,
        context=ctx,
    )
    assert recorder.runs == [("write_note", "1")]
    assert [r["status"] for r in done["tool_runs"]] == ["ok", "rejected"]


async def test_policy_lists_override_the_tool_flag(agent: Agent) -> None:
    recorder = Recorder()
    # calculator is not flagged but required by configuration; write_note is exempted.
    llm = scripted(
        {"route": "tools"},
        ask_tools(
            tool_call("calculator", {"expression": "2+2"}, "c1"),
            tool_call("write_note", {"text": "free"}, "c2"),
        ),
        "Done.",
    )
    config = thread()
    ctx = Context(
        llm=llm,
        tools=recorder.registry(),
        approval_required=frozenset({"calculator"}),
        approval_exempt=frozenset({"write_note"}),
    )
    paused = await start(agent, ctx, config)
    [request] = paused["__interrupt__"][0].value["approvals"]
    assert request["tool"] == "calculator"
    assert recorder.runs == []


async def test_stream_carries_the_interrupt_in_updates(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted({"route": "tools"}, ask_tools(tool_call("write_note", {"text": "x"}, "c1")))
    config = thread()
    ctx = context(llm, recorder.registry())
    updates = [
        chunk
        async for mode, chunk in agent.astream(
            {"messages": [HumanMessage(content="go")]},
            config,
            context=ctx,
            stream_mode=["updates", "values"],
        )
        if mode == "updates"
    ]
    assert "__interrupt__" in updates[-1]
    assert updates[-1]["__interrupt__"][0].value["approvals"][0]["tool"] == "write_note"
    assert recorder.runs == []


async def test_invalid_args_are_not_put_to_a_person(agent: Agent) -> None:
    recorder = Recorder()
    llm = scripted(
        {"route": "tools"}, ask_tools(tool_call("write_note", {"text": ""}, "c1")), "Sorry."
    )
    done = await start(agent, context(llm, recorder.registry()), thread())
    assert "__interrupt__" not in done
    assert done["tool_runs"][0]["status"] == "error"
    assert "Invalid arguments" in done["tool_runs"][0]["result"]


async def test_send_email_sends_only_after_approval(agent: Agent) -> None:
    outbox = Outbox()
    tools = build_registry().extended(send_email_tool(outbox))
    args = {"to": "ada@example.com", "subject": "Hi", "body": "Hello Ada"}
    llm = scripted({"route": "tools"}, ask_tools(tool_call("send_email", args, "c1")), "Sent.")
    config = thread()
    ctx = context(llm, tools)
    paused = await start(agent, ctx, config)
    [request] = paused["__interrupt__"][0].value["approvals"]
    assert request["tool"] == "send_email"
    assert outbox.sent == []
    await agent.ainvoke(
        Command(resume={request["approval_id"]: {"decision": "approved"}}), config, context=ctx
    )
    assert [(e.to, e.subject, e.body, e.user_id) for e in outbox.sent] == [
        ("ada@example.com", "Hi", "Hello Ada", "u1")
    ]


def test_send_email_without_delivery_is_disabled() -> None:
    spec = send_email_tool(None)
    assert spec.enabled is False
    assert spec.requires_approval is True
    assert spec.disabled_reason == "no email delivery configured"
