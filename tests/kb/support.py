"""Test helpers for the knowledge base: a deterministic embedding and generated fixture files."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import re
import struct
import time
import zipfile
from collections.abc import Sequence
from typing import Any

import httpx

WORD = re.compile(r"\w+")


class HashEmbedder:
    """A deterministic embedding: each word hashed into one of `size` buckets, L2-normalised.

    Texts sharing words get similar vectors, which is all the API tests need (explicitly allowed
    instead of a real model, which the retrieval test and the benchmark use).
    """

    def __init__(self, size: int = 64, name: str = "test/hash-embedding") -> None:
        self.size = size
        self._name = name
        self.calls = 0

    @property
    def model_name(self) -> str:
        """The fake model's name."""
        return self._name

    async def dimension(self) -> int:
        """The vector size."""
        return self.size

    def vector(self, text: str) -> list[float]:
        """The vector of one text."""
        values = [0.0] * self.size
        for word in WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            values[int.from_bytes(digest, "big") % self.size] += 1.0
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return [v / norm for v in values]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text."""
        self.calls += 1
        return [self.vector(text) for text in texts]


class BlockedEmbedder(HashEmbedder):
    """An embedding that never finishes: a document stays `processing` until the app stops."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Signal that embedding began, then wait forever (cancelled by the app's shutdown)."""
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def make_pdf(
    pages: Sequence[Sequence[str]], *, password: str | None = None, title: str | None = None
) -> bytes:
    """A PDF with one page per list of lines (reportlab), a metadata title and a password if
    asked (pypdf)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    if title is not None:
        pdf.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            if line:
                pdf.drawString(50, y, line)
            y -= 18
        pdf.showPage()
    pdf.save()
    data = buffer.getvalue()
    if password is None:
        return data
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(items: Sequence[tuple[str, str]], *, table: Sequence[Sequence[str]] = ()) -> bytes:
    """A DOCX from (kind, text) items, kind "h1"/"h2" for headings or "p" for paragraphs."""
    import docx

    document = docx.Document()
    for kind, text in items:
        if kind.startswith("h"):
            document.add_heading(text, level=int(kind[1:]))
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_docx_bomb(declared_bytes: int = 6 * 1024**3) -> bytes:
    """A DOCX whose word/document.xml claims (in the zip directory) to unpack to gigabytes."""
    data = bytearray(make_docx([("p", "A tiny body that claims to be huge.")]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        names = archive.namelist()
    assert "word/document.xml" in names
    # Central directory entries: signature PK\x01\x02, uncompressed size at offset 24, name at 46.
    position = 0
    declared = min(declared_bytes, 0xFFFFFFFE)
    while (position := data.find(b"PK\x01\x02", position)) != -1:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        name = bytes(data[position + 46 : position + 46 + name_length])
        if name == b"word/document.xml":
            struct.pack_into("<I", data, position + 24, declared)
        position += 4
    return bytes(data)


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    filename: str,
    data: bytes,
    **form: Any,
) -> httpx.Response:
    """POST a file to /kb/documents with optional title/tags/collection form fields."""
    fields: dict[str, str | list[str]] = {}
    for key, value in form.items():
        if isinstance(value, list | tuple):
            fields[key] = [str(v) for v in value]
        elif value is not None:
            fields[key] = str(value)
    return await client.post(
        "/api/v1/kb/documents",
        headers=headers,
        files={"file": (filename, data, "application/octet-stream")},
        data=fields,
    )


async def wait_done(
    client: httpx.AsyncClient, headers: dict[str, str], document_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Poll a document until the worker has finished with it (ready or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/v1/kb/documents/{document_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("ready", "failed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"document still {body['status']} after {timeout}s")
        await asyncio.sleep(0.05)


async def ingest(
    client: httpx.AsyncClient, headers: dict[str, str], filename: str, data: bytes, **form: Any
) -> dict[str, Any]:
    """Upload a file and wait until it is processed."""
    response = await upload(client, headers, filename, data, **form)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return await wait_done(client, headers, response.json()["id"])
