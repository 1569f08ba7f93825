"""/kb: upload documents, follow their ingestion, search them."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status

from app.api.deps import CurrentUser, PageDep, ResourcesDep, SessionDep, get_resources
from app.api.schemas.common import PageOut
from app.api.schemas.kb import (
    ChunkOut,
    DocumentOut,
    DocumentPatch,
    SearchHitOut,
    SearchIn,
    SearchOut,
    UrlDocumentIn,
)
from app.core.errors import NotFound, PayloadTooLarge, ServiceUnavailable
from app.models import DocumentStatus
from app.repositories.vectors import SearchFilters
from app.services.analytics import AnalyticsService
from app.services.kb.filenames import normalise_filename
from app.services.kb.service import KnowledgeBase, Upload

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])

_READ_SIZE = 1024 * 1024


def get_knowledge_base(request: Request) -> KnowledgeBase:
    """The app instance's knowledge base (503 while starting or if it is not set up)."""
    get_resources(request)
    knowledge_base: KnowledgeBase | None = getattr(request.app.state, "kb", None)
    if knowledge_base is None:
        raise ServiceUnavailable("The knowledge base is not running.", code="kb_unavailable")
    return knowledge_base


KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_knowledge_base)]


async def read_limited(file: UploadFile, limit_mb: int) -> bytes:
    """The uploaded file's bytes; 413 as soon as it is over the limit."""
    limit = limit_mb * 1024 * 1024
    if file.size is not None and file.size > limit:
        raise PayloadTooLarge(
            f"The file is over the {limit_mb} MB limit (MAI_KB_MAX_UPLOAD_MB); "
            "split it into smaller files.",
            code="file_too_large",
            meta={"limit_bytes": limit},
        )
    parts: list[bytes] = []
    size = 0
    while chunk := await file.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"The file is over the {limit_mb} MB limit (MAI_KB_MAX_UPLOAD_MB); "
                "split it into smaller files.",
                code="file_too_large",
                meta={"limit_bytes": limit},
            )
        parts.append(chunk)
    return b"".join(parts)


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED)
async def upload_document(
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    resources: ResourcesDep,
    file: Annotated[UploadFile, File(description="PDF, DOCX, HTML, Markdown or plain text")],
    title: Annotated[str | None, Form(max_length=300)] = None,
    tags: Annotated[
        list[str] | None, Form(description="Repeat the field or comma-separate")
    ] = None,
    collection: Annotated[str | None, Form(max_length=100)] = None,
) -> DocumentOut:
    """Upload a document; it is indexed in the background (poll its status)."""
    data = await read_limited(file, kb.settings.kb_max_upload_mb)
    document = await kb.upload(
        session,
        user.id,
        Upload(
            filename=normalise_filename(file.filename),
            data=data,
            title=title,
            tags=tags or [],
            collection=collection,
        ),
    )
    await AnalyticsService(resources).record_kb_event(
        user_id=user.id,
        kind="kb_upload",
        details={"document_id": str(document.id), "size_bytes": document.size_bytes},
    )
    return DocumentOut.model_validate(document)


@router.post("/documents/url", status_code=status.HTTP_202_ACCEPTED)
async def upload_document_from_url(
    body: UrlDocumentIn,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    resources: ResourcesDep,
) -> DocumentOut:
    """Fetch one web page or file and index it like an upload (internal addresses refused)."""
    document = await kb.upload_url(
        session, user.id, body.url, title=body.title, tags=body.tags, collection=body.collection
    )
    await AnalyticsService(resources).record_kb_event(
        user_id=user.id,
        kind="kb_upload",
        details={"document_id": str(document.id), "size_bytes": document.size_bytes},
    )
    return DocumentOut.model_validate(document)


