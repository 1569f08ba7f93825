"""Token counting (offline) and chunking that respects headings and paragraphs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.services.kb.text import Block

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


# Sequence lengths the models were trained with, for model folders that do not say.
_KNOWN_WINDOWS = {
    "all-minilm-l6-v2": 256,
    "all-minilm-l12-v2": 256,
    "paraphrase-multilingual-minilm-l12-v2": 128,
    "all-mpnet-base-v2": 384,
    "bge-small-en-v1.5": 512,
    "bge-base-en-v1.5": 512,
    "nomic-embed-text-v1.5": 8192,
    "text-embedding-3-small": 8191,
    "text-embedding-3-large": 8191,
}
# [CLS] and [SEP] (or their equivalents) take two places of the window.
SPECIAL_TOKENS = 2


def model_window(model_path: Path | None, model_name: str) -> int | None:
    """How many tokens the embedding model reads, from its folder or its name; None if unknown.

    A sentence-transformers `sentence_bert_config.json` (`max_seq_length`) wins; then the
    window known for the model's name (`tokenizer_config.json` states the architecture's 512
    even for models trained on 256); then `model_max_length` from the tokenizer config.
    """
    import json

    if model_path is not None:
        config = model_path / "sentence_bert_config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("max_seq_length")
            if isinstance(value, int) and value > 0:
                return value
    known = _KNOWN_WINDOWS.get(model_name.rsplit("/", 1)[-1].lower())
    if known is not None:
        return known
    if model_path is not None:
        config = model_path / "tokenizer_config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("model_max_length")
            if isinstance(value, int) and 0 < value <= 131072:
                return value
    return None


def chunk_size(
    configured: int | None, model_path: Path | None, model_name: str, embedding_max: int
) -> int:
    """The chunk size: MAI_KB_CHUNK_TOKENS when set, else the model's window (context line and
    special tokens included), never more than what the embedder reads (MAI_EMBEDDING_MAX_TOKENS).
    """
    if configured is not None:
        return configured
    window = model_window(model_path, model_name) or 512
    return max(16, min(window, embedding_max) - SPECIAL_TOKENS)


def count_tokens(counter: TokenCounter, text: str) -> int:
    """How many tokens the text has."""
    return len(counter.spans(text))


def truncate_tokens(counter: TokenCounter, text: str, max_tokens: int) -> str:
    """The longest prefix of the text with at most max_tokens tokens."""
    spans = counter.spans(text)
    if len(spans) <= max_tokens:
        return text
    return text[: spans[max_tokens - 1][1]]


# Joins the title and headings of the context line, as in "Title \u203a Section".
PATH_SEPARATOR = " \u203a "


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document to embed, with where it comes from in the extracted text.

    `text` is what a user reads (a slice of the extracted text); `context` is the document title
    and heading path, prefixed to the text only for embedding (`embed_text`).
    """

    index: int
    text: str
    start: int
    end: int
    page: int | None
    section: str | None
    tokens: int
    path: tuple[str, ...] = ()
    context: str = ""

    @property
    def embed_text(self) -> str:
        """The text the embedding and the keyword index see: context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    page: int | None
    path: tuple[str, ...]
    heading: bool
    tokens: int


@dataclass(slots=True)
class _Piece:
    """A chunk being built: a run of units of one or more adjacent sections."""

    units: list[_Unit]
    path: tuple[str, ...]
    tokens: int

    @property
    def start(self) -> int:
        return self.units[0].start

    @property
    def end(self) -> int:
        return self.units[-1].end

    @property
    def page(self) -> int | None:
        return self.units[0].page


def extracted_text(blocks: list[Block]) -> tuple[str, list[int]]:
    """The document text that chunk offsets refer to (blocks joined by blank lines) and starts."""
    starts: list[int] = []
    position = 0
    for block in blocks:
        starts.append(position)
        position += len(block.text) + len(BLOCK_SEPARATOR)
    return BLOCK_SEPARATOR.join(block.text for block in blocks), starts


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    size = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        size += 1
    return a[:size]


class Chunker:
    """Packs sentences into chunks that fit the embedding model, one section at a time.

    A section (a heading and its text, a page of a PDF) is split into chunks of at most
    `max_tokens` (context line included) overlapping by about `overlap` tokens; overlap never
    crosses a section. Sections, or a section's last piece, under `min_tokens` are merged with
    a neighbour (same page) when the two fit together, so headings do not stand alone.
    """

    def __init__(
        self,
        counter: TokenCounter,
        max_tokens: int = 500,
        overlap: int = 50,
        min_tokens: int = 0,
    ) -> None:
        if overlap >= max_tokens:
            raise ValueError("overlap must be smaller than max_tokens")
        self.counter = counter
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.min_tokens = min(min_tokens, max_tokens // 2)

    def _units(self, text: str, blocks: list[Block], starts: list[int]) -> list[_Unit]:
        units: list[_Unit] = []
        for block, block_start in zip(blocks, starts, strict=True):
            pieces: list[tuple[int, int]] = []
            cursor = 0
            for match in _SENTENCE_END.finditer(block.text):
                pieces.append((cursor, match.start()))
                cursor = match.end()
            pieces.append((cursor, len(block.text)))
            path = block.heading_path
            for a, b in _bounded(block.text, pieces):
                spans = self.counter.spans(block.text[a:b])
                if not spans:
                    continue
                for first in range(0, len(spans), self.max_tokens // 2):
                    window = spans[first : first + self.max_tokens // 2]
                    start = block_start + a + window[0][0]
                    end = block_start + a + window[-1][1]
                    units.append(_Unit(start, end, block.page, path, block.heading, len(window)))
        return units

    @staticmethod
    def _sections(units: list[_Unit]) -> list[list[_Unit]]:
        """Runs of units under one heading path and page; stacked headings stay together."""
        sections: list[list[_Unit]] = []
        current: list[_Unit] = []
        has_body = False
        for unit in units:
            if current and (
                (unit.heading and has_body)
                or unit.page != current[-1].page
                or (not unit.heading and has_body and unit.path != current[-1].path)
            ):
                sections.append(current)
                current, has_body = [], False
            current.append(unit)
            has_body = has_body or not unit.heading
        if current:
            sections.append(current)
        return sections

    def context(self, title: str | None, path: tuple[str, ...]) -> tuple[str, int]:
        """The context line for a heading path and its token count (at most a quarter of max)."""
        parts = ([title] if title else []) + [part for part in path if part != title]
        line = PATH_SEPARATOR.join(parts)
        if not line:
            return "", 0
        budget = self.max_tokens // 4
        line = truncate_tokens(self.counter, line, budget)
        return line, min(count_tokens(self.counter, line), budget)

    def _pack(self, section: list[_Unit], budget: int) -> list[_Piece]:
        """Windows of a section's units of at most `budget` tokens, overlapping by `overlap`."""
        path = next((u.path for u in section if not u.heading), section[-1].path)
        pieces: list[_Piece] = []
        current: list[_Unit] = []
        size = 0  # a running total keeps packing linear
        for unit in section:
            if current and size + unit.tokens > budget:
                pieces.append(_Piece(current, path, size))
                carry: list[_Unit] = []
                remaining = self.overlap
                for previous in reversed(current):
                    if previous.tokens > remaining or previous.heading:
                        break
                    carry.append(previous)
                    remaining -= previous.tokens
                carry.reverse()
                carried = sum(u.tokens for u in carry)
                while carry and carried + unit.tokens > budget:
                    carried -= carry.pop(0).tokens
                current, size = carry, carried
            current.append(unit)
            size += unit.tokens
        if current:
            if pieces and size < self.min_tokens:
                # A short tail borrows more of the text before it (overlap within the section).
                first = section.index(current[0])
                while first > 0 and size + section[first - 1].tokens <= budget:
                    first -= 1
                    current.insert(0, section[first])
                    size += section[first].tokens
                    if size >= self.min_tokens:
                        break
            pieces.append(_Piece(current, path, size))
        return pieces

    def split(self, blocks: list[Block], title: str | None = None) -> tuple[str, list[Chunk]]:
        """The extracted text and its chunks, in document order (linear in the text's length)."""
        text, starts = extracted_text(blocks)
        units = self._units(text, blocks, starts)
        pieces: list[_Piece] = []
        for section in self._sections(units):
            path = next((u.path for u in section if not u.heading), section[-1].path)
            _, prefix = self.context(title, path)
            pieces.extend(self._pack(section, self.max_tokens - prefix))
        merged = self._merge(pieces, title)
        chunks: list[Chunk] = []
        for piece in merged:
            context, _ = self.context(title, piece.path)
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text[piece.start : piece.end],
                    start=piece.start,
                    end=piece.end,
                    page=piece.page,
                    section=piece.path[-1] if piece.path else None,
                    tokens=piece.tokens,
                    path=piece.path,
                    context=context,
                )
            )
        return text, chunks

    def _merge(self, pieces: list[_Piece], title: str | None) -> list[_Piece]:
        """Adjacent pieces of different sections joined while one is under `min_tokens`."""
        out: list[_Piece] = []
        for piece in pieces:
            if out:
                last = out[-1]
                small = last.tokens < self.min_tokens or piece.tokens < self.min_tokens
                if small and last.end <= piece.start and last.page == piece.page:
                    path = _common(last.path, piece.path)
                    _, prefix = self.context(title, path)
                    if last.tokens + piece.tokens + prefix <= self.max_tokens:
                        out[-1] = _Piece(last.units + piece.units, path, last.tokens + piece.tokens)
                        continue
            out.append(piece)
        return out


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
