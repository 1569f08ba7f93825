"""The `remember` and `forget` tools: the user's explicit "remember that..." / "forget that...".

Both act on the user's own memories, `("users", <user id>, "memories")`, through the store the
graph runs with (`Runtime.store`, handed to tools in `ToolContext.store`) and `MemoryBook`, the
same layout the memory step and the /memory API use. They write, so they are side-effecting:
a re-run of the node (resume, retry, crash) does not store or delete a second time.

`remember` honours the user's memory switch and the service's: with memory off nothing is
stored. `forget` deletes even then: a user asking for something to be forgotten is always
obeyed, and deleting writes and recalls nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from graphs.memory import MAX_CONTENT_CHARS, MemoryBook, MemoryKind
from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec

REMEMBER = "remember"
FORGET = "forget"
MEMORY_TOOLS = (REMEMBER, FORGET)
NO_STORE = (
    "Long-term memory is not available on this server, so nothing was {done}. "
    "Tell the user that you cannot {verb} things between conversations here."
)
MEMORY_OFF = (
    "Long-term memory is turned off for this user, so nothing was stored. Tell the user "
    "that they can turn it on in their memory settings."
)


# Blank text is no memory and describes nothing to forget.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class RememberArgs(BaseModel):
    """Arguments of the remember tool."""

    content: Text = Field(
        max_length=MAX_CONTENT_CHARS,
        description=(
            "What to remember, as one short sentence about the user in the third person, "
            'e.g. "The user is allergic to peanuts."'
        ),
    )
    kind: MemoryKind = Field(
        default="fact",
        description=(
            "fact (something about the user), preference (how they like things) or "
            "instruction (how you should behave with them)."
        ),
    )
    importance: float = Field(
        default=0.8, ge=0.0, le=1.0, description="How much this matters, from 0 to 1."
    )


class ForgetArgs(BaseModel):
    """Arguments of the forget tool."""

    what: Text = Field(
        max_length=MAX_CONTENT_CHARS,
        description="A short description of what to forget, e.g. \"the user's dog's name\".",
    )


def _book(context: ToolContext, done: str, verb: str) -> MemoryBook:
    if context.store is None:
        raise ToolError(NO_STORE.format(done=done, verb=verb))
    return MemoryBook(context.store, context.user_id)


async def _remember(args: Any, context: ToolContext) -> str:
    book = _book(context, "stored", "remember")
    if not context.memory.enabled or not await book.enabled():
        raise ToolError(MEMORY_OFF)
    memory, created = await book.add(
        args.content,
        now=context.now(),
        kind=args.kind,
        importance=args.importance,
        conversation_id=context.conversation_id,
        metadata={"source": REMEMBER},
        duplicate_threshold=context.memory.duplicate_threshold,
    )
    if created:
        return f"Remembered ({memory.kind}, id {memory.id}): {memory.content}"
    return f"Updated the memory it repeats ({memory.kind}, id {memory.id}): {memory.content}"


async def _forget(args: Any, context: ToolContext) -> str:
    book = _book(context, "forgotten", "forget")
    forgotten = await book.forget_matching(args.what, min_score=context.memory.forget_min_score)
    if not forgotten:
        return (
            f"No memory matches {args.what!r}; nothing was deleted. Tell the user that you "
            "had nothing stored about it."
        )
    lines = [f"Forgot {len(forgotten)} memor{'y' if len(forgotten) == 1 else 'ies'}:"]
    lines.extend(f"- {memory.content}" for memory in forgotten)
    return "\n".join(lines)


def remember_tool() -> ToolSpec:
    """The remember tool spec: stores one memory about the user (updating a near-duplicate)."""
    return ToolSpec(
        name=REMEMBER,
        description=(
            "Store a fact, preference or instruction about the user in long-term memory, to "
            "use in later conversations. Call it when the user asks you to remember "
            'something ("remember that...").'
        ),
        args_schema=RememberArgs,
        coroutine=_remember,
        category="memory",
        timeout_seconds=30.0,
        retry=ToolRetry(max_attempts=1),
        side_effects=True,
    )


def forget_tool() -> ToolSpec:
    """The forget tool spec: deletes the user's memories matching a description."""
    return ToolSpec(
        name=FORGET,
        description=(
            "Delete what long-term memory holds about something, so it is never used again. "
            'Call it when the user asks you to forget something ("forget that...").'
        ),
        args_schema=ForgetArgs,
        coroutine=_forget,
        category="memory",
        timeout_seconds=30.0,
        retry=ToolRetry(max_attempts=1),
        side_effects=True,
    )
