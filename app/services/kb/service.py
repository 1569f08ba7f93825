"""Knowledge-base use cases: upload, list, delete, reindex, search, and the ingestion worker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from app.core.filemodes import make_private_dir, write_private_file
from app.core.logging import get_logger
from app.core.resources import Resources
from app.models import DocumentStatus, KBDocument, User
from app.repositories.kb_collections import KBCollectionRepository
from app.repositories.kb_documents import KBDocumentRepository
from app.repositories.vectors import (
    ChunkPoint,
    IndexMismatch,
    SearchFilters,
    SearchMode,
    VectorIndex,
    chunk_point_id,
    collection_name,
)
from app.repositories.vectors_edge import EdgeIndex
from app.services.kb.chunking import Chunker, chunk_size, token_counter_for
from app.services.kb.embeddings import Embedder, create_embedder
from app.services.kb.errors import IngestError
from app.services.kb.isolation import ChunkingSpec, ParseLimits, parse_isolated
from app.services.kb.parsing import detect_kind
from app.services.kb.rerank import LlmReranker
from app.services.kb.scheduler import FairQueue
from app.services.kb.sparse import average_terms, document_vector, query_vector
from app.services.kb.store_migration import migrate_local_store
from app.services.kb.url_fetch import UrlGuard, fetch_url

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

log = get_logger(__name__)

MAX_TAGS = 20
# Documents queued by another process (a second worker, `mai ingest`) are found by this rescan.
RESCAN_SECONDS = 30.0
# How long deleting a document waits for its ingestion to stop.
CANCEL_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as received, with the user's optional metadata."""

    filename: str
    data: bytes
    title: str | None = None
    tags: Sequence[str] = ()
    collection: str | None = None
    source_url: str | None = None
    # A shared collection (then `collection` is its name); the caller has checked the right.
    collection_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class DocumentChunk:
    """One indexed chunk of a document's current version, as stored in the vector index."""

    index: int
    text: str
    page: int | None
    section: str | None
    heading_path: list[str]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One matching chunk."""

    chunk_id: str
    document_id: str
    title: str
    page: int | None
    section: str | None
    text: str
    score: float
    start: int
    end: int
    chunk_index: int
    tags: list[str] = field(default_factory=list)
    collection: str | None = None
    heading_path: list[str] = field(default_factory=list)
    collection_id: str | None = None


def normalise_tags(raw: Sequence[str]) -> list[str]:
    """Tags from repeated fields and/or comma-separated values: trimmed, lower-cased, unique."""
    tags: list[str] = []
    for value in raw:
        for part in value.split(","):
            tag = part.strip().lower()
            if not tag:
                continue
            if len(tag) > 64:
                raise Unprocessable(f"The tag {tag[:20]!r}… is over 64 characters.", code="bad_tag")
            if "\x00" in tag:
                raise Unprocessable(
                    "A tag contains a NUL character; remove it and upload again.", code="bad_tag"
                )
            if tag not in tags:
                tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Unprocessable(f"At most {MAX_TAGS} tags per document.", code="too_many_tags")
    return tags


def normalise_collection(value: str | None) -> str | None:
    """A collection name, trimmed; empty means none."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 100:
        raise Unprocessable("The collection name is over 100 characters.", code="bad_collection")
    if "\x00" in value:
        raise Unprocessable(
            "The collection name contains a NUL character; remove it.", code="bad_collection"
        )
    return value


def clean_filename(name: str | None) -> str:
    """The file's own name (no directories, no control characters), at most 300 characters."""
    base = PurePath(name or "upload").name
    return "".join(c for c in base if c >= " " and c != "\x7f")[:300] or "upload"


