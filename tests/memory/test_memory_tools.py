"""The assistant's `remember` and `forget` tools, called by the scripted fake model.

They write to the user's own namespace through the graph's store, once per tool call id, and
respect the user's and the service's memory switches.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore

from graphs.assistant import Context, builder
from graphs.memory import MemoryBook, MemoryOptions, memory_namespace
from graphs.tools import LedgerEntry
from graphs.tools.ledger import STARTED, UNKNOWN_OUTCOME
from tests.fake_llm import ask_tools, scripted, tool_call
from tests.graphs.conftest import turn
from tests.memory.conftest import Agent

NOTHING: dict[str, Any] = {"memories": [], "forget": []}
PEANUTS = "The user is allergic to peanuts"


class DictLedger:
    """A ToolLedger kept in a dict, with the database ledger's semantics (first claim wins)."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    async def claim(self, call_id: str, tool: str) -> LedgerEntry | None:
        """None for a new call; the recorded entry (or the unknown outcome) for a known one."""
        found = self.entries.get(call_id)
        if found is None:
            self.entries[call_id] = LedgerEntry("", STARTED)
            return None
        return LedgerEntry(UNKNOWN_OUTCOME, "error") if found.status == STARTED else found

    async def record(self, call_id: str, tool: str, entry: LedgerEntry) -> None:
        """Keep the result."""
        self.entries[call_id] = entry

    async def release(self, call_id: str) -> None:
        """Forget an unfinished claim."""
        self.entries.pop(call_id, None)


def remembering(content: str, call_id: str = "call_remember", **args: Any) -> list[Any]:
    """A turn in which the model calls remember, then answers (nothing for the memory step)."""
    call = tool_call("remember", {"content": content, **args}, call_id)
    return [{"route": "tools"}, ask_tools(call), "I will remember that.", NOTHING]


def forgetting(what: str, call_id: str = "call_forget") -> list[Any]:
    """A turn in which the model calls forget, then answers."""
    call = tool_call("forget", {"what": what}, call_id)
    return [{"route": "tools"}, ask_tools(call), "Forgotten.", NOTHING]


def tool_result(llm: Any) -> ToolMessage:
    """The tool message the model read after its tool call (third model call's last input)."""
    message = llm.calls[2][-1]
    assert isinstance(message, ToolMessage)
    return message


async def test_remember_stores_in_the_users_namespace_and_is_recalled_later(
    agent: Agent, store: BaseStore
) -> None:
    llm = scripted(*remembering(PEANUTS, kind="fact", importance=0.95))
    context = Context(user_id="gus", conversation_id="conv-a", llm=llm)
    result = await turn(agent, "Remember that I am allergic to peanuts.", context)
    [run] = result["tool_runs"]
    assert (run["name"], run["status"]) == ("remember", "ok")
    assert PEANUTS in tool_result(llm).content
    [item] = await store.asearch(memory_namespace("gus"))
    assert item.namespace == ("users", "gus", "memories")
    [memory] = await MemoryBook(store, "gus").all()
    assert (memory.content, memory.kind, memory.importance) == (PEANUTS, "fact", 0.95)
    assert memory.conversation_id == "conv-a"
    assert memory.metadata == {"source": "remember"}
    assert await MemoryBook(store, "hal").all() == []

    llm = scripted({"route": "direct"}, "Avoid peanuts.", NOTHING)
    later = await turn(agent, "Am I allergic to peanuts?", Context(user_id="gus", llm=llm))
    assert [used["content"] for used in later["memories"]] == [PEANUTS]


async def test_remembering_a_duplicate_updates_it(agent: Agent, store: BaseStore) -> None:
    book = MemoryBook(store, "ivy")
    existing, _ = await book.add(PEANUTS, now=Context().now(), importance=0.3)
    llm = scripted(*remembering(PEANUTS, importance=0.9))
    await turn(agent, "Remember my peanut allergy.", Context(user_id="ivy", llm=llm))
    [memory] = await book.all()
    assert (memory.id, memory.importance) == (existing.id, 0.9)
    assert "Updated" in tool_result(llm).content


