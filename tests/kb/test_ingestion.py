"""Uploading documents of every format, bad files, duplicates, deletion, ownership, reindex."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import AccountFactory, AppFactory, client_for, register
from tests.kb.support import (
    BlockedEmbedder,
    HashEmbedder,
    ingest,
    make_docx,
    make_docx_bomb,
    make_pdf,
    upload,
    wait_done,
)

pytestmark = pytest.mark.usefixtures("backend")

# Sections under MAI_KB_MIN_CHUNK_TOKENS are merged with their neighbours: this sentence makes a
# section long enough to stand alone as its own chunk.
FILLER = " ".join(
    f"Paragraph filler sentence number {n} keeps this section above the minimum size."
    for n in range(6)
)


async def search(
    client: httpx.AsyncClient, headers: dict[str, str], query: str, **body: object
) -> list[dict[str, object]]:
    response = await client.post(
        "/api/v1/kb/search", headers=headers, json={"query": query, **body}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


async def point_count(app: FastAPI, user_id: str, document_id: str | None = None) -> int:
    index = await app.state.kb.index()
    return int(await index.count(user_id, document_id))


# --- formats ---------------------------------------------------------------------------------


async def test_pdf_keeps_pages(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    data = make_pdf(
        [
            ["Installation guide", "Unpack the Zephyr router and plug it in."],
            ["Troubleshooting", "A blinking amber light means error ERR-4471: fan failure."],
        ]
    )
    doc = await ingest(client, headers, "guide.pdf", data, title="Zephyr guide")
    assert doc["status"] == "ready", doc
    assert doc["kind"] == "pdf"
    assert doc["page_count"] == 2
    assert doc["title"] == "Zephyr guide"
    assert doc["chunk_count"] >= 1
    hits = await search(client, headers, "ERR-4471 amber light", mode="sparse")
    assert hits, "the keyword search finds the page"
    assert hits[0]["page"] == 2
    assert "ERR-4471" in str(hits[0]["text"])
    assert hits[0]["title"] == "Zephyr guide"


async def test_docx_headings_become_sections(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    data = make_docx(
        [
            ("h1", "Billing"),
            ("p", "Invoices are sent on the first working day of each month. " + FILLER),
            ("h2", "Refunds"),
            ("p", "Refunds for the Orion plan are paid within fourteen days. " + FILLER),
        ],
        table=[["Plan", "Price"], ["Orion", "42 EUR"]],
    )
    doc = await ingest(client, headers, "policy.docx", data)
    assert doc["status"] == "ready", doc
    assert doc["kind"] == "docx"
    hits = await search(client, headers, "refunds fourteen days", mode="sparse", top_k=1)
    assert hits[0]["section"] == "Refunds"
    text = str(hits[0]["text"])
    assert text.startswith("Refunds")
    assert "42 EUR" in text  # the table is part of the last section
    assert hits[0]["page"] is None


async def test_html_drops_scripts_and_keeps_headings(
    client: httpx.AsyncClient, user: object
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    html = f"""<!doctype html><html><head><title>FAQ</title><style>p{{color:red}}</style></head>
    <body><script>var secretToken = "should-not-be-indexed";</script>
    <h1>Frequently asked</h1><p>Our office is in Lisbon. {FILLER}</p>
    <h2>Shipping</h2><p>Parcels ship with <b>Nimbus Express</b> every Tuesday. {FILLER}</p>
    </body></html>""".encode()
    doc = await ingest(client, headers, "faq.html", html)
    assert doc["status"] == "ready", doc
    assert doc["kind"] == "html"
    hits = await search(client, headers, "Nimbus Express", mode="sparse", top_k=1)
    assert hits[0]["section"] == "Shipping"
    assert "Nimbus Express every Tuesday" in str(hits[0]["text"])
    assert not await search(client, headers, "secretToken", mode="sparse")


async def test_markdown_and_text(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    markdown = (
        f"# Runbook\n\nRestart **the queue** first. {FILLER}\n\n"
        f"## Database\n\nRun `VACUUM` weekly. {FILLER}\n"
    ).encode()
    doc = await ingest(client, headers, "runbook.md", markdown)
    assert (doc["status"], doc["kind"]) == ("ready", "markdown")
    hits = await search(client, headers, "VACUUM weekly", mode="sparse", top_k=1)
    assert hits[0]["section"] == "Database"
    assert "**" not in str(hits[0]["text"])  # formatting marks are not indexed
    text = b"First paragraph about kiwis.\n\nSecond paragraph about mangoes.\n"
    doc = await ingest(client, headers, "fruit.txt", text)
    assert (doc["status"], doc["kind"]) == ("ready", "text")
    hits = await search(client, headers, "mangoes", mode="sparse", top_k=1)
    start, end = int(hits[0]["start"]), int(hits[0]["end"])  # type: ignore[call-overload]
    extracted = "First paragraph about kiwis.\n\nSecond paragraph about mangoes."
    assert extracted[start:end] == hits[0]["text"]


async def test_type_comes_from_content_not_extension(
    client: httpx.AsyncClient, user: object
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    doc = await ingest(client, headers, "no-extension", make_pdf([["Quarterly numbers"]]))
    assert doc["kind"] == "pdf"
    doc = await ingest(client, headers, "page", b"<html><body><p>Hi there</p></body></html>")
    assert doc["kind"] == "html"


# --- bad files -------------------------------------------------------------------------------


async def test_bad_files_fail_with_a_reason(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    corrupt = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf body"
    doc = await ingest(client, headers, "broken.pdf", corrupt)
    assert (doc["status"], doc["error_code"]) == ("failed", "corrupt_file"), doc
    assert "damaged" in doc["error"]

    encrypted = make_pdf([["Top secret plans"]], password="hunter2")
    doc = await ingest(client, headers, "locked.pdf", encrypted)
    assert (doc["status"], doc["error_code"]) == ("failed", "encrypted_pdf"), doc
    assert "password" in doc["error"]

    doc = await ingest(client, headers, "bomb.docx", make_docx_bomb())
    assert (doc["status"], doc["error_code"]) == ("failed", "unpacked_too_large"), doc
    assert "MAI_KB_MAX_UNPACKED_MB" in doc["error"]

    blank = make_pdf([[]])
    doc = await ingest(client, headers, "scan.pdf", blank)
    assert (doc["status"], doc["error_code"]) == ("failed", "no_text"), doc
    assert "OCR" in doc["error"]

    broken_docx = b"PK\x03\x04" + b"\x00" * 200
    doc = await ingest(client, headers, "broken.docx", broken_docx)
    assert (doc["status"], doc["error_code"]) == ("failed", "corrupt_file"), doc
    assert doc["chunk_count"] == 0


async def test_rejected_uploads(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    response = await upload(client, headers, "report.pdf", b"just some plain text, not a PDF")
    assert response.status_code == 415
    assert response.json()["error"] == "extension_mismatch"
    assert "plain text" in response.json()["detail"]

    response = await upload(client, headers, "notes.txt", make_pdf([["hello"]]))
    assert response.status_code == 415
    assert response.json()["error"] == "extension_mismatch"

    response = await upload(client, headers, "letter.docx", b"Dear team, hello.")
    assert response.status_code == 415

    response = await upload(client, headers, "photo.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert response.status_code == 415
    assert "PNG" in response.json()["detail"]

    response = await upload(client, headers, "empty.txt", b"")
    assert response.status_code == 422
    assert response.json()["error"] == "empty_file"

    listing = await client.get("/api/v1/kb/documents", headers=headers)
    assert listing.json()["total"] == 0, "nothing rejected was stored"


async def test_upload_text_fields_with_nul_are_refused(
    client: httpx.AsyncClient, user: object
) -> None:
    # Multipart fields bypass the JSON guard; on PostgreSQL these were 500s.
    headers = user.headers  # type: ignore[attr-defined]
    for form, code in [
        ({"title": "a\x00b"}, "bad_title"),
        ({"tags": "ok,b\x00d"}, "bad_tag"),
        ({"collection": "c\x00"}, "bad_collection"),
    ]:
        response = await upload(client, headers, "notes.txt", b"Some notes to index.", **form)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == code
        assert "NUL" in response.json()["detail"]
    listing = await client.get("/api/v1/kb/documents", headers=headers)
    assert listing.json()["total"] == 0


async def test_odd_filenames_are_reduced_to_a_plain_name(
    client: httpx.AsyncClient, user: object
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    # A raw multipart body: clients may send control characters and paths in the filename.
    body = (
        b'--BB\r\nContent-Disposition: form-data; name="file"; '
        b'filename="../../etc/ev\x00il\x1f.txt"\r\nContent-Type: text/plain\r\n\r\n'
        b"Odd filename body.\r\n--BB--\r\n"
    )
    response = await client.post(
        "/api/v1/kb/documents",
        content=body,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=BB"},
    )
    assert response.status_code == 202, response.text
    assert (response.json()["filename"], response.json()["title"]) == ("evil.txt", "evil")
    unicode_name = await upload(client, headers, "résumé 😀.md", b"# Unicode names work")
    assert unicode_name.status_code == 202, unicode_name.text
    assert unicode_name.json()["filename"] == "résumé 😀.md"


async def test_size_limit(
    app_factory: AppFactory, settings_factory: object, embedder: HashEmbedder
) -> None:
    settings: Settings = settings_factory(  # type: ignore[operator]
        kb_max_upload_mb=1, rate_limit_per_minute=0
    )
    app = await app_factory(settings, embedder=embedder)
    async with client_for(app) as client:
        account = await register(client)
        response = await upload(client, account.headers, "big.txt", b"word " * 220_000)
        assert response.status_code == 413
        assert response.json()["error"] == "file_too_large"
        assert "MAI_KB_MAX_UPLOAD_MB" in response.json()["detail"]
        response = await upload(client, account.headers, "ok.txt", b"word " * 200_000)
        assert response.status_code == 202


async def test_duplicate_upload_is_a_conflict(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    first = await ingest(client, headers, "a.txt", b"The same content twice.")
    response = await upload(client, headers, "renamed.md", b"The same content twice.")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "duplicate_document"
    assert body["meta"]["document_id"] == first["id"]


# --- lifecycle -------------------------------------------------------------------------------


async def test_delete_removes_file_rows_and_vectors(
    app: FastAPI, client: httpx.AsyncClient, user: object, settings: Settings
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    user_id = user.id  # type: ignore[attr-defined]
    long_text = "\n\n".join(f"Paragraph {i} talks about topic {i} at length." for i in range(300))
    keep = await ingest(client, headers, "keep.txt", b"Keep this document about owls.")
    doc = await ingest(client, headers, "long.txt", long_text.encode())
    assert doc["chunk_count"] > 1
    assert await point_count(app, user_id, doc["id"]) == doc["chunk_count"]
    stored = settings.kb_files_dir / user_id / doc["id"]
    assert stored.is_file()

    response = await client.delete(f"/api/v1/kb/documents/{doc['id']}", headers=headers)
    assert response.status_code == 204
    assert await point_count(app, user_id, doc["id"]) == 0
    assert await point_count(app, user_id) == keep["chunk_count"]
    assert not stored.exists()
    response = await client.get(f"/api/v1/kb/documents/{doc['id']}", headers=headers)
    assert response.status_code == 404
    assert not await search(client, headers, "topic 7 at length", mode="sparse")
    # The same file can be uploaded again once deleted.
    again = await upload(client, headers, "long.txt", long_text.encode())
    assert again.status_code == 202


async def test_owner_isolation(
    app: FastAPI, client: httpx.AsyncClient, account_factory: AccountFactory
) -> None:
    alice, bob = await account_factory(), await account_factory()
    doc = await ingest(client, alice.headers, "alice.txt", b"Alice's secret recipe uses saffron.")
    for method, path in (
        ("GET", f"/api/v1/kb/documents/{doc['id']}"),
        ("DELETE", f"/api/v1/kb/documents/{doc['id']}"),
        ("POST", f"/api/v1/kb/documents/{doc['id']}/reindex"),
    ):
        response = await client.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"] == "document_not_found"
    for mode in ("hybrid", "dense", "sparse"):
        assert not await search(client, bob.headers, "secret recipe saffron", mode=mode)
        found = await search(client, alice.headers, "secret recipe saffron", mode=mode)
        assert found[0]["document_id"] == doc["id"]
    # Bob cannot reach Alice's chunks even by naming her document.
    assert not await search(client, bob.headers, "saffron", filters={"document_ids": [doc["id"]]})
    listing = await client.get("/api/v1/kb/documents", headers=bob.headers)
    assert listing.json()["total"] == 0
    # The same bytes are not a duplicate for another user.
    response = await upload(client, bob.headers, "mine.txt", b"Alice's secret recipe uses saffron.")
    assert response.status_code == 202
    assert await point_count(app, alice.id, doc["id"]) == 1


async def test_reindex(app: FastAPI, client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    user_id = user.id  # type: ignore[attr-defined]
    text = "\n\n".join(
        f"Section {i} explains the lighthouse keeper's duty {i}." for i in range(120)
    )
    doc = await ingest(client, headers, "lighthouse.txt", text.encode())
    count = doc["chunk_count"]
    response = await client.post(f"/api/v1/kb/documents/{doc['id']}/reindex", headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    again = await wait_done(client, headers, doc["id"])
    assert again["status"] == "ready"
    assert again["chunk_count"] == count
    assert await point_count(app, user_id, doc["id"]) == count, "no duplicate vectors"

    missing = await client.post(f"/api/v1/kb/documents/{uuid.uuid4()}/reindex", headers=headers)
    assert missing.status_code == 404


async def test_failed_document_can_be_reindexed(
    client: httpx.AsyncClient, user: object, settings: Settings
) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    doc = await ingest(client, headers, "broken.pdf", b"%PDF-1.4\ngarbage")
    assert doc["status"] == "failed"
    # Someone repairs the stored file (e.g. restored from a backup) and asks again.
    path: Path = settings.kb_files_dir / user.id / doc["id"]  # type: ignore[attr-defined]
    path.write_bytes(make_pdf([["Repaired contents about walruses"]]))
    response = await client.post(f"/api/v1/kb/documents/{doc['id']}/reindex", headers=headers)
    assert response.status_code == 202
    done = await wait_done(client, headers, doc["id"])
    assert (done["status"], done["error"], done["error_code"]) == ("ready", None, None)


async def test_restart_picks_up_interrupted_documents(
    app_factory: AppFactory, settings: Settings
) -> None:
    blocked = BlockedEmbedder()
    first = await app_factory(settings, embedder=blocked)
    async with client_for(first) as client:
        account = await register(client)
        response = await upload(client, account.headers, "a.txt", b"Pelicans nest on islands.")
        assert response.status_code == 202
        doc_id = response.json()["id"]
        await blocked.started.wait()
        current = await client.get(f"/api/v1/kb/documents/{doc_id}", headers=account.headers)
        assert current.json()["status"] == "processing"
    await app_factory.stop(first)

    second = await app_factory(settings, embedder=HashEmbedder())
    async with client_for(second) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        done = await wait_done(client, headers, doc_id)
        assert done["status"] == "ready"
        assert await search(client, headers, "pelicans islands", mode="sparse")


async def test_list_filters_and_pagination(client: httpx.AsyncClient, user: object) -> None:
    headers = user.headers  # type: ignore[attr-defined]
    await ingest(client, headers, "1.txt", b"One about cats.", tags="pets, Cats", collection="zoo")
    await ingest(client, headers, "2.txt", b"Two about dogs.", tags=["pets", "dogs"])
    await ingest(client, headers, "3.pdf", b"%PDF-1.4 broken", collection="zoo")

    async def listing(**params: object) -> dict[str, object]:
        response = await client.get("/api/v1/kb/documents", headers=headers, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    everything = await listing()
    assert everything["total"] == 3
    assert [d["filename"] for d in everything["items"]] == ["3.pdf", "2.txt", "1.txt"]  # type: ignore[attr-defined]
    assert (await listing(tag="pets"))["total"] == 2
    cats = await listing(tag="CATS")
    assert [d["tags"] for d in cats["items"]] == [["cats", "pets"]]  # type: ignore[attr-defined]
    assert (await listing(collection="zoo"))["total"] == 2
    assert (await listing(status="failed"))["total"] == 1
    assert (await listing(status="ready", collection="zoo"))["total"] == 1
    page = await listing(limit=2, offset=2)
    assert (page["total"], len(page["items"])) == (3, 1)  # type: ignore[arg-type]
    bad = await client.get("/api/v1/kb/documents", headers=headers, params={"status": "nope"})
    assert bad.status_code == 422


async def test_requires_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/kb/documents")).status_code == 401
    response = await client.post("/api/v1/kb/search", json={"query": "x"})
    assert response.status_code == 401


async def test_deleting_a_user_removes_their_knowledge_base(
    app: FastAPI, client: httpx.AsyncClient, admin: object, user: object, settings: Settings
) -> None:
    doc = await ingest(client, user.headers, "mine.txt", b"Notes about otters.")  # type: ignore[attr-defined]
    user_id = user.id  # type: ignore[attr-defined]
    assert await point_count(app, user_id) == doc["chunk_count"] == 1
    response = await client.delete(f"/api/v1/users/{user_id}", headers=admin.headers)  # type: ignore[attr-defined]
    assert response.status_code == 204
    assert await point_count(app, user_id) == 0
    assert not (settings.kb_files_dir / user_id).exists()
