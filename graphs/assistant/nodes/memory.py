"""Long-term memory nodes: `recall_memories` before the answer, `update_memories` after it.

Memories live in the store the graph is compiled with (`Runtime.store`) under
`("users", <user id>, "memories")`. Memory never costs the user an answer: a store or model
failure here is logged and the turn goes on without it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

import prompts
from graphs.assistant.context import Context, context_of
from graphs.assistant.llm import chat_model
from graphs.assistant.messages import add_usage, text_of, transcript
from graphs.assistant.state import AssistantState, Usage, UsedMemory, no_usage
from graphs.memory import MAX_CONTENT_CHARS, MemoryBook, MemoryKind

log = logging.getLogger(__name__)

MEMORY = prompts.load("memory")
# The memory step is internal: its tokens never reach the "messages" stream.
QUIET: RunnableConfig = {"tags": [TAG_NOSTREAM]}
# How much of the exchange and of what is already known the extraction prompt shows.
EXCHANGE_CHARS = 6000
KNOWN_SHOWN = 20


class ExtractedMemory(BaseModel):
    """One durable fact, preference or instruction about the user."""

    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    kind: MemoryKind = "fact"
    importance: float = Field(default=0.5, ge=0.0, le=1.0)


class MemoryUpdate(BaseModel):
    """What the memory step decided: memories to store and descriptions of ones to delete."""

    memories: list[ExtractedMemory] = Field(default_factory=list)
    forget: list[str] = Field(default_factory=list)


MEMORY_UPDATE_SCHEMA: dict[str, Any] = MemoryUpdate.model_json_schema()


def _memory_on(runtime: Runtime[Context]) -> bool:
    return runtime.store is not None and context_of(runtime).memory.enabled


def _question(state: AssistantState) -> str:
    for message in reversed(state["messages"]):
        if isinstance(message, HumanMessage):
            return text_of(message)
    return ""


async def recall_memories(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Put the user's memories most relevant to this message into the turn (`memories`).

    The top `memory.recall_k` above `memory.min_score`, ranked by similarity weighted by
    importance; each one's access count and last-accessed time are updated.
    """
    if not _memory_on(runtime):
        return {"memories": []}
    assert runtime.store is not None
    context = context_of(runtime)
    question = _question(state)
    if not question.strip():
        return {"memories": []}
    book = MemoryBook(runtime.store, context.user_id)
    try:
        if not await book.enabled():
            return {"memories": []}
        recalled = await book.recall(
            question[:MAX_CONTENT_CHARS],
            limit=context.memory.recall_k,
            min_score=context.memory.min_score,
            now=context.now(),
        )
    except Exception:
        log.exception("memory_recall_failed")
        return {"memories": []}
    used: list[UsedMemory] = [
        {
            "id": memory.id,
            "content": memory.content,
            "kind": memory.kind,
            "importance": memory.importance,
            "score": round(memory.score or 0.0, 4),
        }
        for memory in recalled
    ]
    return {"memories": used}


def _parse_update(result: Any) -> tuple[MemoryUpdate, BaseMessage | None]:
    raw = result.get("raw") if isinstance(result, dict) else None
    parsed = result.get("parsed") if isinstance(result, dict) else result
    if isinstance(parsed, MemoryUpdate):
        return parsed, raw
    if isinstance(parsed, dict):
        return MemoryUpdate.model_validate(parsed), raw
    if isinstance(raw, AIMessage):
        for call in raw.tool_calls:
            return MemoryUpdate.model_validate(call["args"]), raw
        text = text_of(raw).strip().strip("`").removeprefix("json").strip()
        return MemoryUpdate.model_validate(json.loads(text)), raw
    return MemoryUpdate(), raw


async def _extract(
    llm: BaseChatModel, prompt: list[BaseMessage]
) -> tuple[MemoryUpdate, BaseMessage | None]:
    try:
        # The JSON schema, not the class: with the class, langchain's parser hands pydantic a
        # message it warns about on every call (see the router, which does the same).
        extractor = llm.with_structured_output(MEMORY_UPDATE_SCHEMA, include_raw=True)
    except NotImplementedError:
        reply = await llm.ainvoke(prompt, config=QUIET)
        return _parse_update({"raw": reply, "parsed": None})
    result = await extractor.ainvoke(prompt, config=QUIET)
    return _parse_update(result)


async def update_memories(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """After the answer: store what the user said worth remembering, forget what they retract.

    One structured-output call (`MemoryUpdate`, tagged nostream) over the latest exchange; a
    memory as similar as `memory.duplicate_threshold` to an existing one updates it instead of
    adding a copy. Its tokens go to `memory_usage`, apart from the answer's `usage`.
    """
    if not _memory_on(runtime):
        return {"memory_usage": no_usage()}
    assert runtime.store is not None
    context = context_of(runtime)
    question = _question(state)
    if not question.strip():
        return {"memory_usage": no_usage()}
    book = MemoryBook(runtime.store, context.user_id)
    usage: Usage = no_usage()
    try:
        if not await book.enabled():
            return {"memory_usage": usage}
        known = [memory["content"] for memory in state.get("memories", [])][:KNOWN_SHOWN]
        exchange = transcript(
            [HumanMessage(content=question), AIMessage(content=state.get("answer", ""))],
            max_chars=EXCHANGE_CHARS,
        )
        prompt: list[BaseMessage] = [
            HumanMessage(content=MEMORY.render(exchange=exchange, known=known))
        ]
        llm = await chat_model(context)
        update, raw = await _extract(llm, prompt)
        if raw is not None:
            usage = add_usage(None, raw, prompt)
        for description in update.forget:
            if description.strip():
                await book.forget_matching(
                    description.strip(), min_score=context.memory.forget_min_score
                )
        for extracted in update.memories:
            if not extracted.content.strip():
                continue
            await book.add(
                extracted.content,
                now=context.now(),
                kind=extracted.kind,
                importance=extracted.importance,
                conversation_id=context.conversation_id,
                duplicate_threshold=context.memory.duplicate_threshold,
            )
    except Exception:
        log.exception("memory_update_failed")
    return {"memory_usage": usage}
