"""The `synthesize` node: the turn's final answer and its citations.

Normally the answer is the last AI message. When the tool-call cap was hit, the pending calls
are closed with "not run" tool messages (so the history stays valid for the next turn) and the
answer says plainly that the limit was reached. [n] markers in the answer become citations of
the kb_search passages of this turn; a marker naming no passage is removed, so every marker the
client sees has its citation. A knowledge answer that cites nothing gets a note saying why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.runtime import Runtime

from graphs.assistant.citation_check import check_citations
from graphs.assistant.context import Context, context_of
from graphs.assistant.messages import text_of
from graphs.assistant.state import AssistantState, Citation, ToolRun
from graphs.knowledge import Passage
from graphs.tools.kb_search import CANNOT_SEARCH

SNIPPET_CHARS = 300
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+(?=[.,;:!?)])")
EMPTY_ANSWER = "I could not produce an answer to this message. Please try rephrasing it."
NOT_RUN = "Not run: the tool-call limit for this turn was reached."
KB_NOT_SEARCHED = (
    "Note: I could not search the knowledge base, so this answer is not based on your documents."
)
KB_NOTHING_FOUND = (
    "Note: no relevant passages were found in the knowledge base, so this answer is not "
    "based on your documents."
)
KB_NOT_CITED = (
    "Note: this answer cites none of the passages found in your documents; check it against "
    "them before relying on it."
)


def cap_message(limit: int, runs: Sequence[ToolRun]) -> str:
    """The answer when the model kept asking for tools past the limit."""
    counts = Counter(run["name"] for run in runs)
    used = ", ".join(f"{name} (x{n})" if n > 1 else name for name, n in counts.items())
    rounds = "round" if limit == 1 else "rounds"
    return (
        f"I stopped because I reached the tool-call limit for one message ({limit} {rounds} of "
        "tool calls) before I could finish the answer."
        + (f" Tools used: {used}." if used else "")
        + " Ask me to continue, or narrow the question so it needs fewer steps."
    )


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS].rstrip() + "…"


def cite(answer: str, passages: Sequence[Passage]) -> list[Citation]:
    """Citations for the [n] markers used in `answer`, in the order they first appear."""
    seen: set[int] = set()
    citations: list[Citation] = []
    for match in _MARKER.finditer(answer):
        for piece in match.group(1).split(","):
            number = int(piece)
            if number in seen or not 1 <= number <= len(passages):
                continue
            seen.add(number)
            passage = passages[number - 1]
            citations.append(
                {
                    "number": number,
                    "document_id": passage["document_id"],
                    "title": passage["title"],
                    "page": passage.get("page"),
                    "snippet": _snippet(passage["text"]),
                    "score": float(passage["score"]),
                    "collection": passage.get("collection"),
                }
            )
    return citations


def strip_dangling_markers(answer: str, count: int) -> str:
    """Remove [n] markers (or numbers in [n, m]) that name none of the `count` passages."""

    def keep_known(match: re.Match[str]) -> str:
        numbers = [int(piece) for piece in match.group(1).split(",")]
        known = [str(number) for number in numbers if 1 <= number <= count]
        return f"[{', '.join(known)}]" if known else ""

    cleaned = _MARKER.sub(keep_known, answer)
    if cleaned == answer:
        return answer
    return _SPACE_BEFORE_PUNCTUATION.sub("", cleaned)


def knowledge_note(state: AssistantState, context: Context, answer: str) -> str | None:
    """For a knowledge turn that cites no passage, what the answer must admit.

    Passages found but none cited: say so. No passages: "could not search" when the store was
    unavailable, "nothing relevant" only when a search did run and came back empty.
    """
    if state.get("route") != "knowledge":
        return None
    passages = state.get("passages", [])
    if passages:
        return None if cite(answer, passages) else KB_NOT_CITED
    searched = [run for run in state.get("tool_runs", []) if run["name"] == "kb_search"]
    could_not = (
        context.retriever is None
        or not searched
        or any(run["result"].startswith(CANNOT_SEARCH) for run in searched)
    )
    return KB_NOT_SEARCHED if could_not else KB_NOTHING_FOUND


async def synthesize(state: AssistantState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Set `answer` and `citations` for the turn."""
    context = context_of(runtime)
    messages = state["messages"]
    last: BaseMessage | None = messages[-1] if messages else None
    passages = state.get("passages", [])
    if isinstance(last, AIMessage) and last.tool_calls:
        answer = cap_message(context.max_tool_iterations, state.get("tool_runs", []))
        closing: list[BaseMessage] = [
            ToolMessage(
                content=NOT_RUN,
                tool_call_id=call.get("id") or "",
                name=call["name"],
                status="error",
            )
            for call in last.tool_calls
        ]
        closing.append(AIMessage(content=answer))
        return {
            "answer": answer,
            "citations": [],
            "citation_support": None,
            "messages": closing,
        }
    answer = text_of(last).strip() if isinstance(last, AIMessage) else ""
    update: dict[str, Any] = {}
    if not answer:
        answer = EMPTY_ANSWER
    if passages or state.get("route") == "knowledge":
        answer = strip_dangling_markers(answer, len(passages))
    note = knowledge_note(state, context, answer)
    if note is not None:
        answer = f"{answer}\n\n{note}"
    if isinstance(last, AIMessage) and answer != text_of(last):
        # Same id: add_messages replaces the stored reply, so history matches the answer.
        update["messages"] = [last.model_copy(update={"content": answer})]
    citations, support = check_citations(answer, cite(answer, passages), passages)
    update |= {"answer": answer, "citations": citations, "citation_support": support}
    return update
