"""The `kb_search` tool: searches the user's knowledge base through the run's Retriever.

Passages are numbered for the whole turn ([1], [2]...) so the answer can cite them and the
`synthesize` node can turn the markers into citations.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from graphs.knowledge import Passage, RetrieverUnavailable
from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec

NO_PASSAGES = "No relevant passages were found in the knowledge base"
CANNOT_SEARCH = "The knowledge base could not be searched"
PASSAGE_CHARS = 1500


class KbSearchArgs(BaseModel):
    """Arguments of the kb_search tool."""

    query: str = Field(
        min_length=1,
        max_length=500,
        description="What to look for in the user's documents, in a few precise words.",
    )


def _heading(number: int, passage: Passage) -> str:
    where = [f"page {passage['page']}"] if passage.get("page") is not None else []
    if passage.get("section"):
        where.append(f"section {passage['section']}")
    if passage.get("collection"):
        # So the model can say where an answer comes from ("the finance collection says").
        where.append(f"collection {passage['collection']}")
    place = f" ({', '.join(where)})" if where else ""
    return f"[{number}] {passage['title']}{place}, relevance {passage['score']:.2f}"


async def search_knowledge(query: str, context: ToolContext) -> str:
    """Search the knowledge base and number the passages found; ToolError if it cannot search."""
    if context.retriever is None:
        raise ToolError(
            f"{CANNOT_SEARCH}: no knowledge base is configured. "
            "Tell the user that you could not search their documents."
        )
    try:
        found = await context.retriever.search(query, user_id=context.user_id, top_k=context.top_k)
    except RetrieverUnavailable as error:
        raise ToolError(
            f"{CANNOT_SEARCH}: {error or 'it is unavailable'}. "
            "Tell the user that you could not search their documents."
        ) from error
    if not found:
        return (
            f"{NO_PASSAGES} for {query!r}. Tell the user that nothing relevant was found "
            "in their documents."
        )
    blocks = [f"Passages from the knowledge base for {query!r}; cite them by number, like [1]:"]
    for passage in found:
        number = context.passages.add(passage)
        text = " ".join(passage["text"].split())
        if len(text) > PASSAGE_CHARS:
            text = text[:PASSAGE_CHARS].rstrip() + "…"
        blocks.append(f"{_heading(number, passage)}\n{text}")
    return "\n\n".join(blocks)


async def _run(args: Any, context: ToolContext) -> str:
    return await search_knowledge(args.query, context)


def kb_search_tool() -> ToolSpec:
    """The kb_search tool spec."""
    return ToolSpec(
        name="kb_search",
        description=(
            "Search the user's own documents (their knowledge base) and return numbered "
            "passages to cite as [1], [2]. Use it for questions about their files, notes, "
            "policies or anything they uploaded."
        ),
        args_schema=KbSearchArgs,
        coroutine=_run,
        category="knowledge",
        retry=ToolRetry(max_attempts=1),
    )
