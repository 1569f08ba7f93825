"""Request and response shapes of the knowledge base."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.models import CollectionPermission, CollectionVisibility, DocumentStatus


class DocumentOut(BaseModel):
    """A knowledge-base document: metadata and where it is in the pipeline."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    filename: str
    kind: str = Field(description="pdf | docx | html | markdown | text (from the content)")
    size_bytes: int
    sha256: str
    tags: list[str]
    collection: str | None
    collection_id: uuid.UUID | None = Field(
        default=None, description="The shared collection it belongs to, if any"
    )
    status: DocumentStatus
    error_code: str | None = Field(description="Why it failed, as a code (status failed)")
    error: str | None = Field(description="Why it failed, in words a user can act on")
    chunk_count: int
    page_count: int | None
    version: int = Field(description="1, raised each time the content is replaced")
    source_url: str | None = Field(description="The URL it was fetched from, if any")
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None


class ChunkOut(BaseModel):
    """One indexed chunk of a document: its text and where it sits in the document."""

    model_config = ConfigDict(from_attributes=True)

    index: int = Field(description="Its position in the document, from 0")
    text: str
    page: int | None = Field(description="The page it starts on (paged formats)")
    section: str | None
    heading_path: list[str] = Field(description="The headings it sits under, outermost first")
    start: int = Field(description="Character offset of its start in the extracted text")
    end: int = Field(description="Character offset of its end in the extracted text")


class DocumentPatch(BaseModel):
    """New metadata for a document; fields left out keep their value (collection null: none)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    tags: list[str] | None = Field(default=None, max_length=20)
    collection: str | None = Field(default=None, max_length=100)
    collection_id: uuid.UUID | None = Field(
        default=None,
        description="Move into this shared collection (write permission needed); null: out",
    )


class UrlDocumentIn(BaseModel):
    """A web page or file to fetch and index like an upload."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="http:// or https:// URL")
    title: str | None = Field(default=None, min_length=1, max_length=300)
    tags: list[str] = Field(default_factory=list, max_length=20)
    collection: str | None = Field(default=None, max_length=100)


class SearchFiltersIn(BaseModel):
    """Optional narrowing of a search."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=20)
    collection: str | None = Field(default=None, max_length=100)
    collection_id: uuid.UUID | None = Field(
        default=None, description="Only this shared collection (one you may read)"
    )


class SearchIn(BaseModel):
    """A knowledge-base search."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    top_k: StrictInt = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    rerank: bool | None = Field(
        default=None, description="Rerank with the chat model; null: as MAI_KB_RERANK says"
    )
    filters: SearchFiltersIn = Field(default_factory=SearchFiltersIn)


class SearchHitOut(BaseModel):
    """One matching chunk."""

    model_config = ConfigDict(from_attributes=True)

    chunk_id: str
    document_id: str
    title: str
    page: int | None
    section: str | None
    heading_path: list[str] = Field(
        default_factory=list, description="Headings above the chunk, outermost first"
    )
    text: str
    score: float
    start: int = Field(description="Offset of the chunk in the document's extracted text")
    end: int
    chunk_index: int
    tags: list[str]
    collection: str | None = Field(description="The collection (label or shared) of the hit")
    collection_id: str | None = Field(
        default=None, description="The shared collection of the hit; null for your own"
    )


class SearchOut(BaseModel):
    """Search results, best first."""

    query: str
    mode: str
    results: list[SearchHitOut]


class MemberIn(BaseModel):
    """A user given access to a collection."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    permission: CollectionPermission = CollectionPermission.read


class MemberOut(BaseModel):
    """A member of a collection."""

    email: str
    permission: CollectionPermission


class CollectionIn(BaseModel):
    """A new collection."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    visibility: CollectionVisibility = CollectionVisibility.private
    description: str | None = Field(default=None, max_length=1000)
    members: list[MemberIn] = Field(default_factory=list, max_length=1000)


class CollectionPatch(BaseModel):
    """Sharing changes; fields left out keep their value, `members` replaces the list."""

    model_config = ConfigDict(extra="forbid")

    visibility: CollectionVisibility | None = None
    description: str | None = Field(default=None, max_length=1000)
    members: list[MemberIn] | None = Field(default=None, max_length=1000)


class CollectionOut(BaseModel):
    """A collection: who may read it, and what you may do in it."""

    id: uuid.UUID
    name: str
    description: str | None
    visibility: CollectionVisibility = Field(
        description="private: members only; shared: every user, or its members when it has any"
    )
    members: list[MemberOut]
    document_count: int
    can_write: bool = Field(description="Whether you may upload documents into it")
    created_at: datetime
    updated_at: datetime
