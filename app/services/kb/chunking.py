"""Token counting (offline) and chunking that respects headings and paragraphs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.services.kb.parsing import Block

_REGEX_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
BLOCK_SEPARATOR = "\n\n"


class TokenCounter(Protocol):
    """Splits text into tokens and reports their character spans."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of every token of the text."""


class RegexTokenCounter:
    """An estimator: words and punctuation marks; close to WordPiece/BPE counts for prose."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of words and punctuation marks."""
        return [match.span() for match in _REGEX_TOKEN.finditer(text)]


class HFTokenCounter:
    """The embedding model's own tokenizer, read from a local tokenizer.json (no download)."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens (special tokens left out)."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in encoding.offsets]


def token_counter_for(model_path: Path | None) -> TokenCounter:
    """The model's tokenizer when a local model folder has one, else the regex estimator."""
    if model_path is not None and (model_path / "tokenizer.json").is_file():
        return HFTokenCounter(model_path / "tokenizer.json")
    return RegexTokenCounter()


def count_tokens(counter: TokenCounter, text: str) -> int:
    """How many tokens the text has."""
    return len(counter.spans(text))


def truncate_tokens(counter: TokenCounter, text: str, max_tokens: int) -> str:
    """The longest prefix of the text with at most max_tokens tokens."""
    spans = counter.spans(text)
    if len(spans) <= max_tokens:
        return text
    return text[: spans[max_tokens - 1][1]]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document to embed, with where it comes from in the extracted text."""

    index: int
    text: str
    start: int
    end: int
    page: int | None
    section: str | None
    tokens: int


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    page: int | None
    section: str | None
    heading: bool
    tokens: int


def extracted_text(blocks: list[Block]) -> tuple[str, list[int]]:
    """The document text that chunk offsets refer to (blocks joined by blank lines) and starts."""
    starts: list[int] = []
    position = 0
    for block in blocks:
        starts.append(position)
        position += len(block.text) + len(BLOCK_SEPARATOR)
    return BLOCK_SEPARATOR.join(block.text for block in blocks), starts


class Chunker:
    """Packs sentences into chunks of at most `max_tokens`, overlapping by about `overlap`.

    A heading or a new page starts a new chunk (the heading is its first line), a sentence is never
    split unless it alone is over the limit, and overlap never crosses a heading.
    """

    def __init__(self, counter: TokenCounter, max_tokens: int = 500, overlap: int = 50) -> None:
        if overlap >= max_tokens:
            raise ValueError("overlap must be smaller than max_tokens")
        self.counter = counter
        self.max_tokens = max_tokens
        self.overlap = overlap

    def _units(self, text: str, blocks: list[Block], starts: list[int]) -> list[_Unit]:
        units: list[_Unit] = []
        for block, block_start in zip(blocks, starts, strict=True):
            pieces: list[tuple[int, int]] = []
            cursor = 0
            for match in _SENTENCE_END.finditer(block.text):
                pieces.append((cursor, match.start()))
                cursor = match.end()
            pieces.append((cursor, len(block.text)))
            for a, b in _bounded(block.text, pieces):
                spans = self.counter.spans(block.text[a:b])
                if not spans:
                    continue
                for first in range(0, len(spans), self.max_tokens):
                    window = spans[first : first + self.max_tokens]
                    start = block_start + a + window[0][0]
                    end = block_start + a + window[-1][1]
                    units.append(
                        _Unit(start, end, block.page, block.section, block.heading, len(window))
                    )
        return units

    def split(self, blocks: list[Block]) -> tuple[str, list[Chunk]]:
        """The extracted text and its chunks, in document order (linear in the text's length)."""
        text, starts = extracted_text(blocks)
        units = self._units(text, blocks, starts)
        chunks: list[Chunk] = []
        current: list[_Unit] = []
        size = 0  # tokens in `current`, kept as a running total so packing stays linear
        has_body = False

        def emit() -> None:
            first, last = current[0], current[-1]
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text[first.start : last.end],
                    start=first.start,
                    end=last.end,
                    page=first.page,
                    section=first.section,
                    tokens=size,
                )
            )

        for unit in units:
            # A heading or a new PDF page starts a new chunk, so sections and pages cite exactly.
            new_section = (unit.heading and has_body) or (
                bool(current) and unit.page != current[-1].page
            )
            if current and (new_section or size + unit.tokens > self.max_tokens):
                emit()
                carry: list[_Unit] = []
                if not new_section and self.overlap > 0:
                    budget = self.overlap
                    for previous in reversed(current):
                        if previous.tokens > budget or previous.heading:
                            break
                        carry.append(previous)
                        budget -= previous.tokens
                    carry.reverse()
                carried = sum(u.tokens for u in carry)
                while carry and carried + unit.tokens > self.max_tokens:
                    carried -= carry.pop(0).tokens
                current, size = carry, carried
                has_body = any(not u.heading for u in current)
            current.append(unit)
            size += unit.tokens
            has_body = has_body or not unit.heading
        if current and (has_body or not chunks):
            emit()
        return text, chunks


# Sentences longer than this are cut at whitespace before tokenizing, so a tokenizer never
# sees a multi-megabyte string (its memory grows with the input it is given at once).
MAX_PIECE_CHARS = 2000


def _bounded(text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The non-empty (start, end) pieces, with those over MAX_PIECE_CHARS cut at whitespace."""
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        while b - a > MAX_PIECE_CHARS:
            limit = a + MAX_PIECE_CHARS
            cut = max(text.rfind(" ", a + MAX_PIECE_CHARS // 2, limit), text.rfind("\n", a, limit))
            if cut <= a:
                cut = limit
            out.append((a, cut))
            a = cut
        if a < b:
            out.append((a, b))
    return out