@router.get("/documents")
async def list_documents(
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    page: PageDep,
    status: Annotated[DocumentStatus | None, Query(description="Only this status")] = None,
    tag: Annotated[str | None, Query(max_length=64, description="Only with this tag")] = None,
    collection: Annotated[str | None, Query(max_length=100)] = None,
) -> PageOut[DocumentOut]:
    """Your documents, newest first."""
    items, total = await kb.list_documents(
        session,
        user.id,
        status=status,
        tag=tag,
        collection=collection,
        limit=page.limit,
        offset=page.offset,
    )
    return PageOut[DocumentOut](
        items=[DocumentOut.model_validate(d) for d in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/documents/{document_id}")
async def read_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> DocumentOut:
    """A document you may open (yours, or one of a shared collection you may read): metadata,
    status, chunk count and error. 404 for any other."""
    return DocumentOut.model_validate(
        await kb.get(session, user.id, document_id, is_admin=user.is_admin)
    )


@router.get("/documents/{document_id}/chunks")
async def list_document_chunks(
    document_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    page: PageDep,
) -> PageOut[ChunkOut]:
    """The indexed chunks of a document you may open, in reading order (its current version)."""
    chunks, total = await kb.chunks(
        session,
        user.id,
        document_id,
        limit=page.limit,
        offset=page.offset,
        is_admin=user.is_admin,
    )
    return PageOut[ChunkOut](
        items=[ChunkOut.model_validate(chunk) for chunk in chunks],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.patch("/documents/{document_id}")
async def update_document(
    document_id: uuid.UUID,
    body: DocumentPatch,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
) -> DocumentOut:
    """Change a document's title, tags or collection; its chunks are updated, not re-embedded.

    Yours, or one of a collection you may write to (admins: any collection); moving it into a
    collection needs write permission there too. 403 when you may only read it."""
    document = await kb.update_metadata(
        session,
        user.id,
        document_id,
        title=body.title,
        tags=body.tags,
        collection=body.collection,
        set_collection="collection" in body.model_fields_set,
        collection_id=body.collection_id,
        set_collection_id="collection_id" in body.model_fields_set,
        is_admin=user.is_admin,
    )
    return DocumentOut.model_validate(document)


@router.put("/documents/{document_id}/content", status_code=status.HTTP_202_ACCEPTED)
async def replace_document_content(
    document_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    file: Annotated[UploadFile, File(description="The new file (any supported format)")],
) -> DocumentOut:
    """Replace a document's file: indexed as the next version, the old one answers meanwhile.

    Yours, or one of a collection you may write to (admins: any collection)."""
    data = await read_limited(file, kb.settings.kb_max_upload_mb)
    document = await kb.replace_content(
        session,
        user.id,
        document_id,
        Upload(filename=file.filename or "upload", data=data),
        is_admin=user.is_admin,
    )
    return DocumentOut.model_validate(document)


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> None:
    """Delete a document, yours or one of a collection you may write to: its file, its rows and
    every vector."""
    await kb.delete(session, user.id, document_id, is_admin=user.is_admin)


@router.post("/documents/{document_id}/reindex", status_code=status.HTTP_202_ACCEPTED)
async def reindex_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> DocumentOut:
    """Parse and index a document you may change again (after a failure or a model/chunking
    change)."""
    return DocumentOut.model_validate(
        await kb.reindex(session, user.id, document_id, is_admin=user.is_admin)
    )


@router.post("/search")
async def search(
    body: SearchIn,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    resources: ResourcesDep,
) -> SearchOut:
    """Search your documents and the shared collections you may read: hybrid (dense + keyword,
    RRF-fused), dense or sparse. Each hit names its collection."""
    started = time.perf_counter()
    shared = await kb.readable_collections(session, user.id)
    only = body.filters.collection_id
    if only is not None and str(only) not in shared:
        raise NotFound(f"No collection with id {only}.", code="collection_not_found")
    results = await kb.search(
        str(user.id),
        body.query,
        top_k=body.top_k,
        mode=body.mode,
        rerank=body.rerank,
        filters=SearchFilters(
            document_ids=[str(d) for d in body.filters.document_ids],
            tags=[t.strip().lower() for t in body.filters.tags if t.strip()],
            collection=body.filters.collection,
            shared_collections=shared,
            collection_id=str(only) if only is not None else None,
        ),
    )
    await AnalyticsService(resources).record_kb_event(
        user_id=user.id,
        kind="kb_search",
        latency_ms=(time.perf_counter() - started) * 1000,
        details={"mode": body.mode, "results": len(results)},
    )
    return SearchOut(
        query=body.query,
        mode=body.mode,
        results=[SearchHitOut.model_validate(r) for r in results],
    )
