"""File type detection from content, and text extraction into ordered blocks per format."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePath
from typing import Any

from app.core.errors import UnsupportedMediaType
from app.services.kb.errors import IngestError
from app.services.kb.text import (
    Block,
    Outline,
    ParsedDocument,
    check_text_size,
    decode_or_none,
    split_long_lines,
)

KINDS = ("pdf", "docx", "html", "markdown", "text")
_TEXT_EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".csv": "text",
    ".rst": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
_BINARY_EXTENSIONS = {".pdf": "pdf", ".docx": "docx"}
# Known binary formats MAI does not ingest, named so the error says what the file really is.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls/.ppt)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"{\\rtf", "an RTF document"),
    (b"ID3", "an MP3 file"),
)
_HTML_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.I | re.S
)
_HTML_TAG = re.compile(r"<(p|div|h[1-6]|body|html|table|ul|ol|span|a|br)\b[^>]*>", re.I)
_MARKDOWN_HINT = re.compile(r"^(#{1,6}\s+\S|```|\s*[-*+]\s+\S|\s*\d+\.\s+\S|>\s)", re.M)
SUPPORTED = "PDF, DOCX, HTML, Markdown or plain text"


def _describe(kind: str) -> str:
    return {
        "pdf": "a PDF",
        "docx": "a Word (DOCX) document",
        "html": "HTML",
        "markdown": "Markdown",
        "text": "plain text",
    }[kind]


def detect_kind(data: bytes, filename: str) -> str:
    """The document kind from the content; 415 for unsupported content or a lying extension."""
    extension = PurePath(filename).suffix.lower()
    sniffed: str | None = None
    what: str | None = None
    if b"%PDF-" in data[:1024]:
        sniffed = "pdf"
    elif data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError):
            names = set()
            if extension == ".docx":
                sniffed = "docx"  # a damaged DOCX: the worker reports it as corrupt
        if "word/document.xml" in names:
            sniffed = "docx"
        elif sniffed is None:
            what = "a ZIP archive that is not a Word document"
    else:
        for magic, name in _OTHER_MAGIC:
            if data.startswith(magic):
                what = name
                break
    if sniffed is None and what is None:
        text = decode_or_none(data)
        if text is None:
            what = "binary data"
        elif _HTML_START.match(data[:4096]):
            sniffed = "html"
        elif extension in _TEXT_EXTENSIONS:
            sniffed = _TEXT_EXTENSIONS[extension]
            if sniffed == "html" and not _HTML_TAG.search(text[:20000]):
                sniffed = "text"
        elif _MARKDOWN_HINT.search(text[:20000]):
            sniffed = "markdown"
        else:
            sniffed = "text"
    if sniffed is None:
        raise UnsupportedMediaType(
            f"{filename!r} is {what}; upload {SUPPORTED}.",
            code="unsupported_file_type",
            meta={"detected": what},
        )
    claimed = _BINARY_EXTENSIONS.get(extension) or (
        "text" if extension in _TEXT_EXTENSIONS else None
    )
    text_kinds = ("html", "markdown", "text")
    lies = claimed is not None and (
        (claimed in ("pdf", "docx") and claimed != sniffed)
        or (claimed == "text" and sniffed not in text_kinds)
    )
    if lies:
        raise UnsupportedMediaType(
            f"{filename!r} has the extension {extension} but its content is "
            f"{_describe(sniffed)}; rename it or upload the right file.",
            code="extension_mismatch",
            meta={"extension": extension, "detected": sniffed},
        )
    return sniffed


# A DOCX is a handful of XML parts plus media; thousands of members or parts that inflate far
# beyond what text XML compresses to are archive bombs, refused before any member is read.
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_RATIO = 100
# Members (and archives) smaller than this may compress as well as they like.
ZIP_RATIO_FLOOR_BYTES = 1_000_000


def check_zip_size(data: bytes, max_unpacked_bytes: int) -> None:
    """Refuse archives by total unpacked size, member count and compression ratio, unread."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise IngestError(
            "corrupt_file", f"The DOCX file is damaged and cannot be opened ({error})."
        ) from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise IngestError(
            "suspicious_archive",
            f"The DOCX holds {len(members):,} files, over the limit of {MAX_ZIP_MEMBERS:,} "
            "files per archive; this looks like a zip bomb and was not opened.",
        )
    total = sum(member.file_size for member in members)
    if total > max_unpacked_bytes:
        raise IngestError(
            "unpacked_too_large",
            f"The DOCX would unpack to {total / 1e6:,.0f} MB, over the "
            f"{max_unpacked_bytes / 1e6:,.0f} MB limit (MAI_KB_MAX_UNPACKED_MB); "
            "split the document or remove embedded media.",
        )
    if total > ZIP_RATIO_FLOOR_BYTES and total > MAX_ZIP_RATIO * max(len(data), 1):
        raise IngestError(
            "suspicious_archive",
            f"The DOCX would unpack to {total:,} bytes from {len(data):,} (a compression ratio "
            f"over {MAX_ZIP_RATIO}:1); this looks like a zip bomb and was not opened.",
        )
    for member in members:
        # One tiny member that expands enormously is a bomb even when the whole file is not.
        if member.file_size > ZIP_RATIO_FLOOR_BYTES and member.file_size > MAX_ZIP_RATIO * max(
            member.compress_size, 1
        ):
            raise IngestError(
                "suspicious_archive",
                f"The DOCX member {member.filename} expands to {member.file_size:,} bytes from "
                f"{member.compress_size:,} (a compression ratio over {MAX_ZIP_RATIO}:1); this "
                "looks like a zip bomb and was not opened.",
            )


