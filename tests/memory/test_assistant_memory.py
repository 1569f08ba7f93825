"""The assistant remembers across conversations, forgets on request, and keeps memory apart.

The graph runs with the scripted fake model and the real memory store of each backend.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.store.base import BaseStore

from graphs.assistant import Context
from graphs.memory import MemoryBook, MemoryOptions
from tests.fake_llm import scripted
from tests.graphs.conftest import thread, turn
from tests.memory.conftest import Agent

NOTHING: dict[str, Any] = {"memories": [], "forget": []}
REX = "The user's dog is called Rex"


def remember(*contents: str, importance: float = 0.8) -> dict[str, Any]:
    """The memory step's structured reply storing these memories."""
    return {
        "memories": [
            {"content": content, "kind": "fact", "importance": importance} for content in contents
        ],
        "forget": [],
    }


def system_prompt(call: list[Any]) -> str:
    assert isinstance(call[0], SystemMessage)
    return str(call[0].content)


async def test_a_fact_from_one_conversation_is_used_in_the_next(
    agent: Agent, store: BaseStore
) -> None:
    llm = scripted({"route": "direct"}, "What a good name!", remember(REX))
    first = await turn(agent, "My dog is called Rex.", Context(user_id="alice", llm=llm))
    assert first["answer"] == "What a good name!"
    assert first["memory_usage"]["input_tokens"] > 0
    [stored] = await MemoryBook(store, "alice").all()
    assert stored.content == REX
    assert stored.importance == 0.8

    llm = scripted({"route": "direct"}, "Your dog is Rex.", NOTHING)
    second = await turn(agent, "What is my dog called?", Context(user_id="alice", llm=llm))
    assert [memory["content"] for memory in second["memories"]] == [REX]
    assert second["memories"][0]["id"] == stored.id
    # The answering call (route, answer, memory step: the second) saw the memory.
    assert REX in system_prompt(llm.calls[1])
    recalled = await MemoryBook(store, "alice").get(stored.id)
    assert recalled is not None
    assert recalled.access_count == 1


async def test_another_user_never_recalls_it(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "Noted.", remember(REX))
    await turn(agent, "My dog is called Rex.", Context(user_id="alice", llm=llm))

    llm = scripted({"route": "direct"}, "I do not know.", NOTHING)
    result = await turn(agent, "What is my dog called?", Context(user_id="mallory", llm=llm))
    assert result["memories"] == []
    assert REX not in system_prompt(llm.calls[1])


async def test_forget_that_removes_the_memory(agent: Agent, store: BaseStore) -> None:
    llm = scripted({"route": "direct"}, "Noted.", remember(REX))
    await turn(agent, "Remember that my dog is called Rex.", Context(user_id="bea", llm=llm))

    forget = {"memories": [], "forget": ["the user's dog is called Rex"]}
    llm = scripted({"route": "direct"}, "Forgotten.", forget)
    await turn(agent, "Forget what I told you about my dog.", Context(user_id="bea", llm=llm))
    assert await MemoryBook(store, "bea").all() == []

    llm = scripted({"route": "direct"}, "I do not know.", NOTHING)
    result = await turn(agent, "What is my dog called?", Context(user_id="bea", llm=llm))
    assert result["memories"] == []


async def test_a_duplicate_updates_instead_of_inserting(agent: Agent, store: BaseStore) -> None:
    for importance in (0.4, 0.9):
        llm = scripted({"route": "direct"}, "Noted.", remember(REX, importance=importance))
        await turn(agent, "My dog is called Rex.", Context(user_id="cy", llm=llm))
    [memory] = await MemoryBook(store, "cy").all()
    assert memory.importance == 0.9


async def test_memory_off_writes_and_recalls_nothing(agent: Agent, store: BaseStore) -> None:
    await MemoryBook(store, "dee").add(REX, now=Context().now())
    off = MemoryOptions(enabled=False)
    llm = scripted({"route": "direct"}, "I do not know.")
    result = await turn(
        agent,
        "My dog is called Rex, what is he called?",
        Context(user_id="dee", llm=llm, memory=off),
    )
    assert result["memories"] == []
    assert len(llm.calls) == 2  # no memory step
    assert REX not in system_prompt(llm.calls[1])
    assert len(await MemoryBook(store, "dee").all()) == 1


async def test_the_users_own_switch_turns_memory_off(agent: Agent, store: BaseStore) -> None:
    book = MemoryBook(store, "fay")
    await book.add(REX, now=Context().now())
    await book.set_enabled(False)
    llm = scripted({"route": "direct"}, "I do not know.")
    result = await turn(agent, "My dog is called Rex.", Context(user_id="fay", llm=llm))
    assert result["memories"] == []
    assert len(llm.calls) == 2  # no memory step
    assert len(await book.all()) == 1

    await book.set_enabled(True)
    llm = scripted({"route": "direct"}, "Rex.", NOTHING)
    result = await turn(agent, "What is my dog called?", Context(user_id="fay", llm=llm))
    assert [memory["content"] for memory in result["memories"]] == [REX]


async def test_the_answer_streams_before_the_memory_step(agent: Agent) -> None:
    llm = scripted({"route": "direct"}, "Rex is a fine name for a dog.", remember(REX))
    order: list[str] = []
    async for mode, chunk in agent.astream(
        {"messages": [HumanMessage(content="My dog is called Rex.")]},
        thread(),
        context=Context(user_id="eve", llm=llm),
        stream_mode=["messages", "updates"],
    ):
        if mode == "messages":
            _message, metadata = chunk
            order.append(f"token:{metadata['langgraph_node']}")
        else:
            order.extend(f"done:{node}" for node in chunk)
    tokens = [i for i, event in enumerate(order) if event == "token:call_model"]
    assert tokens, order
    assert max(tokens) < order.index("done:update_memories")
    # The memory step's own model call is internal: none of its tokens reach the stream.
    assert "token:update_memories" not in order
