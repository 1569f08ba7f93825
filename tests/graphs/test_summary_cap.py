"""The running summary stays within MAI_SUMMARY_MAX_TOKENS (Context.summary_max_tokens)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph.state import CompiledStateGraph

from graphs.assistant import Context
from graphs.assistant.nodes.load_context import summary_tokens
from tests.fake_llm import scripted
from tests.graphs.conftest import thread

Agent = CompiledStateGraph[Any, Any, Any, Any]


def _history(turns: int) -> list[Any]:
    history: list[Any] = []
    for i in range(turns):
        history += [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]
    return history


async def test_a_summary_over_the_cap_is_summarised_again(agent: Agent) -> None:
    too_long = "The user asked many things. " * 100  # about 700 tokens
    llm = scripted({"route": "direct"}, too_long, "A short summary.", "Here is the answer.")
    context = Context(llm=llm, max_history_messages=8, summary_max_tokens=200)
    result = await agent.ainvoke(
        {"messages": [*_history(12), HumanMessage("latest")]}, thread(), context=context
    )
    assert result["summary"] == "A short summary."
    # The second summary call was given the over-long summary to compress.
    assert "The user asked many things." in str(llm.calls[2][0].content)
    assert result["answer"] == "Here is the answer."


async def test_a_model_that_does_not_compress_is_cut_to_the_cap(agent: Agent) -> None:
    too_long = "The user asked many things. " * 100
    llm = scripted({"route": "direct"}, too_long, too_long + too_long, "Answer.")
    context = Context(llm=llm, max_history_messages=8, summary_max_tokens=200)
    result = await agent.ainvoke(
        {"messages": [*_history(12), HumanMessage("latest")]}, thread(), context=context
    )
    assert summary_tokens(result["summary"]) <= 200
    assert result["summary"].startswith("The user asked many things.")
    assert llm.remaining == 0


async def test_a_summary_within_the_cap_costs_no_extra_call(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "Twelve questions.", "Answer.")
    context = Context(llm=llm, max_history_messages=8, summary_max_tokens=200)
    result = await agent.ainvoke(
        {"messages": [*_history(12), HumanMessage("latest")]}, thread(), context=context
    )
    assert result["summary"] == "Twelve questions."
    assert len(llm.calls) == 3
