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

from qdrant_client import AsyncQdrantClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from app.core.filemodes import write_private_file
from app.core.logging import get_logger
from app.core.resources import Resources
from app.models import DocumentStatus, KBDocument
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
from app.services.kb.chunking import Chunker, token_counter_for
from app.services.kb.embeddings import Embedder, create_embedder
from app.services.kb.errors import IngestError
from app.services.kb.parsing import detect_kind, parse
from app.services.kb.sparse import document_vector, query_vector

log = get_logger(__name__)

MAX_TAGS = 20
# Documents queued by another process (a second worker, `mai ingest`) are found by this rescan.
RESCAN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as received, with the user's optional metadata."""

    filename: str
    data: bytes
    title: str | None = None
    tags: Sequence[str] = ()
    collection: str | None = None


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
        qdrant: AsyncQdrantClient,
        embedder: Embedder,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.qdrant = qdrant
        self.embedder = embedder
        self.chunker = Chunker(
            token_counter_for(settings.embedding_model_path),
            settings.kb_chunk_tokens,
            settings.kb_chunk_overlap,
        )
        self._index: VectorIndex | None = None
        self._index_lock = asyncio.Lock()
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._queued: set[uuid.UUID] = set()
        self._worker: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def index(self) -> VectorIndex:
        """The Qdrant collection for the embedding model, created on first use."""
        async with self._index_lock:
            if self._index is None:
                dimension = await self.embedder.dimension()
                name = self.settings.kb_qdrant_collection or collection_name(
                    self.embedder.model_name, dimension
                )
                location = self.settings.qdrant_url or str(self.settings.qdrant_path)
                self._index = VectorIndex(self.qdrant, name, dimension, location=location)
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
        self._worker = asyncio.create_task(self._run_worker(), name="kb-ingest-worker")

    async def stop(self) -> None:
        """Stop the worker; a document it was processing is picked up again at the next start."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _enqueue_pending(self) -> None:
        async with self.sessionmaker() as session:
            pending = await KBDocumentRepository(session).queued_ids()
        for document_id in pending:
            self.enqueue(document_id)

    def enqueue(self, document_id: uuid.UUID) -> None:
        """Hand a document to the worker (once)."""
        if document_id not in self._queued:
            self._queued.add(document_id)
            self._queue.put_nowait(document_id)

    async def _run_worker(self) -> None:
        while True:
            try:
                document_id = await asyncio.wait_for(self._queue.get(), timeout=RESCAN_SECONDS)
            except TimeoutError:
                try:
                    await self._enqueue_pending()
                except Exception:
                    log.exception("kb_rescan_failed")
                continue
            try:
                await self.process(document_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kb_worker_error", document_id=str(document_id))
            finally:
                self._queued.discard(document_id)

    # --- ingestion -------------------------------------------------------------------------

    def file_path(self, user_id: uuid.UUID, document_id: uuid.UUID) -> Path:
        """Where the original file of a document is kept."""
        return self.settings.kb_files_dir / str(user_id) / str(document_id)

    async def upload(
        self, session: AsyncSession, user_id: uuid.UUID, upload: Upload, *, enqueue: bool = True
    ) -> KBDocument:
        """Check and store a file, record it as queued and hand it to the worker (if `enqueue`)."""
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
            status=DocumentStatus.queued.value,
            chunk_count=0,
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
            self.enqueue(document.id)
        return document

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
            user_id, kind = document.user_id, document.kind
            indexed_before = document.index_name is not None
            payload_base = {
                "user_id": str(document.user_id),
                "document_id": str(document.id),
                "title": document.title,
                "filename": document.filename,
                "tags": document.tags,
                "collection": document.collection,
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
            max_unpacked = self.settings.kb_max_unpacked_mb * 1024 * 1024
            parsed = await asyncio.to_thread(parse, data, kind, max_unpacked_bytes=max_unpacked)
            _, chunks = await asyncio.to_thread(self.chunker.split, parsed.blocks)
            if not chunks:
                raise IngestError("no_text", "No text could be extracted from this document.")
            index = await self.index()
            dense = await self.embedder.embed([chunk.text for chunk in chunks])
            sparse = await asyncio.to_thread(lambda: [document_vector(c.text) for c in chunks])
            points = [
                ChunkPoint(
                    id=chunk_point_id(document_id, chunk.index),
                    dense=vector,
                    sparse_indices=indices,
                    sparse_values=values,
                    payload=payload_base
                    | {
                        "chunk_index": chunk.index,
                        "text": chunk.text,
                        "page": chunk.page,
                        "section": chunk.section,
                        "start": chunk.start,
                        "end": chunk.end,
                    },
                )
                for chunk, vector, (indices, values) in zip(chunks, dense, sparse, strict=True)
            ]
            if indexed_before:
                # A reindex may yield fewer chunks than before: drop the old ones first.
                await index.delete_document(str(user_id), str(document_id))
            await index.upsert(points)
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
                document.chunk_count = 0
                log.info("kb_document_failed", document_id=str(document_id), code=failed[0])
                metrics.record_ingestion_job("failed")
            else:
                document.status = DocumentStatus.ready.value
                document.error_code = document.error = None
                document.chunk_count = chunk_count
                document.page_count = page_count
                document.index_name = index_name
                log.info("kb_document_ready", document_id=str(document_id), chunks=chunk_count)
                metrics.record_ingestion_job("succeeded")
                metrics.record_chunks_indexed(chunk_count)
            document.processed_at = self.clock.now()
            await session.commit()
            return document

    # --- documents -------------------------------------------------------------------------

    async def get(
        self, session: AsyncSession, user_id: uuid.UUID, document_id: uuid.UUID
    ) -> KBDocument:
        """One of the user's documents, or 404 (also for another user's document)."""
        document = await KBDocumentRepository(session).get_owned(user_id, document_id)
        if document is None:
            raise NotFound(f"No document with id {document_id}.", code="document_not_found")
        return document

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

    async def delete(
        self, session: AsyncSession, user_id: uuid.UUID, document_id: uuid.UUID
    ) -> None:
        """Delete a document: its vectors first (503 if Qdrant is down), then file and rows."""
        document = await self.get(session, user_id, document_id)
        index = await self.index()
        await index.delete_document(str(user_id), str(document_id))
        await KBDocumentRepository(session).delete(document)
        await session.commit()
        await asyncio.to_thread(self.file_path(user_id, document_id).unlink, missing_ok=True)
        if document_id in self._queued:
            # The worker may be embedding it right now; it finds the row gone and cleans up.
            log.info("kb_document_deleted_while_pending", document_id=str(document_id))
        log.info("kb_document_deleted", document_id=str(document_id))

    async def reindex(
        self, session: AsyncSession, user_id: uuid.UUID, document_id: uuid.UUID
    ) -> KBDocument:
        """Parse and index a document again (after a failure, or a chunking/model change)."""
        document = await self.get(session, user_id, document_id)
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
        self.enqueue(document.id)
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
    ) -> list[SearchResult]:
        """The user's best-matching chunks for a query."""
        started = time.perf_counter()
        try:
            index = await self.index()
            dense = (await self.embedder.embed([query]))[0] if mode != "sparse" else None
            sparse = query_vector(query) if mode != "dense" else None
            hits = await index.search(
                user_id=user_id, mode=mode, limit=top_k, dense=dense, sparse=sparse, filters=filters
            )
        finally:
            metrics.observe_kb_search(time.perf_counter() - started)
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
            )
            for hit in hits
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
