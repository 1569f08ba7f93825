"""Knowledge answers are grounded: the graph searches before the model answers, and every
citation marker the client sees maps to a passage it was given."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.graph.state import CompiledStateGraph

from graphs.assistant import Context, Passage
from tests.fake_llm import scripted
from tests.graphs.conftest import thread, turn

Agent = CompiledStateGraph[Any, Any, Any, Any]


class Library:
    """A small retriever: passages sharing a word with the query, in order."""

    def __init__(self, *texts: str) -> None:
        self.passages: list[Passage] = [
            {
                "chunk_id": f"c{n}", "document_id": f"doc{n}", "title": f"doc{n}.txt",
                "page": None, "section": None, "text": text, "score": 0.9, "start": 0,
                "end": len(text),
            }
            for n, text in enumerate(texts, start=1)
        ]  # fmt: skip
        self.queries: list[str] = []

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        self.queries.append(query)
        words = {w.strip("?.,!").lower() for w in query.split()} - {"what", "is", "the", "a"}
        return [p for p in self.passages if words & set(p["text"].lower().split())][:top_k]


ERR = "ERR-4471 means the router overheated and must be restarted"


async def test_the_route_searches_even_when_the_model_never_calls_kb_search(
    agent: Agent,
) -> None:
    library = Library(ERR, "Invoices are paid within thirty days")
    # The model answers at once, without asking for kb_search.
    llm = scripted({"route": "knowledge"}, "It means the router overheated [1]; restart it [3].")
    result = await turn(agent, "What is ERR-4471", Context(llm=llm, retriever=library))
    assert library.queries == ["What is ERR-4471"]
    assert [run["name"] for run in result["tool_runs"]] == ["kb_search"]
    # The model was given the numbered passages before it answered.
    answering_prompt = llm.calls[1]
    results = [m for m in answering_prompt if isinstance(m, ToolMessage)]
    assert "[1] doc1.txt" in str(results[0].content)
    # [3] names no passage: removed, so every marker left has its citation.
    assert result["answer"] == "It means the router overheated [1]; restart it."
    assert [(c["number"], c["document_id"]) for c in result["citations"]] == [(1, "doc1")]
    assert "Note:" not in result["answer"]
    assert result["messages"][-1].content == result["answer"]


async def test_an_answer_citing_nothing_while_passages_were_found_gets_a_note(
    agent: Agent,
) -> None:
    library = Library(ERR)
    llm = scripted({"route": "knowledge"}, "According to the knowledge base, reboot it.")
    result = await turn(agent, "What is ERR-4471", Context(llm=llm, retriever=library))
    assert result["citations"] == []
    assert result["answer"].startswith("According to the knowledge base, reboot it.")
    assert "cites none of the passages found in your documents" in result["answer"]
    assert "no relevant passages" not in result["answer"]


async def test_nothing_found_note_only_after_a_search_that_found_nothing(agent: Agent) -> None:
    library = Library(ERR)
    llm = scripted({"route": "knowledge"}, "According to the knowledge base, parking is free.")
    result = await turn(agent, "Where do I park", Context(llm=llm, retriever=library))
    assert library.queries == ["Where do I park"]
    assert result["tool_runs"][0]["result"].startswith("No relevant passages were found")
    # Mentioning the knowledge base no longer hides the note.
    assert result["answer"].endswith(
        "Note: no relevant passages were found in the knowledge base, so this answer is not "
        "based on your documents."
    )


async def test_a_follow_up_is_also_searched_as_a_standalone_rewrite(agent: Agent) -> None:
    library = Library(ERR, "The HX-200 router warranty lasts two years")
    config = thread()
    first = scripted({"route": "knowledge"}, "It means the router overheated [1].")
    await turn(agent, "What is ERR-4471", Context(llm=first, retriever=library), config)
    follow = scripted(
        {"route": "knowledge"},
        "HX-200 router warranty",  # the rewrite of the follow-up
        "Two years [2].",
    )
    result = await turn(agent, "and its warranty?", Context(llm=follow, retriever=library), config)
    assert library.queries[1:] == ["and its warranty?", "HX-200 router warranty"]
    # The rewrite call saw the conversation it had to resolve "its" from.
    assert "ERR-4471" in str(follow.calls[1][-1].content)
    assert [r["args"]["query"] for r in result["tool_runs"]] == library.queries[1:]
    assert result["answer"] == "Two years [2]."
    assert result["citations"][0]["document_id"] == "doc2"


async def test_a_standalone_question_needs_no_rewrite_call(agent: Agent) -> None:
    library = Library(ERR)
    config = thread()
    first = scripted({"route": "knowledge"}, "Overheating [1].")
    await turn(agent, "What is ERR-4471", Context(llm=first, retriever=library), config)
    second = scripted({"route": "knowledge"}, "Overheating [1].")
    await turn(
        agent, "What does ERR-4471 mean for routers", Context(llm=second, retriever=library), config
    )
    assert second.remaining == 0
    assert len(second.calls) == 2  # route and answer: no rewrite


async def test_the_search_is_recorded_as_a_kb_search_call_in_the_history(agent: Agent) -> None:
    library = Library(ERR)
    llm = scripted({"route": "knowledge"}, "Overheating [1].")
    result = await turn(agent, "What is ERR-4471", Context(llm=llm, retriever=library))
    searched = [m for m in result["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    [call] = searched[0].tool_calls
    assert call["name"] == "kb_search"
    answers = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answers[0].tool_call_id == call["id"]
