"""The `retrieve` node: on the knowledge route, the graph searches before the model answers.

A model left to decide may skip the search and answer "from the knowledge base" anyway; so the
knowledge route always searches the user's message itself, plus one standalone rewrite of it
when the message only makes sense with the conversation before it ("and what about its
warranty?"). The searches are recorded like kb_search calls (an AI message with the calls and
their tool results), so the model reads the numbered passages where it expects them, the
passages are numbered for the turn's citations, and the model may still search again.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime

from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of, transcript
from graphs.assistant.state import AssistantState, ToolRun, ToolRunStatus, Usage
from graphs.assistant.toolset import KNOWLEDGE_TOOL
from graphs.knowledge import PassageBook
from graphs.tools import ToolContext, ToolError
from graphs.tools.kb_search import search_knowledge

QUIET: RunnableConfig = {"tags": [TAG_NOSTREAM]}
MAX_QUERY_CHARS = 500
# Words that point back into the conversation: a message using them (or a very short one) is
# rewritten into a standalone query, because on its own it would match nothing useful.
_REFERRING = re.compile(
    r"\b(it|its|it's|this|that|these|those|they|them|their|he|she|his|her|there|above|"
    r"previous|same|former|latter|one|ones|else|more)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
SHORT_MESSAGE_WORDS = 3
REWRITE_INSTRUCTIONS = (
    "Rewrite the user's last message as one standalone search query for their document "
    "collection, resolving words like 'it' or 'that' from the conversation. Answer with the "
    "query only, on one line, without quotes."
)


def needs_rewrite(question: str, earlier: Sequence[BaseMessage]) -> bool:
    """Whether the message leans on the conversation before it (so a rewrite helps search)."""
    if not earlier:
        return False
    words = _WORD.findall(question)
    return len(words) <= SHORT_MESSAGE_WORDS or bool(_REFERRING.search(question))


async def rewrite_query(
    context: Context, question: str, earlier: Sequence[BaseMessage], summary: str
) -> tuple[str | None, BaseMessage, list[BaseMessage]]:
    """One quiet model call turning the message into a standalone query (None if unusable)."""
    llm = await chat_model(context)
    history = transcript(earlier[-6:], max_chars=3000)
    background = f"Summary of earlier turns: {summary}\n\n" if summary else ""
    prompt: list[BaseMessage] = [
        SystemMessage(content=REWRITE_INSTRUCTIONS),
        HumanMessage(content=f"{background}Conversation:\n{history}\n\nLast message: {question}"),
    ]
    reply = await llm.ainvoke(prompt, config=QUIET)
    lines = [line.strip().strip("\"'") for line in text_of(reply).splitlines() if line.strip()]
    query = lines[0][:MAX_QUERY_CHARS] if lines else None
    return query, reply, prompt


async def retrieve(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Search the knowledge base for this turn's message (and a rewrite of it) before answering."""
    context = context_of(runtime)
    if context.retriever is None:
        # Nothing to search: the knowledge prompt tells the model to say so.
        return {}
    messages = state["messages"]
    question = text_of(messages[-1]).strip()[:MAX_QUERY_CHARS] if messages else ""
    if not question:
        return {}
    update: dict[str, Any] = {}
    queries = [question]
    earlier = list(messages[:-1])
    if needs_rewrite(question, earlier):
        rewritten, reply, prompt = await rewrite_query(
            context, question, earlier, state.get("summary", "")
        )
        usage: Usage = add_usage(state.get("usage"), reply, prompt)
        update["usage"] = usage
        if rewritten and rewritten.lower() != question.lower():
            queries.append(rewritten)
    book = PassageBook(state.get("passages", []))
    tool_context = ToolContext(
        user_id=context.user_id, retriever=context.retriever, top_k=context.top_k, passages=book
    )
    calls = [
        ToolCall(name=KNOWLEDGE_TOOL, args={"query": query}, id=f"retrieve-{uuid.uuid4().hex}")
        for query in queries
    ]
    results: list[ToolMessage] = []
    runs: list[ToolRun] = list(state.get("tool_runs", []))
    for call in calls:
        started = time.perf_counter()
        status: ToolRunStatus = "ok"
        try:
            text = await search_knowledge(call["args"]["query"], tool_context)
        except ToolError as error:
            text, status = str(error), "error"
        duration_ms = int((time.perf_counter() - started) * 1000)
        results.append(
            ToolMessage(
                content=text,
                tool_call_id=call["id"] or "",
                name=KNOWLEDGE_TOOL,
                status="success" if status == "ok" else "error",
            )
        )
        runs.append(
            {
                "id": call["id"] or "",
                "name": KNOWLEDGE_TOOL,
                "args": dict(call["args"]),
                "result": text,
                "duration_ms": duration_ms,
                "status": status,
            }
        )
        if status == "error":
            break  # the store is down: a second query would fail the same way
    searched = AIMessage(content="", tool_calls=calls[: len(results)])
    update |= {
        "messages": [searched, *results],
        "tool_runs": runs,
        "passages": book.passages,
    }
    return update
