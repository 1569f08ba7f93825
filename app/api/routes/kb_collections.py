"""/kb/collections: shared collections, their members and their documents."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status

from app.api.deps import CurrentUser, PageDep, ResourcesDep, SessionDep
from app.api.routes.kb import KnowledgeBaseDep, read_limited
from app.api.schemas.common import PageOut
from app.api.schemas.kb import (
    CollectionIn,
    CollectionOut,
    CollectionPatch,
    DocumentOut,
    MemberIn,
    MemberOut,
)
from app.models import DocumentStatus
from app.services.analytics import AnalyticsService
from app.services.kb.collections import CollectionService, CollectionView, MemberSpec
from app.services.kb.filenames import normalise_filename
from app.services.kb.service import Upload

router = APIRouter(prefix="/api/v1/kb/collections", tags=["knowledge base"])


def _out(view: CollectionView) -> CollectionOut:
    collection = view.collection
    return CollectionOut.model_validate(
        {
            "id": collection.id,
            "name": collection.name,
            "description": collection.description,
            "visibility": collection.visibility,
            "members": [
                MemberOut.model_validate({"email": email, "permission": permission})
                for email, permission in view.members
            ],
            "document_count": view.document_count,
            "can_write": view.can_write,
            "created_at": collection.created_at,
            "updated_at": collection.updated_at,
        }
    )


def _members(members: list[MemberIn]) -> list[MemberSpec]:
    return [MemberSpec(member.email, member.permission) for member in members]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(
    body: CollectionIn, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> CollectionOut:
    """Create a collection (admins): private (members only) or shared (everyone, or members)."""
    view = await CollectionService(kb).create(
        session,
        user,
        name=body.name,
        visibility=body.visibility,
        description=body.description,
        members=_members(body.members),
    )
    return _out(view)


@router.get("")
async def list_collections(
    user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep, page: PageDep
) -> PageOut[CollectionOut]:
    """The collections you may read, by name (every collection for an admin)."""
    views, total = await CollectionService(kb).list_readable(
        session, user, limit=page.limit, offset=page.offset
    )
    return PageOut[CollectionOut](
        items=[_out(view) for view in views], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{collection_id}")
async def read_collection(
    collection_id: uuid.UUID, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> CollectionOut:
    """One collection you may read."""
    return _out(await CollectionService(kb).read(session, user, collection_id))


@router.patch("/{collection_id}")
async def share_collection(
    collection_id: uuid.UUID,
    body: CollectionPatch,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
) -> CollectionOut:
    """Share a collection (admins): its visibility, description, or members (replaced)."""
    view = await CollectionService(kb).update(
        session,
        user,
        collection_id,
        visibility=body.visibility,
        description=body.description,
        set_description="description" in body.model_fields_set,
        members=_members(body.members) if body.members is not None else None,
    )
    return _out(view)


@router.delete("/{collection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(
    collection_id: uuid.UUID, user: CurrentUser, session: SessionDep, kb: KnowledgeBaseDep
) -> None:
    """Delete a collection with its documents and their vectors (admins)."""
    await CollectionService(kb).delete(session, user, collection_id)


@router.post("/{collection_id}/documents", status_code=status.HTTP_202_ACCEPTED)
async def upload_to_collection(
    collection_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    resources: ResourcesDep,
    file: Annotated[UploadFile, File(description="PDF, DOCX, HTML, Markdown or plain text")],
    title: Annotated[str | None, Form(max_length=300)] = None,
    tags: Annotated[
        list[str] | None, Form(description="Repeat the field or comma-separate")
    ] = None,
) -> DocumentOut:
    """Upload a document into a collection (admins, or members with write permission)."""
    service = CollectionService(kb)
    await service.get(session, user, collection_id)  # 404 before reading a large body
    data = await read_limited(file, kb.settings.kb_max_upload_mb)
    document = await service.upload(
        session,
        user,
        collection_id,
        Upload(filename=normalise_filename(file.filename), data=data, title=title, tags=tags or []),
    )
    await AnalyticsService(resources).record_kb_event(
        user_id=user.id,
        kind="kb_upload",
        details={"document_id": str(document.id), "size_bytes": document.size_bytes},
    )
    return DocumentOut.model_validate(document)


@router.get("/{collection_id}/documents")
async def list_collection_documents(
    collection_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    kb: KnowledgeBaseDep,
    page: PageDep,
    status: Annotated[DocumentStatus | None, Query(description="Only this status")] = None,
) -> PageOut[DocumentOut]:
    """The documents of a collection you may read, newest first."""
    items, total = await CollectionService(kb).documents(
        session, user, collection_id, status=status, limit=page.limit, offset=page.offset
    )
    return PageOut[DocumentOut](
        items=[DocumentOut.model_validate(d) for d in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