class KnowledgeBase:
    """The knowledge base of one app instance: its index, embedder, chunker and worker."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        qdrant: AsyncQdrantClient | None,
        embedder: Embedder,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.qdrant = qdrant
        self.embedder = embedder
        spec = self.chunking_spec()
        self.chunker = Chunker(
            token_counter_for(settings.embedding_model_path),
            spec.max_tokens,
            spec.overlap,
            spec.min_tokens,
        )
        self._index: VectorIndex | None = None
        self._index_lock = asyncio.Lock()
        # One worker stays free for other users while one user's files keep the rest busy.
        self._queue = FairQueue(per_user=max(1, settings.kb_workers - 1))
        self._in_progress: dict[uuid.UUID, asyncio.Task[KBDocument | None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        # Points copied from Qdrant local mode into the embedded engine at this start.
        self.migrated_points = 0
        # Set once the chat model exists (after the KB starts), when MAI_KB_RERANK=llm.
        self.reranker: LlmReranker | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def index(self) -> VectorIndex:
        """The vector collection for the embedding model, created on first use.

        A Qdrant server when MAI_QDRANT_URL is set, else the embedded engine, into which the
        vectors an older version kept in Qdrant local mode are moved on first use.
        """
        async with self._index_lock:
            if self._index is None:
                dimension = await self.embedder.dimension()
                name = self.settings.kb_qdrant_collection or collection_name(
                    self.embedder.model_name, dimension
                )
                if self.qdrant is not None:
                    from app.repositories.vectors_qdrant import QdrantIndex

                    location = self.settings.qdrant_url or str(self.settings.qdrant_path)
                    self._index = QdrantIndex(self.qdrant, name, dimension, location=location)
                else:
                    # The embedded vectors are private files, like the rest of the data dir.
                    make_private_dir(self.settings.kb_vectors_path)
                    edge = EdgeIndex(self.settings.kb_vectors_path / name, name, dimension)
                    await edge.ensure()
                    self.migrated_points += await migrate_local_store(
                        self.settings.qdrant_path, edge
                    )
                    self._index = edge
            await self._index.ensure()
            return self._index

    async def start(self, *, worker: bool = True) -> None:
        """Check the index (a dimension mismatch stops the start) and resume pending documents."""
        try:
            await self.index()
        except IndexMismatch:
            raise
        except ServiceUnavailable as error:
            # Qdrant or the embedding server is down: the API answers 503 until it is back.
            log.warning("kb_unavailable_at_start", reason=error.detail)
        if not worker:
            return
        async with self.sessionmaker() as session:
            # A stop in the middle of processing leaves documents "processing": start them over.
            interrupted = await KBDocumentRepository(session).requeue_interrupted()
            await session.commit()
        if interrupted:
            log.info("kb_documents_requeued", count=interrupted)
        await self._enqueue_pending()
        self._workers = [
            asyncio.create_task(self._run_worker(), name=f"kb-ingest-worker-{number}")
            for number in range(self.settings.kb_workers)
        ]
        self._workers.append(asyncio.create_task(self._run_rescan(), name="kb-ingest-rescan"))

    async def stop(self) -> None:
        """Stop the workers; documents they were processing are picked up at the next start."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        if self._index is not None:
            await self._index.close()
            self._index = None

    async def _enqueue_pending(self) -> None:
        async with self.sessionmaker() as session:
            pending = await KBDocumentRepository(session).queued()
        for document_id, user_id in pending:
            self.enqueue(document_id, user_id)

    def enqueue(self, document_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Hand a document to the workers (once), in its owner's line."""
        self._queue.put(document_id, user_id)

    async def _run_rescan(self) -> None:
        while True:
            await asyncio.sleep(RESCAN_SECONDS)
            try:
                await self._enqueue_pending()
            except Exception:
                log.exception("kb_rescan_failed")

    async def _run_worker(self) -> None:
        while True:
            document_id, _ = await self._queue.get()
            # Its own task, so cancelling one document's ingestion leaves the worker running.
            task = asyncio.create_task(self.process(document_id), name=f"kb-ingest-{document_id}")
            self._in_progress[document_id] = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise
            finally:
                self._in_progress.pop(document_id, None)
                self._queue.done(document_id)
            if task.cancelled():
                log.info("kb_ingest_cancelled", document_id=str(document_id))
            elif (error := task.exception()) is not None:
                log.error(
                    "kb_worker_error", document_id=str(document_id), error=type(error).__name__
                )

    async def cancel_ingestion(self, document_id: uuid.UUID) -> bool:
        """Stop a document's ingestion: drop it from the queue, or stop its work in progress.

        The parse child is killed at once and the wait for the rest (an embedding call) is
        bounded by CANCEL_WAIT_SECONDS. The document's row is left as it is: deleting or
        replacing the content is the caller's next step. True if there was anything to stop.
        """
        waiting = self._queue.discard(document_id)
        task = self._in_progress.get(document_id)
        if task is None:
            return waiting
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)
        log.info("kb_ingest_cancel_requested", document_id=str(document_id), done=task.done())
        return True

    # --- ingestion -------------------------------------------------------------------------

    def file_path(self, user_id: uuid.UUID, document_id: uuid.UUID) -> Path:
        """Where the original file of a document is kept."""
        return self.settings.kb_files_dir / str(user_id) / str(document_id)

    async def upload(
        self, session: AsyncSession, user_id: uuid.UUID, upload: Upload, *, enqueue: bool = True
    ) -> KBDocument:
        """Check and store a file, record it as queued and hand it to the worker (if `enqueue`)."""
        self._check_data(upload)
        filename = clean_filename(upload.filename)
        if upload.title is not None and "\x00" in upload.title:
            raise Unprocessable(
                "The title contains a NUL character; remove it and upload again.",
                code="bad_title",
            )
        kind = detect_kind(upload.data, filename)
        tags = normalise_tags(upload.tags)
        collection = normalise_collection(upload.collection)
        sha256 = hashlib.sha256(upload.data).hexdigest()
        documents = KBDocumentRepository(session)
        existing = await documents.get_by_hash(user_id, sha256)
        if existing is not None and existing.status == DocumentStatus.failed.value:
            # The same content again after a failure is a retry, not a duplicate.
            return await self._retry_failed(session, existing, upload.data, enqueue=enqueue)
        if existing is not None:
            raise self._duplicate(existing)
        await self.index()  # 503 now rather than a queued document that cannot be indexed
        title = (upload.title or "").strip()[:300] or PurePath(filename).stem or filename
        document = KBDocument(
            user_id=user_id,
            title=title,
            filename=filename,
            kind=kind,
            size_bytes=len(upload.data),
            sha256=sha256,
            collection=collection,
            collection_id=upload.collection_id,
            status=DocumentStatus.queued.value,
            chunk_count=0,
            source_url=upload.source_url,
        )
        try:
            await documents.add(document, tags)
        except IntegrityError:
            await session.rollback()
            existing = await documents.get_by_hash(user_id, sha256)
            if existing is not None:
                raise self._duplicate(existing) from None
            raise
        path = self.file_path(user_id, document.id)
        try:
            await asyncio.to_thread(self._write_file, path, upload.data)
            await session.commit()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        log.info("kb_document_uploaded", document_id=str(document.id), kind=kind)
        metrics.record_ingestion_job("queued")
        if enqueue:
            self.enqueue(document.id, user_id)
        return document

    async def upload_url(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        url: str,
        *,
        title: str | None = None,
        tags: Sequence[str] = (),
        collection: str | None = None,
    ) -> KBDocument:
        """Fetch one web page or file (SSRF-guarded) and upload it, keeping the URL as source."""
        normalise_tags(tags)  # bad tags are a 422 before anything is fetched
        normalise_collection(collection)
        await self.index()
        fetched = await fetch_url(
            url.strip(),
            guard=UrlGuard(self.settings.kb_url_allowlist),
            max_bytes=self.settings.kb_max_upload_mb * 1024 * 1024,
            timeout=self.settings.kb_url_timeout_seconds,
        )
        default_title = PurePath(fetched.filename).stem if "." in fetched.filename else None
        return await self.upload(
            session,
            user_id,
            Upload(
                filename=fetched.filename,
                data=fetched.data,
                title=title or default_title or fetched.url[:300],
                tags=tags,
                collection=collection,
                source_url=url.strip(),
            ),
        )

    async def _retry_failed(
        self, session: AsyncSession, document: KBDocument, data: bytes, *, enqueue: bool
    ) -> KBDocument:
        """Queue a failed document again, restoring its stored file from the new upload."""
        await self.index()
        await asyncio.to_thread(
            self._write_file, self.file_path(document.user_id, document.id), data
        )
        document.status = DocumentStatus.queued.value
        document.error = document.error_code = None
        await session.commit()
        log.info("kb_document_retried", document_id=str(document.id))
        metrics.record_ingestion_job("queued")
        if enqueue:
            self.enqueue(document.id, document.user_id)
        return document

    def _check_data(self, upload: Upload) -> None:
        limit = self.settings.kb_max_upload_mb * 1024 * 1024
        if len(upload.data) > limit:
            raise PayloadTooLarge(
                f"The file is over the {self.settings.kb_max_upload_mb} MB limit "
                "(MAI_KB_MAX_UPLOAD_MB); split it into smaller files.",
                code="file_too_large",
                meta={"limit_bytes": limit},
            )
        if not upload.data.strip():
            raise Unprocessable("The file is empty; there is nothing to index.", code="empty_file")

    async def replace_content(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        upload: Upload,
        *,
        is_admin: bool = False,
    ) -> KBDocument:
        """Store a new file for a document the user may change and index it as the next version.

        The old version's chunks answer searches until the new ones are written. 409 while the
        document is still being indexed, or when the content is unchanged or another document
        of its uploader's.
        """
        document = await self.get_writable(session, user_id, document_id, is_admin=is_admin)
        owner = document.user_id
        if document.status in (DocumentStatus.queued.value, DocumentStatus.processing.value):
            raise Conflict(
                f"Version {document.version} is still {document.status}; replace the content "
                "once it is ready or failed.",
                code="document_busy",
                meta={"status": document.status, "version": document.version},
            )
        self._check_data(upload)
        filename = clean_filename(upload.filename)
        kind = detect_kind(upload.data, filename)
        sha256 = hashlib.sha256(upload.data).hexdigest()
        if sha256 == document.sha256:
            raise Conflict(
                f"This is the content of version {document.version} already; nothing changed. "
                "Use reindex to index it again.",
                code="content_unchanged",
                meta={"version": document.version},
            )
        other = await KBDocumentRepository(session).get_by_hash(owner, sha256)
        if other is not None and owner != user_id:
            # The uploader's other document may be private: say nothing about it.
            raise Conflict(
                "The uploader of this document has another document with this content already.",
                code="duplicate_document",
            )
        if other is not None:
            raise self._duplicate(other)
        await self.index()
        document.filename = filename
        document.kind = kind
        document.size_bytes = len(upload.data)
        document.sha256 = sha256
        document.version += 1
        document.status = DocumentStatus.queued.value
        document.error = document.error_code = None
        await asyncio.to_thread(self._write_file, self.file_path(owner, document_id), upload.data)
        await session.commit()
        await session.refresh(document)
        log.info("kb_document_replaced", document_id=str(document_id), version=document.version)
        metrics.record_ingestion_job("queued")
        self.enqueue(document.id, document.user_id)
        return document

    async def update_metadata(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        collection: str | None = None,
        set_collection: bool = False,
        collection_id: uuid.UUID | None = None,
        set_collection_id: bool = False,
        is_admin: bool = False,
    ) -> KBDocument:
        """Change a document's title, tags or collection; its chunks keep their vectors.

        The caller may change the document (its uploader, an admin, or a writer of its shared
        collection). `collection` is the document's own label; `collection_id` moves it into a
        shared collection the caller may write to as well (its name becomes the label) or, with
        None, out of it. The chunks' payloads are rewritten in the vector store first (503 there
        changes nothing), then the row. A document still being indexed is a 409: its chunks
        would be written with the old values.
        """
        document = await self.get_writable(session, user_id, document_id, is_admin=is_admin)
        shared_name: str | None = None
        if set_collection_id and collection_id is not None:
            shared_name = await self._writable_collection_name(
                session, collection_id, user_id, is_admin
            )
        if set_collection and not set_collection_id and document.collection_id is not None:
            raise Unprocessable(
                f"The document is in the shared collection {document.collection!r}; move it "
                "with collection_id (null takes it out).",
                code="collection_is_shared",
            )
        if document.status in (DocumentStatus.queued.value, DocumentStatus.processing.value):
            raise Conflict(
                f"The document is {document.status}; change it once it is ready or failed.",
                code="document_busy",
                meta={"status": document.status},
            )
        new_title: str | None = None
        if title is not None:
            if "\x00" in title:
                raise Unprocessable("The title contains a NUL character.", code="bad_title")
            new_title = title.strip()[:300]
            if not new_title:
                raise Unprocessable("The title cannot be empty.", code="bad_title")
        new_tags = normalise_tags(tags) if tags is not None else None
        new_collection = normalise_collection(collection) if set_collection else None
        if set_collection_id:
            set_collection = True
            new_collection = shared_name
        values: dict[str, object] = {}
        if new_title is not None:
            values["title"] = new_title
        if new_tags is not None:
            values["tags"] = new_tags
        if set_collection:
            values["collection"] = new_collection
        if set_collection_id:
            values["collection_id"] = str(collection_id) if collection_id else None
        if not values:
            return document
        if document.chunk_count and document.index_name is not None:
            index = await self.index()
            await index.set_payload(str(document.user_id), str(document_id), values)
        if new_title is not None:
            document.title = new_title
        if new_tags is not None:
            await KBDocumentRepository(session).set_tags(document, new_tags)
        if set_collection:
            document.collection = new_collection
        if set_collection_id:
            document.collection_id = collection_id
        await session.commit()
        await session.refresh(document)
        log.info("kb_document_updated", document_id=str(document_id), fields=sorted(values))
        return document

    @staticmethod
    async def _writable_collection_name(
        session: AsyncSession, collection_id: uuid.UUID, user_id: uuid.UUID, is_admin: bool
    ) -> str:
        """The name of a shared collection the user may add documents to.

        422 `unknown_collection` when it does not exist or the user cannot read it (the two
        look alike, so ids of hidden collections are not revealed); 403 when read-only.
        """
        repository = KBCollectionRepository(session)
        collection = await repository.get_readable(collection_id, user_id, is_admin)
        if collection is None:
            raise Unprocessable(
                f"There is no collection with id {collection_id}.", code="unknown_collection"
            )
        if not await repository.can_write(collection, user_id, is_admin):
            raise Forbidden(
                f"You may read the collection {collection.name!r} but not add documents to it; "
                "ask an admin for write permission.",
                code="collection_read_only",
            )
        return collection.name

    async def readable_collections(self, session: AsyncSession, user_id: uuid.UUID) -> list[str]:
        """The ids of the shared collections a user may search (every one for an admin)."""
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            return []
        return await KBCollectionRepository(session).readable_ids(user.id, user.is_admin)

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        temporary = path.with_suffix(".part")
        write_private_file(temporary, data)
        temporary.replace(path)

    @staticmethod
    def _duplicate(existing: KBDocument) -> Conflict:
        return Conflict(
            f"You already uploaded this file as {existing.title!r} (document {existing.id}).",
            code="duplicate_document",
            meta={"document_id": str(existing.id), "status": existing.status},
        )

    async def process(self, document_id: uuid.UUID) -> KBDocument | None:
        """Parse, chunk, embed and index one queued document; mark it ready or failed."""
        async with self.sessionmaker() as session:
            documents = KBDocumentRepository(session)
            if not await documents.claim(document_id):
                return None
            await session.commit()
            document = await documents.get(document_id)
            if document is None:
                return None
            user_id, kind, title = document.user_id, document.kind, document.title
            version = document.version
            # A title the user did not give is the file name's stem until the document has one.
            untitled = title in (PurePath(document.filename).stem, document.filename)
            indexed_before = document.index_name is not None
            payload_base = {
                "user_id": str(document.user_id),
                "document_id": str(document.id),
                "title": document.title,
                "filename": document.filename,
                "tags": document.tags,
                "collection": document.collection,
                "collection_id": str(document.collection_id) if document.collection_id else None,
                "version": document.version,
            }
        try:
            path = self.file_path(user_id, document_id)
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                raise IngestError(
                    "file_missing",
                    "The stored file is missing from the data directory; upload it again.",
                ) from None
            # A title the user gave frames the chunks when the document has none of its own; a
            # file name does not.
            parsed = await parse_isolated(
                data, kind, self.parse_limits(), self.chunking_spec(), None if untitled else title
            )
            new_title = parsed.title[:300] if untitled and parsed.title else None
            if new_title:
                payload_base["title"] = new_title
            del data
            log.info(
                "kb_document_parsed",
                document_id=str(document_id),
                chunks=len(parsed.chunks),
                seconds=round(parsed.seconds, 3),
                peak_rss_mb=round(parsed.peak_rss_bytes / 1e6, 1),
            )
            chunks = parsed.chunks
            index = await self.index()
            # The context line (title and heading path) is embedded, not stored in the text.
            dense = await self.embedder.embed([chunk.embed_text for chunk in chunks])
            average = average_terms(self.chunking_spec().max_tokens)
            sparse = await asyncio.to_thread(
                lambda: [document_vector(c.embed_text, average) for c in chunks]
            )
            points = [
                ChunkPoint(
                    id=chunk_point_id(document_id, chunk.index, version),
                    dense=vector,
                    sparse_indices=indices,
                    sparse_values=values,
                    payload=payload_base
                    | {
                        "chunk_index": chunk.index,
                        "text": chunk.text,
                        "page": chunk.page,
                        "section": chunk.section,
                        "heading_path": list(chunk.path),
                        "start": chunk.start,
                        "end": chunk.end,
                    },
                )
                for chunk, vector, (indices, values) in zip(chunks, dense, sparse, strict=True)
            ]
            # Shielded: a cancel arriving mid-write waits for it, so the caller's delete that
            # follows the cancel removes every vector written.
            await asyncio.shield(
                self._write_points(index, user_id, document_id, points, indexed_before)
            )
        except IngestError as error:
            return await self._finish(document_id, failed=(error.code, error.reason))
        except ServiceUnavailable as error:
            return await self._finish(
                document_id,
                failed=(error.code, f"{error.detail} Reindex the document once it is back."),
            )
        except Exception as error:
            log.exception("kb_ingest_failed", document_id=str(document_id))
            return await self._finish(
                document_id,
                failed=(
                    "ingest_error",
                    f"Ingestion failed unexpectedly ({type(error).__name__}); reindex to retry, "
                    "and report it if it fails again.",
                ),
            )
        return await self._finish(
            document_id,
            user_id=user_id,
            chunk_count=len(points),
            page_count=parsed.page_count,
            index_name=index.name,
            title=new_title,
        )

    @staticmethod
    async def _write_points(
        index: VectorIndex,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        points: list[ChunkPoint],
        indexed_before: bool,
    ) -> None:
        # The previous chunks stay searchable until the new ones are in; then the ones not
        # overwritten (an older version, or a reindex that yields fewer chunks) go.
        previous = await index.point_ids(str(user_id), str(document_id)) if indexed_before else []
        await index.upsert(points)
        written = {point.id for point in points}
        await index.delete_points([p for p in previous if p not in written])

    def parse_limits(self) -> ParseLimits:
        """The limits every document's parse runs under (from MAI_KB_* settings)."""
        return ParseLimits(
            max_memory_mb=self.settings.kb_parse_max_memory_mb,
            timeout_seconds=self.settings.kb_parse_timeout_seconds,
            max_text_chars=self.settings.kb_max_text_chars,
            max_unpacked_bytes=self.settings.kb_max_unpacked_mb * 1024 * 1024,
        )

    def chunking_spec(self) -> ChunkingSpec:
        """How the parse child chunks: the model's tokenizer, window and the configured sizes."""
        settings = self.settings
        size = chunk_size(
            settings.kb_chunk_tokens,
            settings.embedding_model_path,
            settings.embedding_model,
            settings.embedding_max_tokens,
        )
        overlap = settings.kb_chunk_overlap
        if settings.kb_chunk_tokens is None:
            # The size follows the model, so the configured overlap may not fit in it.
            overlap = min(overlap, size // 4)
        return ChunkingSpec(
            model_path=settings.embedding_model_path,
            max_tokens=size,
            overlap=overlap,
            min_tokens=settings.kb_min_chunk_tokens,
        )

    async def _finish(
        self,
        document_id: uuid.UUID,
        *,
        failed: tuple[str, str] | None = None,
        user_id: uuid.UUID | None = None,
        chunk_count: int = 0,
        page_count: int | None = None,
        index_name: str | None = None,
        title: str | None = None,
    ) -> KBDocument | None:
        async with self.sessionmaker() as session:
            document = await KBDocumentRepository(session).get(document_id)
            if document is None:
                # Deleted while it was processed: leave no vectors behind.
                if failed is None and user_id is not None:
                    index = await self.index()
                    await index.delete_document(str(user_id), str(document_id))
                return None
            if failed is not None:
                document.status = DocumentStatus.failed.value
                document.error_code, document.error = failed
                # chunk_count stays: the chunks of the last good version are still searchable.
                log.info("kb_document_failed", document_id=str(document_id), code=failed[0])
                metrics.record_ingestion_job("failed")
            else:
                document.status = DocumentStatus.ready.value
                document.error_code = document.error = None
                document.chunk_count = chunk_count
                document.page_count = page_count
                document.index_name = index_name
                if title:
                    document.title = title
                log.info("kb_document_ready", document_id=str(document_id), chunks=chunk_count)
                metrics.record_ingestion_job("succeeded")
                metrics.record_chunks_indexed(chunk_count)
            document.processed_at = self.clock.now()
            await session.commit()
            return document

    # --- documents -------------------------------------------------------------------------

    async def get(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        is_admin: bool = False,
    ) -> KBDocument:
        """A document the user may open: their own, or one of a shared collection they may read.

        404 otherwise, the same as for an id that does not exist, so another user's private
        documents cannot be discovered.
        """
        document = await KBDocumentRepository(session).get_readable(document_id, user_id, is_admin)
        if document is None:
            raise self._not_found(document_id)
        return document

    async def get_writable(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        is_admin: bool = False,
    ) -> KBDocument:
        """A document the user may change or delete: their own, or one of a collection they may
        write to (any collection for an admin), whoever uploaded it.

        404 when they may not even open it; 403 `collection_read_only` when they may only read.
        """
        documents = KBDocumentRepository(session)
        document = await documents.get_writable(document_id, user_id, is_admin)
        if document is not None:
            return document
        readable = await documents.get_readable(document_id, user_id, is_admin)
        if readable is None:
            raise self._not_found(document_id)
        raise Forbidden(
            f"You may read the collection {readable.collection!r} but not change its documents; "
            "ask an admin for write permission.",
            code="collection_read_only",
            meta={"collection_id": str(readable.collection_id)},
        )

    @staticmethod
    def _not_found(document_id: uuid.UUID) -> NotFound:
        return NotFound(f"No document with id {document_id}.", code="document_not_found")

    async def list_documents(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        *,
        status: DocumentStatus | None,
        tag: str | None,
        collection: str | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[KBDocument], int]:
        """A page of the user's documents."""
        return await KBDocumentRepository(session).page(
            user_id,
            status=status.value if status is not None else None,
            tag=tag.strip().lower() if tag else None,
            collection=collection,
            limit=limit,
            offset=offset,
        )

    async def chunks(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        limit: int,
        offset: int,
        is_admin: bool = False,
    ) -> tuple[list[DocumentChunk], int]:
        """A page of the chunks of a document the user may open, in reading order, and their
        count.

        Only the current version's chunks: while a new version is indexed the old one's are
        still in the index, answering searches, but they are not what the document now says.
        """
        document = await self.get(session, user_id, document_id, is_admin=is_admin)
        if document.index_name is None:
            return [], 0
        index = await self.index()
        # Chunks are stored under the uploader, who may be someone else in a shared collection.
        payloads = [
            p
            for p in await index.payloads(str(document.user_id), str(document_id))
            if int(p.get("version", 1)) == document.version
        ]
        payloads.sort(key=lambda p: int(p.get("chunk_index", 0)))
        chunks = [
            DocumentChunk(
                index=int(p.get("chunk_index", 0)),
                text=str(p.get("text", "")),
                page=p.get("page"),
                section=p.get("section"),
                heading_path=[str(part) for part in p.get("heading_path") or []],
                start=int(p.get("start", 0)),
                end=int(p.get("end", 0)),
            )
            for p in payloads[offset : offset + limit]
        ]
        return chunks, len(payloads)

    async def delete(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        is_admin: bool = False,
    ) -> None:
        """Delete a document the user may change: its vectors first (503 if Qdrant is down),
        then file and rows."""
        document = await self.get_writable(session, user_id, document_id, is_admin=is_admin)
        owner = document.user_id
        index = await self.index()
        await self.cancel_ingestion(document_id)
        await index.delete_document(str(owner), str(document_id))
        await KBDocumentRepository(session).delete(document)
        await session.commit()
        # A rescan may have queued it again between the cancel and the commit; with its row
        # gone it can no longer be claimed, and this drops it from the queue as well.
        await self.cancel_ingestion(document_id)
        await asyncio.to_thread(self.file_path(owner, document_id).unlink, missing_ok=True)
        log.info("kb_document_deleted", document_id=str(document_id))

    async def reindex(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        document_id: uuid.UUID,
        *,
        is_admin: bool = False,
    ) -> KBDocument:
        """Parse and index a document the user may change again (after a failure, or a
        chunking/model change)."""
        document = await self.get_writable(session, user_id, document_id, is_admin=is_admin)
        if document.status in (DocumentStatus.queued.value, DocumentStatus.processing.value):
            raise Conflict(
                f"The document is already {document.status}; wait for it to finish.",
                code="document_busy",
                meta={"status": document.status},
            )
        await self.index()
        document.status = DocumentStatus.queued.value
        document.error = document.error_code = None
        await session.commit()
        metrics.record_ingestion_job("queued")
        self.enqueue(document.id, document.user_id)
        return document

    async def purge_user(self, user_id: uuid.UUID) -> None:
        """Remove a deleted user's vectors and stored files (their rows cascade in SQL).

        Best effort: with Qdrant down the vectors stay, unreachable since every search filters
        by the owner, and a warning says so.
        """
        try:
            index = await self.index()
            await index.delete_user(str(user_id))
        except ServiceUnavailable as error:
            log.warning("kb_purge_incomplete", user_id=str(user_id), reason=error.detail)
        await asyncio.to_thread(
            shutil.rmtree, self.settings.kb_files_dir / str(user_id), ignore_errors=True
        )

    # --- search ----------------------------------------------------------------------------

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        filters: SearchFilters | None = None,
        rerank: bool | None = None,
    ) -> list[SearchResult]:
        """The user's best-matching chunks for a query.

        Dense hits under MAI_KB_MIN_SCORE are dropped in the vector query. With `rerank` (by
        default: MAI_KB_RERANK=llm) the top MAI_KB_RERANK_CANDIDATES are reordered by the
        reranker before the best `top_k` are kept.
        """
        started = time.perf_counter()
        reranker = self.reranker
        if rerank is None:
            rerank = self.settings.kb_rerank == "llm"
        if not rerank:
            reranker = None
        limit = max(top_k, self.settings.kb_rerank_candidates) if reranker else top_k
        try:
            index = await self.index()
            dense = (await self.embedder.embed([query]))[0] if mode != "sparse" else None
            sparse = query_vector(query) if mode != "dense" else None
            hits = await index.search(
                user_id=user_id,
                mode=mode,
                limit=limit,
                dense=dense,
                sparse=sparse,
                filters=filters,
                min_score=self.settings.kb_min_score,
            )
        finally:
            metrics.observe_kb_search(time.perf_counter() - started)
        if reranker is not None:
            hits = await reranker.rerank(
                query, hits, [str(hit.payload.get("text", "")) for hit in hits]
            )
        return [
            SearchResult(
                chunk_id=hit.id,
                document_id=str(hit.payload.get("document_id", "")),
                title=str(hit.payload.get("title", "")),
                page=hit.payload.get("page"),
                section=hit.payload.get("section"),
                text=str(hit.payload.get("text", "")),
                score=hit.score,
                start=int(hit.payload.get("start", 0)),
                end=int(hit.payload.get("end", 0)),
                chunk_index=int(hit.payload.get("chunk_index", 0)),
                tags=list(hit.payload.get("tags") or []),
                collection=hit.payload.get("collection"),
                collection_id=hit.payload.get("collection_id"),
                heading_path=[str(part) for part in hit.payload.get("heading_path") or []],
            )
            for hit in hits[:top_k]
        ]


async def open_knowledge_base(
    resources: Resources, embedder: Embedder | None = None, *, worker: bool = True
) -> KnowledgeBase:
    """Start the knowledge base of an app instance; it stops with the instance's resources.

    Raises IndexMismatch when the Qdrant collection was built for another vector size.
    """
    knowledge_base = KnowledgeBase(
        resources.settings,
        resources.sessionmaker,
        resources.clock,
        resources.qdrant,
        embedder or create_embedder(resources.settings),
    )
    await knowledge_base.start(worker=worker)
    resources.exit_stack.push_async_callback(knowledge_base.stop)
    return knowledge_base
