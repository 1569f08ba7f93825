"""The assistant graph end to end, through ainvoke/astream, on every checkpointer."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

from graphs.assistant import Context, Passage, RetrieverUnavailable
from graphs.tools import ToolContext, ToolRetry, ToolSpec, TransientToolError, build_registry
from tests.fake_llm import ask_tools, scripted, tool_call
from tests.graphs.conftest import thread, turn

Agent = CompiledStateGraph[Any, Any, Any, Any]


class NoArgs(BaseModel):
    """No arguments."""


def tool(name: str, run: Any, **options: Any) -> ToolSpec:
    """A test tool with no arguments."""
    return ToolSpec(
        name=name,
        description=f"The {name} test tool.",
        args_schema=NoArgs,
        coroutine=run,
        category="test",
        **options,
    )


def system_text(call: list[Any]) -> str:
    assert isinstance(call[0], SystemMessage)
    return str(call[0].content)


async def test_direct_route_answers_without_tools(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "Paris is the capital of France.")
    result = await turn(agent, "What is the capital of France?", Context(llm=llm))
    assert result["route"] == "direct"
    assert result["answer"] == "Paris is the capital of France."
    assert result["tool_runs"] == []
    assert result["citations"] == []
    assert llm.bound_tools == []
    assert result["usage"]["input_tokens"] > 0
    assert result["usage"]["output_tokens"] > 0
    assert isinstance(result["messages"][-1], AIMessage)
    assert "no tools are available" in system_text(llm.calls[-1])


async def test_tool_round_trip(agent: Agent) -> None:
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("calculator", {"expression": "2+2"}, "call_1")),
        "It is 4.",
    )
    result = await turn(agent, "What is 2+2?", Context(llm=llm))
    assert result["route"] == "tools"
    assert result["answer"] == "It is 4."
    [run] = result["tool_runs"]
    assert run["id"] == "call_1"
    assert run["name"] == "calculator"
    assert run["args"] == {"expression": "2+2"}
    assert run["result"] == "4"
    assert run["status"] == "ok"
    assert run["duration_ms"] >= 0
    bound = {t["function"]["name"] for t in llm.bound_tools}
    # web_search and http_api are off (not configured).
    assert bound == {"calculator", "current_time", "kb_search", "remember", "forget"}
    tool_message = llm.calls[2][-1]
    assert isinstance(tool_message, ToolMessage)
    assert tool_message.content == "4"
    assert tool_message.tool_call_id == "call_1"
    # Usage sums the three model calls of the turn.
    assert result["usage"]["output_tokens"] >= 3


async def test_parallel_tool_calls_run_concurrently(agent: Agent) -> None:
    events: list[str] = []
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def waiting_for(me: str, other: str) -> Any:
        async def run(args: Any, context: ToolContext) -> str:
            events.append(f"start {me}")
            started[me].set()
            # Finishes only once the other tool has started: run one after the other, this
            # would time out instead.
            await asyncio.wait_for(started[other].wait(), timeout=5)
            await asyncio.sleep(0.05)
            events.append(f"end {me}")
            return f"{me} done"

        return run

    tools = build_registry().extended(
        tool("slow_a", waiting_for("a", "b")), tool("slow_b", waiting_for("b", "a"))
    )
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("slow_a", {}, "ca"), tool_call("slow_b", {}, "cb")),
        "Both done.",
    )
    result = await turn(agent, "run both", Context(llm=llm, tools=tools))
    assert [r["status"] for r in result["tool_runs"]] == ["ok", "ok"]
    assert [r["result"] for r in result["tool_runs"]] == ["a done", "b done"]
    assert events[:2] == ["start a", "start b"]  # both started before either ended
    assert sorted(events[2:]) == ["end a", "end b"]
    answered = [m for m in llm.calls[2] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in answered] == ["ca", "cb"]


async def test_failing_tool_is_reported_to_the_model(agent: Agent) -> None:
    async def broken(args: Any, context: ToolContext) -> str:
        raise RuntimeError("disk on fire")

    tools = build_registry().extended(tool("broken", broken))
    llm = scripted(
        {"route": "tools"},
        ask_tools(
            tool_call("broken", {}, "c1"),
            tool_call("calculator", {"expression": "1/0"}, "c2"),
            tool_call("no_such_tool", {}, "c3"),
        ),
        "Sorry, the tools failed.",
    )
    result = await turn(agent, "try", Context(llm=llm, tools=tools))
    assert result["answer"] == "Sorry, the tools failed."
    runs = {r["name"]: r for r in result["tool_runs"]}
    assert runs["broken"]["status"] == "error"
    assert "RuntimeError: disk on fire" in runs["broken"]["result"]
    assert runs["calculator"]["status"] == "error"
    assert "Division by zero" in runs["calculator"]["result"]
    assert runs["no_such_tool"]["status"] == "error"
    assert "not available" in runs["no_such_tool"]["result"]
    messages = [m for m in llm.calls[2] if isinstance(m, ToolMessage)]
    assert [m.status for m in messages] == ["error", "error", "error"]


async def test_timing_out_tool_is_stopped(agent: Agent) -> None:
    cancelled = asyncio.Event()

    async def hangs(args: Any, context: ToolContext) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    tools = build_registry().extended(tool("hangs", hangs, timeout_seconds=0.2))
    llm = scripted(
        {"route": "tools"},
        ask_tools(tool_call("hangs", {}), tool_call("calculator", {"expression": "6*7"})),
        "The first tool timed out; 6*7 is 42.",
    )
    result = await turn(agent, "go", Context(llm=llm, tools=tools, tool_timeout_seconds=30))
    hung, calc = result["tool_runs"]
    assert hung["status"] == "timeout"
    assert "timed out after 0.2 s" in hung["result"]
    assert calc["status"] == "ok"
    assert calc["result"] == "42"
    assert cancelled.is_set()
    assert result["answer"].startswith("The first tool timed out")


async def test_context_timeout_applies_to_tools_without_their_own(agent: Agent) -> None:
    async def slow(args: Any, context: ToolContext) -> str:
        await asyncio.sleep(60)
        return "never"

    tools = build_registry().extended(tool("slow", slow))
    llm = scripted({"route": "tools"}, ask_tools(tool_call("slow", {})), "It timed out.")
    result = await turn(agent, "go", Context(llm=llm, tools=tools, tool_timeout_seconds=0.1))
    assert result["tool_runs"][0]["status"] == "timeout"


async def test_transient_failures_are_retried(agent: Agent) -> None:
    attempts: list[int] = []

    async def flaky(args: Any, context: ToolContext) -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise TransientToolError("peer busy")
        return "third time lucky"

    retry = ToolRetry(max_attempts=3, backoff_seconds=0.01)
    tools = build_registry().extended(tool("flaky", flaky, retry=retry))
    llm = scripted({"route": "tools"}, ask_tools(tool_call("flaky", {})), "Done.")
    result = await turn(agent, "go", Context(llm=llm, tools=tools))
    assert attempts == [1, 2, 3]
    assert result["tool_runs"][0]["status"] == "ok"
    assert result["tool_runs"][0]["result"] == "third time lucky"


async def test_iteration_cap_stops_the_loop_with_a_clear_message(agent: Agent) -> None:
    again = [ask_tools(tool_call("calculator", {"expression": f"{i}+1"})) for i in range(3)]
    llm = scripted({"route": "tools"}, *again, {"route": "direct"}, "Fine.")
    config = thread()
    result = await turn(agent, "loop", Context(llm=llm, max_tool_iterations=2), config)
    assert len(result["tool_runs"]) == 2
    assert "tool-call limit" in result["answer"]
    assert "(2 rounds of tool calls)" in result["answer"]
    assert "calculator (x2)" in result["answer"]
    # The unanswered calls are closed so the next turn sends a valid history to the model.
    history = result["messages"]
    assert isinstance(history[-2], ToolMessage)
    assert history[-2].status == "error"
    assert history[-1].content == result["answer"]
    second = await turn(agent, "ok then", Context(llm=llm), config)
    assert second["answer"] == "Fine."
    pending = {c["id"] for m in llm.calls[-1] if isinstance(m, AIMessage) for c in m.tool_calls}
    answered = {m.tool_call_id for m in llm.calls[-1] if isinstance(m, ToolMessage)}
    assert pending == answered


async def test_history_is_kept_per_thread(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "Hello Ada.", {"route": "direct"}, "You are Ada.")
    config = thread()
    await turn(agent, "I am Ada.", Context(llm=llm), config)
    result = await turn(agent, "Who am I?", Context(llm=llm), config)
    assert result["answer"] == "You are Ada."
    seen = [m.content for m in llm.calls[-1][1:]]
    assert seen == ["I am Ada.", "Hello Ada.", "Who am I?"]
    assert result["tool_runs"] == []  # per-turn fields were reset


async def test_long_history_is_folded_into_the_summary(agent: Agent) -> None:
    history: list[Any] = []
    for i in range(12):
        history += [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]
    llm = scripted(
        {"route": "direct"},
        "The user asked twelve numbered questions.",
        "Here is the answer.",
    )
    config = thread()
    context = Context(llm=llm, max_history_messages=8)
    result = await agent.ainvoke(
        {"messages": [*history, HumanMessage("latest question")]}, config, context=context
    )
    assert result["summary"] == "The user asked twelve numbered questions."
    kept = result["messages"]
    assert len(kept) <= 8 + 1  # the kept window, plus the new answer
    assert kept[-2].content == "latest question"
    assert kept[-1].content == "Here is the answer."
    assert isinstance(kept[0], HumanMessage)
    summary_prompt = str(llm.calls[1][0].content)
    assert "question 0" in summary_prompt
    assert "latest question" not in summary_prompt
    answer_prompt = llm.calls[2]
    assert "The user asked twelve numbered questions." in system_text(answer_prompt)
    assert all(m.content != "question 0" for m in answer_prompt)
    stored = await agent.aget_state(config)
    assert len(stored.values["messages"]) == len(kept)
    # A short follow-up does not fold again.
    llm.script += [{"route": "direct"}, "Sure."]
    await turn(agent, "thanks", context, config)
    assert llm.remaining == 0
    assert len(llm.calls) == 5


async def test_history_over_the_token_budget_is_folded(agent: Agent) -> None:
    long = "word " * 400  # about 500 tokens each
    history = [HumanMessage(long), AIMessage(long), HumanMessage(long), AIMessage(long)]
    llm = scripted({"route": "direct"}, "Long texts were exchanged.", "Short answer.")
    context = Context(llm=llm, context_tokens=1500)
    result = await agent.ainvoke(
        {"messages": [*history, HumanMessage("now a short one")]}, thread(), context=context
    )
    assert result["summary"] == "Long texts were exchanged."
    assert [m.content for m in result["messages"]] == ["now a short one", "Short answer."]


async def test_route_falls_back_to_plain_text_without_structured_output(agent: Agent) -> None:
    llm = scripted("knowledge", "I could not search the knowledge base.", structured_output=False)
    result = await turn(agent, "What does my contract say?", Context(llm=llm))
    assert result["route"] == "knowledge"
    assert "one word" in str(llm.calls[0][0].content)


async def test_route_reads_unparseable_output_as_text(agent: Agent) -> None:
    llm = scripted("I think this needs tools.", "4")
    result = await turn(agent, "2+2?", Context(llm=llm))
    assert result["route"] == "tools"
    nothing = scripted("hmm", "ok")
    fallback = await turn(agent, "?", Context(llm=nothing))
    assert fallback["route"] == "tools"  # unclassifiable: the route that can do everything


async def test_knowledge_route_without_retriever_says_it_could_not_search(agent: Agent) -> None:
    llm = scripted(
        {"route": "knowledge"},
        ask_tools(tool_call("kb_search", {"query": "vacation policy"})),
        "Sorry, I could not search your documents right now.",
    )
    result = await turn(agent, "What is our vacation policy?", Context(llm=llm))
    assert result["route"] == "knowledge"
    assert {t["function"]["name"] for t in llm.bound_tools} == {"kb_search"}
    assert "no knowledge base is available" in system_text(llm.calls[1])
    [run] = result["tool_runs"]
    assert run["status"] == "error"
    assert run["result"].startswith("The knowledge base could not be searched")
    assert result["citations"] == []
    assert "could not search the knowledge base" in result["answer"]
    assert result["answer"] == result["messages"][-1].content


class Library:
    """A tiny in-memory retriever: passages scored by words shared with the query."""

    def __init__(self, passages: list[Passage], *, down: bool = False) -> None:
        self.passages = passages
        self.down = down
        self.queries: list[tuple[str, str, int]] = []

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        self.queries.append((query, user_id, top_k))
        if self.down:
            raise RetrieverUnavailable("the vector store is unreachable")
        words = set(query.lower().split())
        hits = [p for p in self.passages if words & set(p["text"].lower().split())]
        return hits[:top_k]


def passage(chunk: str, doc: str, text: str, page: int | None = 1) -> Passage:
    return {
        "chunk_id": chunk,
        "document_id": doc,
        "title": f"{doc}.pdf",
        "page": page,
        "section": None,
        "text": text,
        "score": 0.8,
        "start": 0,
        "end": len(text),
    }


async def test_knowledge_route_cites_passages(agent: Agent) -> None:
    library = Library(
        [
            passage("c1", "handbook", "vacation is 25 days per year"),
            passage("c2", "handbook", "sick leave needs a doctor note", page=4),
            passage("c3", "travel", "vacation travel is booked by the office"),
        ]
    )
    llm = scripted(
        {"route": "knowledge"},
        ask_tools(tool_call("kb_search", {"query": "vacation days"})),
        ask_tools(tool_call("kb_search", {"query": "sick leave vacation"})),
        "You get 25 days [1]; travel goes through the office [2], sick leave needs a note [3].",
    )
    context = Context(llm=llm, retriever=library, user_id="u1", top_k=3)
    result = await turn(agent, "How much vacation do I get?", context)
    # The graph searches the question itself first, then the model searches twice more.
    assert library.queries[0] == ("How much vacation do I get?", "u1", 3)
    assert library.queries[1] == ("vacation days", "u1", 3)
    forced, first, second = (r["result"] for r in result["tool_runs"])
    assert "[1] handbook.pdf (page 1)" in forced
    assert "[1] handbook.pdf (page 1)" in first
    assert "[2] travel.pdf" in first
    # The second search finds c1 again (keeps [1]) and c2 (new: [3]).
    assert "[1] handbook.pdf" in second
    assert "[3] handbook.pdf (page 4)" in second
    assert [c["number"] for c in result["citations"]] == [1, 2, 3]
    assert [c["document_id"] for c in result["citations"]] == ["handbook", "travel", "handbook"]
    assert result["citations"][2]["page"] == 4
    assert result["citations"][0]["snippet"] == "vacation is 25 days per year"
    assert "Note:" not in result["answer"]


async def test_knowledge_route_with_nothing_found_says_so(agent: Agent) -> None:
    library = Library([passage("c1", "handbook", "vacation is 25 days per year")])
    llm = scripted(
        {"route": "knowledge"},
        ask_tools(tool_call("kb_search", {"query": "parking"})),
        "Parking is usually free.",
    )
    result = await turn(agent, "Where do I park?", Context(llm=llm, retriever=library))
    assert "No relevant passages were found" in result["tool_runs"][0]["result"]
    assert result["citations"] == []
    assert result["answer"].endswith(
        "no relevant passages were found in the knowledge base, "
        "so this answer is not based on your documents."
    )


async def test_unavailable_retriever_is_a_tool_error(agent: Agent) -> None:
    library = Library([], down=True)
    llm = scripted(
        {"route": "knowledge"},
        ask_tools(tool_call("kb_search", {"query": "x"})),
        "I could not search the knowledge base just now.",
    )
    result = await turn(agent, "x?", Context(llm=llm, retriever=library))
    forced, run = result["tool_runs"]
    assert forced["status"] == run["status"] == "error"
    assert "vector store is unreachable" in run["result"]
    assert result["answer"].startswith("I could not search the knowledge base just now.")
    assert result["answer"].endswith("so this answer is not based on your documents.")


async def test_only_the_answering_call_streams_tokens(agent: Agent) -> None:
    llm = scripted(
        {"route": "tools"},
        "Summary of the older turns.",
        ask_tools(tool_call("calculator", {"expression": "3*3"})),
        "Three times three is nine.",
    )
    history: list[Any] = []
    for i in range(4):
        history += [HumanMessage(f"old question {i}"), AIMessage(f"old answer {i}")]
    seen: list[tuple[str, Any]] = []
    async for mode, chunk in agent.astream(
        {"messages": [*history, HumanMessage("3*3?")]},
        thread(),
        context=Context(llm=llm, max_history_messages=4),
        stream_mode=["messages", "updates", "values"],
    ):
        seen.append((mode, chunk))
    tokens = [
        (chunk[0], chunk[1])
        for mode, chunk in seen
        if mode == "messages"
        if chunk[0].type == "AIMessageChunk"
    ]
    assert tokens
    assert {meta["langgraph_node"] for _, meta in tokens} == {"call_model"}
    text = "".join(str(message.content) for message, _ in tokens)
    assert text == "Three times three is nine."
    assert "route" not in text
    assert "Summary" not in text  # the summary call is nostream too
    updates = [next(iter(chunk)) for mode, chunk in seen if mode == "updates"]
    assert updates == [
        "route",
        "recall_memories",
        "load_context",
        "call_model",
        "tools",
        "call_model",
        "synthesize",
        "update_memories",
    ]
    final = [chunk for mode, chunk in seen if mode == "values"][-1]
    assert final["answer"] == "Three times three is nine."


async def test_usage_is_estimated_when_the_model_reports_none(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "An answer of several words.", report_usage=False)
    result = await turn(agent, "Tell me something.", Context(llm=llm))
    usage = result["usage"]
    assert usage["input_tokens"] > 50  # the system prompt and the question, estimated
    assert 5 <= usage["output_tokens"] <= 30


async def test_unreachable_llm_raises_the_openai_error(agent: Agent) -> None:
    context = Context(llm_base_url="http://127.0.0.1:9/v1", model="")
    with pytest.raises(openai.APIConnectionError):
        await turn(agent, "hello?", context)


async def test_tool_calls_left_unanswered_by_a_failed_turn_are_repaired(agent: Agent) -> None:
    config = thread()
    # What a turn that died mid-tool leaves behind: an AI message whose call never got a result.
    await agent.aupdate_state(
        config,
        {
            "messages": [
                HumanMessage(content="add 1 and 1", id="h1"),
                AIMessage(
                    content="",
                    id="a1",
                    tool_calls=[tool_call("calculator", {"expression": "1+1"}, "call_dead")],
                ),
            ]
        },
        as_node="synthesize",
    )
    llm = scripted({"route": "direct"}, "Hello again.")
    result = await turn(agent, "hi", Context(llm=llm), config)
    assert result["answer"] == "Hello again."
    sent = llm.calls[-1]
    answered = {m.tool_call_id for m in sent if isinstance(m, ToolMessage)}
    for message in sent:
        if isinstance(message, AIMessage):
            assert all(call["id"] in answered for call in message.tool_calls)
    stored = (await agent.aget_state(config)).values["messages"]
    repaired = next(m for m in stored if m.id == "a1")
    assert isinstance(repaired, AIMessage)
    assert repaired.tool_calls == []
    assert "interrupted" in str(repaired.content)
