"""The knowledge-base contract shared by graphs and the service: passages and the retriever.

`graphs.assistant.context` re-exports these names; they live here so that the tools package
(`kb_search`) and the assistant graph can both use them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NotRequired, Protocol, runtime_checkable

from typing_extensions import TypedDict


class Passage(TypedDict):
    """One retrieved chunk of a document, with where it came from and its relevance score."""

    chunk_id: str
    document_id: str
    title: str
    page: int | None
    section: str | None
    text: str
    score: float
    start: int
    end: int
    # The collection the document belongs to (a shared collection's name, or the uploader's
    # own label); None for a document of the user's own outside any. Absent from passages
    # found before it was recorded, so older checkpoints still load.
    collection: NotRequired[str | None]


class RetrieverUnavailable(Exception):
    """The knowledge base cannot be searched right now (vector store down, index missing...)."""


@runtime_checkable
class Retriever(Protocol):
    """Searches one user's knowledge base; implemented by the service (`app/`)."""

    async def search(self, query: str, *, user_id: str, top_k: int) -> list[Passage]:
        """Return up to `top_k` passages relevant to `query` from `user_id`'s documents."""


class PassageBook:
    """The passages seen in one turn, numbered [1], [2]... in the order they were first found.

    A passage found again by a later search keeps its first number, so citations stay stable
    across several kb_search calls in the same turn.
    """

    def __init__(self, passages: Iterable[Passage] = ()) -> None:
        self._passages: list[Passage] = []
        self._numbers: dict[str, int] = {}
        for passage in passages:
            self.add(passage)

    def add(self, passage: Passage) -> int:
        """Number a passage (or return the number it already has)."""
        number = self._numbers.get(passage["chunk_id"])
        if number is None:
            self._passages.append(passage)
            number = len(self._passages)
            self._numbers[passage["chunk_id"]] = number
        return number

    def get(self, number: int) -> Passage | None:
        """The passage cited as [number], if there is one."""
        if 1 <= number <= len(self._passages):
            return self._passages[number - 1]
        return None

    @property
    def passages(self) -> list[Passage]:
        """All passages, in number order (passage [n] is at index n - 1)."""
        return list(self._passages)

    def __len__(self) -> int:
        return len(self._passages)