def _paragraphs(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def parse_text(data: bytes, *, max_text_chars: int | None = None) -> ParsedDocument:
    """Plain text: paragraphs separated by blank lines."""
    text = decode_or_none(data) or ""
    if max_text_chars is not None:
        check_text_size(len(text), max_text_chars)
    text = split_long_lines(text)
    return ParsedDocument([Block(part) for part in _paragraphs(text)])


def parse_pdf(data: bytes) -> ParsedDocument:
    """PDF: text per page (pypdf); encrypted and damaged files fail with a reason."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(
                "encrypted_pdf",
                "The PDF is password-protected; remove the password (print to PDF or "
                "`qpdf --decrypt`) and upload it again.",
            )
        pages = list(reader.pages)
        blocks: list[Block] = []
        for number, page in enumerate(pages, start=1):
            text = page.extract_text() or ""
            blocks.extend(Block(part, page=number) for part in _paragraphs(text))
        title = None
        metadata = reader.metadata
        if metadata is not None and metadata.title:
            title = str(metadata.title).strip() or None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise IngestError(
            "corrupt_file",
            f"The PDF is damaged and cannot be read ({type(error).__name__}: {error}); "
            "export it again from the source application.",
        ) from None
    except Exception as error:  # pypdf raises many internal types on broken files
        if "encrypt" in str(error).lower() or "decrypt" in str(error).lower():
            raise IngestError(
                "encrypted_pdf",
                "The PDF is encrypted with an unsupported scheme; remove the password "
                "and upload it again.",
            ) from None
        raise IngestError(
            "corrupt_file",
            f"The PDF is damaged and cannot be read ({type(error).__name__}); "
            "export it again from the source application.",
        ) from None
    return ParsedDocument(blocks, title=title, page_count=len(pages))


def parse_docx(data: bytes, max_unpacked_bytes: int) -> ParsedDocument:
    """DOCX: paragraphs and tables in order; Heading/Title styles start sections."""
    check_zip_size(data, max_unpacked_bytes)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx surfaces lxml/zip/KeyError failures alike
        raise IngestError(
            "corrupt_file",
            f"The DOCX file is damaged and cannot be read ({type(error).__name__}); "
            "save it again from Word or LibreOffice.",
        ) from None
    from app.services.kb.html_parsing import render_row

    blocks: list[Block] = []
    title = (document.core_properties.title or "").strip() or None
    outline = Outline(title)

    def here() -> dict[str, Any]:
        path = outline.path
        return {"section": path[-1] if path else None, "path": path}

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            level = _docx_heading_level(style)
            if level is None:
                blocks.append(Block(text, **here()))
                continue
            if level == 0 and outline.title is None:
                outline.title = title = text
            outline.heading(max(level, 1), text)
            blocks.append(Block(text, heading=True, **here()))
        elif isinstance(item, Table):
            rows = []
            for row in item.rows:
                # Merged cells repeat in python-docx: keep each distinct cell once.
                rows.append(list(dict.fromkeys(cell.text.strip() for cell in row.cells)))
            header = rows[0] if len(rows) > 1 else None
            for values in rows[1:] if header else rows:
                line = render_row(header, values)
                if line:
                    blocks.append(Block(line, **here()))
    if title is None:
        title = next((block.text for block in blocks if block.heading), None)
    return ParsedDocument(blocks, title=title)


def _docx_heading_level(style: str) -> int | None:
    """0 for the Title style, N for "Heading N", None for body text."""
    if style.startswith("Title"):
        return 0
    if style.startswith("Heading"):
        digits = "".join(ch for ch in style if ch.isdigit())
        return int(digits) if digits else 1
    return None


def _inline_text(token: Any) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)


def parse_markdown(data: bytes, *, max_text_chars: int | None = None) -> ParsedDocument:
    """Markdown (CommonMark + tables): headings build the outline; formatting marks are dropped.

    YAML front matter is not indexed; its `title:` is the document title, else the first heading.
    """
    from markdown_it import MarkdownIt

    from app.services.kb.html_parsing import parse_html, render_row

    text = decode_or_none(data) or ""
    if max_text_chars is not None:
        check_text_size(len(text), max_text_chars)
    title: str | None = None
    front = _FRONT_MATTER.match(text)
    if front is not None:
        found = _FRONT_TITLE.search(front.group(1))
        if found is not None:
            title = found.group(1).strip().strip("'\"") or None
        text = text[front.end() :]
    text = split_long_lines(text)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    outline = Outline(title)
    blocks: list[Block] = []
    level: int | None = None
    table: list[list[str]] | None = None
    header: list[str] | None = None
    row: list[str] = []
    in_head = False

    def here() -> dict[str, Any]:
        path = outline.path
        return {"section": path[-1] if path else None, "path": path}

    for token in tokens:
        if token.type == "heading_open":
            level = int(token.tag[1:])
        elif token.type == "heading_close":
            level = None
        elif token.type == "table_open":
            table, header = [], None
        elif token.type == "tr_open":
            row = []
        elif token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_close" and table is not None:
            if in_head:
                header = row
            else:
                table.append(row)
        elif token.type == "table_close" and table is not None:
            for values in table:
                line = render_row(header, values)
                if line:
                    blocks.append(Block(line, **here()))
            table = None
        elif token.type == "inline":
            content = _inline_text(token)
            if table is not None:
                row.append(" ".join(content.split()))
                continue
            if not content:
                continue
            if level is not None:
                if outline.title is None:
                    outline.title = title = content
                outline.heading(level, content)
                blocks.append(Block(content, heading=True, **here()))
            else:
                blocks.append(Block(content, **here()))
        elif token.type in ("fence", "code_block") and token.content.strip():
            blocks.append(Block(token.content.strip("\n"), **here()))
        elif token.type == "html_block":
            inner = parse_html(token.content.encode())
            blocks.extend(Block(b.text, **here()) for b in inner.blocks)
    return ParsedDocument(blocks, title=title)


def parse(
    data: bytes, kind: str, *, max_unpacked_bytes: int, max_text_chars: int | None = None
) -> ParsedDocument:
    """Extract the text of a document of a detected kind; IngestError when there is none.

    With `max_text_chars`, a document with more text than that fails instead of being indexed
    in part.
    """
    if kind == "pdf":
        parsed = parse_pdf(data)
    elif kind == "docx":
        parsed = parse_docx(data, max_unpacked_bytes)
    elif kind == "html":
        from app.services.kb.html_parsing import parse_html

        parsed = parse_html(data, max_text_chars=max_text_chars)
    elif kind == "markdown":
        parsed = parse_markdown(data, max_text_chars=max_text_chars)
    else:
        parsed = parse_text(data, max_text_chars=max_text_chars)
    if max_text_chars is not None:
        check_text_size(sum(len(block.text) for block in parsed.blocks), max_text_chars)
    if not any(block.text.strip() for block in parsed.blocks):
        hint = (
            " It may be a scanned PDF: run OCR on it first."
            if kind == "pdf"
            else " Check that the file is the one you meant to upload."
        )
        raise IngestError(
            "no_text", f"No text could be extracted from this {_describe(kind)}.{hint}"
        )
    return parsed
