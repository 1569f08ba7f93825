"""Hostile uploads cannot starve or exhaust ingestion: limits, archive guards, fairness, cancel."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import random
import time
import uuid
import zipfile

import httpx
import pytest
from fastapi import FastAPI

from app.services.kb.errors import IngestError
from app.services.kb.isolation import ChunkingSpec, ParseLimits, parse_isolated
from app.services.kb.scheduler import FairQueue
from tests.conftest import AppFactory, SettingsFactory, client_for, register
from tests.kb.support import HashEmbedder, make_docx, upload, wait_done

LIMITS = ParseLimits(
    max_memory_mb=512, timeout_seconds=60, max_text_chars=50_000_000, max_unpacked_bytes=200 << 20
)
SPEC = ChunkingSpec(model_path=None, max_tokens=128, overlap=16)


def single_line(megabytes: float, seed: str = "") -> bytes:
    """A Markdown file that is one heading and then one line of `megabytes` MB, no newline."""
    words = [f"{seed}alpha", "router", "zephyr", "config", "beta", "gamma", "delta", "omega"]
    body = " ".join(words[i % len(words)] for i in range(int(megabytes * 1_000_000 / 6.5)))
    return f"# Hostile\n\n{body}".encode()


def docx_with(extra: dict[str, bytes] | None = None, document_xml: bytes | None = None) -> bytes:
    """A real DOCX, with word/document.xml replaced and/or extra members added (deflated)."""
    source = zipfile.ZipFile(io.BytesIO(make_docx([("p", "A small document.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml" and document_xml is not None:
                data = document_xml
            out.writestr(item.filename, data)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return buffer.getvalue()


def inflating_docx(megabytes: int = 20) -> bytes:
    """A DOCX whose body inflates about 140:1: past 100:1, yet under the old guards (200 MB in
    total, 200:1 per member), like the 1.3 MB file that inflated to 190 MB."""
    rng = random.Random(7)
    paragraph = b"<w:p><w:r><w:t>" + b"lorem ipsum " * 40 + b"</w:t></w:r></w:p>"
    parts = []
    for i in range(megabytes * 1_000_000 // len(paragraph)):
        parts.append(paragraph)
        if i % 14 == 0:  # a little noise sets the ratio
            parts.append(b"<w:p><w:r><w:t>%x</w:t></w:r></w:p>" % rng.getrandbits(64))
    xml = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>" + b"".join(parts) + b"</w:body></w:document>"
    )
    data = docx_with(document_xml=xml)
    assert 100 < len(xml) / len(data) < 200
    return data


def parse_children() -> list[multiprocessing.process.BaseProcess]:
    """The parse processes this process started that are still running."""
    return [child for child in multiprocessing.active_children() if child.name == "mai-kb-parse"]


async def wait_status(
    client: httpx.AsyncClient, headers: dict[str, str], document_id: str, status: str
) -> None:
    deadline = time.monotonic() + 30
    while True:
        response = await client.get(f"/api/v1/kb/documents/{document_id}", headers=headers)
        if response.json()["status"] == status:
            return
        assert time.monotonic() < deadline, response.json()
        await asyncio.sleep(0.02)


# --- the parse process -----------------------------------------------------------------------


async def test_a_long_single_line_is_chunked_in_bounded_memory() -> None:
    data = single_line(1)
    outcome = await parse_isolated(data, "markdown", LIMITS, SPEC)
    assert outcome.chunks, "the line is indexed"
    assert max(chunk.tokens for chunk in outcome.chunks) <= SPEC.max_tokens
    # The measured peak RSS of the parse child stays small (it was gigabytes in the service).
    assert outcome.peak_rss_bytes < 300 * 1024 * 1024, outcome.peak_rss_bytes
    words = sum(len(chunk.text.split()) for chunk in outcome.chunks)
    assert words >= len(data.split()) - 2, "no text is lost when the line is split"


async def test_the_parse_child_is_stopped_at_the_memory_limit() -> None:
    limits = ParseLimits(
        max_memory_mb=100, timeout_seconds=60, max_text_chars=50_000_000, max_unpacked_bytes=1 << 30
    )
    with pytest.raises(IngestError) as caught:
        await parse_isolated(b"word " * 2_000_000, "text", limits, SPEC)
    assert caught.value.code == "parse_memory_limit"
    assert "MAI_KB_PARSE_MAX_MEMORY_MB" in caught.value.reason
    assert not parse_children()


async def test_the_parse_child_is_killed_at_the_deadline() -> None:
    limits = ParseLimits(
        max_memory_mb=512, timeout_seconds=0.5, max_text_chars=50_000_000, max_unpacked_bytes=1
    )
    started = time.monotonic()
    with pytest.raises(IngestError) as caught:
        await parse_isolated(single_line(10), "markdown", limits, SPEC)
    assert caught.value.code == "parse_timeout"
    assert "MAI_KB_PARSE_TIMEOUT_SECONDS" in caught.value.reason
    assert time.monotonic() - started < 10
    assert not parse_children()


async def test_cancelling_a_parse_kills_the_child() -> None:
    task = asyncio.create_task(parse_isolated(single_line(10), "markdown", LIMITS, SPEC))
    deadline = time.monotonic() + 20
    while not parse_children():
        assert time.monotonic() < deadline, "the parse child never started"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not parse_children()


async def test_fair_queue_serves_users_in_turn_and_keeps_a_slot_free() -> None:
    queue = FairQueue(per_user=1)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    a1, a2, a3, b1 = (uuid.uuid4() for _ in range(4))
    for document, owner in ((a1, alice), (a2, alice), (a3, alice)):
        assert queue.put(document, owner)
    assert not queue.put(a1, alice), "a document is queued once"
    assert await queue.get() == (a1, alice)
    # Alice holds her one slot: her next file waits even though a worker is free...
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    # ...and Bob's file, queued after all of hers, is served at once.
    queue.put(b1, bob)
    assert await asyncio.wait_for(waiting, 1) == (b1, bob)
    assert queue.discard(a3)
    assert not queue.discard(a3)
    queue.done(a1)
    assert await asyncio.wait_for(queue.get(), 1) == (a2, alice)
    assert queue.pending() == 0


# --- through the API, on both backends -----------------------------------------------------


@pytest.mark.usefixtures("backend")
async def test_hostile_files_fail_naming_the_limit(
    settings_factory: SettingsFactory, app_factory: AppFactory, embedder: HashEmbedder
) -> None:
    settings = settings_factory(rate_limit_per_minute=0, kb_max_text_chars=1_000_000)
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        headers = (await register(client)).headers
        cases = [
            ("line.md", single_line(10), "text_too_long", "MAI_KB_MAX_TEXT_CHARS"),
            ("inflating.docx", inflating_docx(), "suspicious_archive", "compression ratio"),
            (
                "members.docx",
                docx_with({f"customXml/bulk{i}.xml": b"<a/>" for i in range(10_000)}),
                "suspicious_archive",
                "10,0",
            ),
        ]
        ids = []
        for filename, data, _, _ in cases:
            response = await upload(client, headers, filename, data)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for document_id, (filename, _, code, words) in zip(ids, cases, strict=True):
            document = await wait_done(client, headers, document_id)
            assert (document["status"], document["error_code"]) == ("failed", code), filename
            assert words in document["error"], document["error"]
    assert embedder.calls == 0, "nothing hostile reached the embedding"


@pytest.mark.usefixtures("backend")
async def test_another_users_upload_is_ready_while_a_hostile_one_is_processing(
    settings_factory: SettingsFactory, app_factory: AppFactory, embedder: HashEmbedder
) -> None:
    settings = settings_factory(rate_limit_per_minute=0, kb_workers=2, kb_max_text_chars=50_000_000)
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        mallory, bob = (await register(client)).headers, (await register(client)).headers
        hostile = []
        # 20 MB of one line parses for seconds even on a fast machine; Bob's note takes
        # milliseconds, so the order below does not hang on the machine's speed.
        for seed in ("x", "y"):
            response = await upload(client, mallory, f"{seed}.md", single_line(20, seed))
            hostile.append(response.json()["id"])
        await wait_status(client, mallory, hostile[0], "processing")
        response = await upload(client, bob, "small.md", b"# Note\n\nThe office opens at nine.")
        small = await wait_done(client, bob, response.json()["id"])
        assert small["status"] == "ready", small
        states = [
            (await client.get(f"/api/v1/kb/documents/{i}", headers=mallory)).json()["status"]
            for i in hostile
        ]
        # Bob was served while Mallory's first file was still parsing and her second waited.
        assert states == ["processing", "queued"]
        for document_id in hostile:
            response = await client.delete(f"/api/v1/kb/documents/{document_id}", headers=mallory)
            assert response.status_code == 204, response.text


@pytest.mark.usefixtures("backend")
async def test_a_parse_over_the_deadline_fails_naming_the_setting(
    settings_factory: SettingsFactory, app_factory: AppFactory, embedder: HashEmbedder
) -> None:
    settings = settings_factory(
        rate_limit_per_minute=0, kb_parse_timeout_seconds=0.5, kb_max_text_chars=50_000_000
    )
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        headers = (await register(client)).headers
        response = await upload(client, headers, "long.md", single_line(20))
        assert response.status_code == 202, response.text
        document = await wait_done(client, headers, response.json()["id"])
        assert (document["status"], document["error_code"]) == ("failed", "parse_timeout")
        assert "MAI_KB_PARSE_TIMEOUT_SECONDS" in document["error"]
    assert embedder.calls == 0


@pytest.mark.usefixtures("backend")
async def test_deleting_a_document_cancels_its_ingestion_for_good(
    settings_factory: SettingsFactory, app_factory: AppFactory, embedder: HashEmbedder
) -> None:
    settings = settings_factory(rate_limit_per_minute=0, kb_max_text_chars=50_000_000)
    app: FastAPI = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        account = await register(client)
        response = await upload(client, account.headers, "big.md", single_line(10))
        document_id = response.json()["id"]
        await wait_status(client, account.headers, document_id, "processing")
        deadline = time.monotonic() + 20
        while not parse_children():
            assert time.monotonic() < deadline, "the parse child never started"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        response = await client.delete(
            f"/api/v1/kb/documents/{document_id}", headers=account.headers
        )
        assert response.status_code == 204
        assert time.monotonic() - started < 2.5
        assert not parse_children(), "the parse process was stopped"
    # A restart does not pick it up again.
    await app_factory.stop_all()
    restarted = await app_factory(settings, embedder=embedder)
    async with client_for(restarted) as client:
        await asyncio.sleep(0.3)
        response = await client.get(f"/api/v1/kb/documents/{document_id}", headers=account.headers)
        assert response.status_code == 404
        assert not parse_children()
    assert embedder.calls == 0, "the deleted document was never embedded"