async def test_forget_deletes_the_matching_memory_only(agent: Agent, store: BaseStore) -> None:
    book = MemoryBook(store, "jo")
    now = Context().now()
    await book.add(PEANUTS, now=now)
    kept, _ = await book.add("The user lives in Lisbon", now=now)
    await MemoryBook(store, "kim").add(PEANUTS, now=now)

    llm = scripted(*forgetting(PEANUTS))
    result = await turn(
        agent, "Forget that I am allergic to peanuts.", Context(user_id="jo", llm=llm)
    )
    assert result["tool_runs"][0]["status"] == "ok"
    assert "Forgot 1 memory" in tool_result(llm).content
    assert [memory.id for memory in await book.all()] == [kept.id]
    # Another user's identical memory is untouched.
    assert len(await MemoryBook(store, "kim").all()) == 1

    llm = scripted(*forgetting("cat vaccination dates"))
    await turn(agent, "Forget my cat's vaccinations.", Context(user_id="jo", llm=llm))
    assert "nothing was deleted" in tool_result(llm).content
    assert len(await book.all()) == 1


async def test_a_tool_call_id_writes_once_across_reruns(agent: Agent, store: BaseStore) -> None:
    ledger = DictLedger()
    llm = scripted(*remembering(PEANUTS, call_id="call_once"))
    await turn(agent, "Remember my allergy.", Context(user_id="lu", llm=llm, tool_ledger=ledger))
    first = tool_result(llm).content
    # The same call id again (a node re-run after a crash or resume): recorded, not re-run.
    llm = scripted(*remembering("The user lives in Oslo", call_id="call_once"))
    await turn(agent, "Remember my city.", Context(user_id="lu", llm=llm, tool_ledger=ledger))
    assert tool_result(llm).content == first
    assert [memory.content for memory in await MemoryBook(store, "lu").all()] == [PEANUTS]

    llm = scripted(*forgetting(PEANUTS, call_id="call_forget_once"))
    await turn(agent, "Forget it.", Context(user_id="lu", llm=llm, tool_ledger=ledger))
    await MemoryBook(store, "lu").add(PEANUTS, now=Context().now())
    llm = scripted(*forgetting(PEANUTS, call_id="call_forget_once"))
    await turn(agent, "Forget it.", Context(user_id="lu", llm=llm, tool_ledger=ledger))
    assert "Forgot 1 memory" in tool_result(llm).content
    assert len(await MemoryBook(store, "lu").all()) == 1


async def test_the_users_switch_off_stores_nothing_but_forget_still_deletes(
    agent: Agent, store: BaseStore
) -> None:
    book = MemoryBook(store, "max")
    await book.add(PEANUTS, now=Context().now())
    await book.set_enabled(False)
    llm = scripted(*remembering("The user lives in Oslo"))
    result = await turn(agent, "Remember that I live in Oslo.", Context(user_id="max", llm=llm))
    assert result["tool_runs"][0]["status"] == "error"
    assert "turned off" in tool_result(llm).content
    assert [memory.content for memory in await book.all()] == [PEANUTS]

    llm = scripted(*forgetting(PEANUTS))
    await turn(agent, "Forget my allergy.", Context(user_id="max", llm=llm))
    assert await book.all() == []


async def test_the_service_switch_off_offers_no_memory_tools(
    agent: Agent, store: BaseStore
) -> None:
    off = MemoryOptions(enabled=False)
    llm = scripted(
        {"route": "tools"}, ask_tools(tool_call("remember", {"content": PEANUTS})), "No."
    )
    result = await turn(agent, "Remember my allergy.", Context(user_id="ned", llm=llm, memory=off))
    assert not {"remember", "forget"} & {tool["function"]["name"] for tool in llm.bound_tools}
    assert result["tool_runs"][0]["status"] == "error"
    assert "not available" in tool_result(llm).content
    assert await MemoryBook(store, "ned").all() == []


async def test_without_a_store_the_tools_say_so() -> None:
    agent = builder.compile(checkpointer=InMemorySaver())
    llm = scripted(
        {"route": "tools"}, ask_tools(tool_call("remember", {"content": PEANUTS})), "No."
    )
    result = await turn(agent, "Remember my allergy.", Context(user_id="oz", llm=llm))
    assert result["tool_runs"][0]["status"] == "error"
    assert "Long-term memory is not available" in tool_result(llm).content


async def test_a_blank_forget_deletes_nothing(agent: Agent, store: BaseStore) -> None:
    book = MemoryBook(store, "pam")
    await book.add(PEANUTS, now=Context().now())
    llm = scripted(*forgetting("   "))
    result = await turn(agent, "Forget.", Context(user_id="pam", llm=llm))
    assert result["tool_runs"][0]["status"] == "error"
    assert "Invalid arguments for forget" in tool_result(llm).content
    assert len(await book.all()) == 1
