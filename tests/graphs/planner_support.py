"""Helpers for the planner tests: a scripted model that answers by prompt, capabilities, a KB.

The model answers each call from what the call is (planning, synthesis, a knowledge step, the
assistant's route or answer), so parallel steps can call it in any order.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from graphs.knowledge import Passage
from graphs.planner import StepCall, StepFailed, StepOutput
from tests.fake_llm import ScriptedChatModel, responding

PLANNING = "You plan how to fulfil"
SYNTHESIS = "You ran a plan"
KNOWLEDGE = "Answer the instruction using only the passages"
ROUTING = "Decide how the assistant should handle"


def kind_of(messages: list[BaseMessage]) -> str:
    """Which planner call this is, from its system prompt."""
    system = str(messages[0].content) if messages else ""
    if system.startswith(PLANNING):
        return "repair" if len(messages) > 2 else "plan"
    if system.startswith(SYNTHESIS):
        return "synthesis"
    if system.startswith(KNOWLEDGE):
        return "knowledge"
    if ROUTING in system:
        return "route"
    if system.startswith("You analyse the sentiment"):
        return "sentiment"
    if system.startswith("You are a content moderator"):
        return "toxicity"
    if system.startswith("Find every full"):
        return "pii"
    return "answer"


def step(
    step_id: str, agent: str, instruction: str, depends_on: list[str] | None = None
) -> dict[str, Any]:
    """A plan step as the model writes it."""
    return {
        "id": step_id,
        "agent": agent,
        "instruction": instruction,
        "depends_on": depends_on or [],
    }


def plan_json(*steps: dict[str, Any], **extra: Any) -> str:
    """A plan as the model's JSON reply."""
    return json.dumps({"steps": list(steps), **extra})


class PlannerModel:
    """A scripted model for planner runs; `replies[kind]` is a list consumed in order."""

    def __init__(self, **replies: Any) -> None:
        self.replies: dict[str, list[Any]] = {
            kind: list(value) if isinstance(value, list) else [value]
            for kind, value in replies.items()
        }
        self.kinds: Counter[str] = Counter()
        self.prompts: dict[str, list[list[BaseMessage]]] = {}
        self.llm: ScriptedChatModel = responding(self._respond)

    def _respond(self, messages: list[BaseMessage]) -> AIMessage | str:
        kind = kind_of(messages)
        self.kinds[kind] += 1
        self.prompts.setdefault(kind, []).append(messages)
        queue = self.replies.get(kind) or self.replies.get("answer")
        if not queue:
            raise AssertionError(f"no scripted reply for a {kind} call")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(reply):
            produced = reply(messages)
            return produced if isinstance(produced, AIMessage) else str(produced)
        return str(reply)

    @property
    def total(self) -> int:
        """Model calls made."""
        return sum(self.kinds.values())


def passage(chunk_id: str, title: str, text: str, *, page: int = 1) -> Passage:
    """A knowledge-base passage."""
    return {
        "chunk_id": chunk_id,
        "document_id": f"doc-{chunk_id}",
        "title": title,
        "page": page,
        "section": None,
        "text": text,
        "score": 0.9,
        "start": 0,
        "end": len(text),
    }


class Library:
    """A tiny knowledge base: each query word maps to passages (a real Retriever, in memory)."""

    def __init__(self, shelves: dict[str, list[Passage]]) -> None:
        self.shelves = shelves
        self.queries: list[str] = []

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        """Passages of the first shelf whose key is in the query (after a short await)."""
        self.queries.append(query)
        await asyncio.sleep(0.02)
        for key, passages in self.shelves.items():
            if key in query.lower():
                return passages[:top_k]
        return []


def done(text: str) -> StepOutput:
    """A capability's successful output."""
    return {
        "text": text,
        "citations": [],
        "data": {},
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }


class Workers:
    """Capabilities with a record of every call; `fail[name]` makes the first N calls fail."""

    def __init__(self, *, fail: dict[str, int] | None = None, delay: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.fail = dict(fail or {})
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.blocked = asyncio.Event()

    def capability(self, name: str) -> Callable[[StepCall], Any]:
        """A capability called `name` that echoes its instruction."""

        async def run(call: StepCall) -> StepOutput:
            self.calls[name] += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            if name == "slow" and self.gate is not None:
                self.blocked.set()
                await self.gate.wait()
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise StepFailed(f"{name} is down")
            return done(f"{name} did: {call.step['instruction']}")

        run.__doc__ = f"The {name} test capability."
        return run

    def all(self, *names: str) -> dict[str, Callable[[StepCall], Any]]:
        """Capabilities by name."""
        return {name: self.capability(name) for name in names}
