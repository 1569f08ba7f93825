"""The text model every parser produces (blocks with their heading path, the outline that
tracks open headings) and the text helpers the parsers share."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.services.kb.errors import IngestError

# Lines longer than this are broken at a space before parsing: markup parsers and tokenizers
# then see bounded lines, so a single multi-megabyte line costs what its length costs.
MAX_LINE_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like piece of extracted text, with where it sits in the document.

    `path` is the heading path below the document title (`("Install", "Linux")`); `section` is
    its last element, the label a citation shows.
    """

    text: str
    page: int | None = None
    section: str | None = None
    heading: bool = False
    path: tuple[str, ...] = ()

    @property
    def heading_path(self) -> tuple[str, ...]:
        """The heading path, or the section alone for parsers that only know that."""
        if self.path:
            return self.path
        return (self.section,) if self.section else ()


@dataclass
class Outline:
    """The headings open at the current point of a document, outermost first."""

    title: str | None = None
    stack: list[tuple[int, str]] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        """A heading of `level` (1 = top) closes the sections at its level and below."""
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text[:200]))

    @property
    def path(self) -> tuple[str, ...]:
        """The open headings; a top heading repeating the document title is left out."""
        names = [text for _, text in self.stack]
        if names and self.title and names[0] == self.title:
            names = names[1:]
        return tuple(names)


@dataclass(slots=True)
class ParsedDocument:
    """The text of a document as ordered blocks, plus what the format tells about it."""

    blocks: list[Block]
    title: str | None = None
    page_count: int | None = None


def decode_or_none(data: bytes) -> str | None:
    """Text of the bytes if they are text in a common encoding, else None (binary)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    text: str | None = None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        text = data.decode("latin-1")
    sample = text[:20000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if sample and controls / len(sample) > 0.01:
        return None
    return text


def decode_text(data: bytes) -> str:
    """The bytes as text in the first common encoding that fits (empty for binary data)."""
    return decode_or_none(data) or ""


def split_long_lines(text: str, max_chars: int = MAX_LINE_CHARS) -> str:
    """The text with every line over `max_chars` broken at whitespace (or hard) into lines."""
    if len(text) <= max_chars or not any(len(line) > max_chars for line in text.split("\n")):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > max_chars:
            cut = line.rfind(" ", max_chars // 2, max_chars)
            if cut <= 0:
                cut = max_chars
            out.append(line[:cut])
            line = line[cut:].lstrip(" ")
        out.append(line)
    return "\n".join(out)


def check_text_size(length: int, max_text_chars: int) -> None:
    """Refuse a document whose text is over MAI_KB_MAX_TEXT_CHARS, with a reason naming it."""
    if length > max_text_chars:
        raise IngestError(
            "text_too_long",
            f"The document has {length:,} characters of text, over the {max_text_chars:,} "
            "limit (MAI_KB_MAX_TEXT_CHARS); split it into smaller files.",
        )
