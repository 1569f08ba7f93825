"""Embedding providers: fastembed in-process (default) and any OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.services.kb.chunking import TokenCounter, token_counter_for, truncate_tokens


class EmbeddingUnavailable(ServiceUnavailable):
    """The embedding model cannot be loaded or its server does not answer."""

    code = "embeddings_unavailable"


class Embedder(Protocol):
    """Turns texts into dense vectors of one fixed dimension."""

    @property
    def model_name(self) -> str:
        """The model's name; the Qdrant collection is named after it."""

    async def dimension(self) -> int:
        """The vector size."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""


def _has_files(folder: Path) -> bool:
    """Whether a folder exists and holds anything."""
    return folder.is_dir() and any(folder.iterdir())


class FastEmbedEmbedder:
    """A fastembed ONNX model run in worker threads, loaded on first use from a local folder."""

    def __init__(
        self,
        model_name: str,
        *,
        model_path: Path | None,
        cache_dir: Path,
        batch_size: int,
        max_tokens: int,
        counter: TokenCounter,
    ) -> None:
        self._model_name = model_name
        self.model_path = model_path
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.counter = counter
        self._model: Any = None
        self._lock = threading.Lock()
        self._dimension: int | None = None

    @property
    def model_name(self) -> str:
        """The fastembed model name."""
        return self._model_name

    def _declared_dimension(self) -> int | None:
        from fastembed import TextEmbedding

        for description in TextEmbedding.list_supported_models():
            if description.get("model", "").lower() == self._model_name.lower():
                return int(description["dim"])
        return None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if self.model_path is not None and not self.model_path.is_dir():
                    raise EmbeddingUnavailable(
                        f"The embedding model folder {self.model_path} does not exist; "
                        "fix MAI_EMBEDDING_MODEL_PATH.",
                    )
                if self.model_path is None and not _has_files(self.cache_dir):
                    # Nothing to load offline: say so without importing fastembed and
                    # onnxruntime (most of a second), which could only fail the same way.
                    raise EmbeddingUnavailable(
                        f"The embedding model {self._model_name} cannot be loaded (no "
                        f"MAI_EMBEDDING_MODEL_PATH, and not in {self.cache_dir}). Set "
                        "MAI_EMBEDDING_MODEL_PATH to a local model folder, or "
                        "MAI_EMBEDDING_PROVIDER=openai with MAI_EMBEDDING_BASE_URL.",
                    )
                from fastembed import TextEmbedding

                # Never download at request time: offline, fastembed would retry for a minute
                # before failing. The model comes from MAI_EMBEDDING_MODEL_PATH or from files
                # already in the cache folder.
                kwargs: dict[str, Any] = {
                    "cache_dir": str(self.cache_dir),
                    "local_files_only": True,
                }
                if self.model_path is not None:
                    kwargs["specific_model_path"] = str(self.model_path)
                try:
                    self._model = TextEmbedding(model_name=self._model_name, **kwargs)
                except Exception as error:  # fastembed raises ValueError/OSError/HF errors
                    where = (
                        f"from {self.model_path}"
                        if self.model_path is not None
                        else f"(no MAI_EMBEDDING_MODEL_PATH, and not in {self.cache_dir})"
                    )
                    raise EmbeddingUnavailable(
                        f"The embedding model {self._model_name} cannot be loaded {where}: "
                        f"{str(error)[:200].rstrip('.')}. Set MAI_EMBEDDING_MODEL_PATH to a "
                        "local model folder, or MAI_EMBEDDING_PROVIDER=openai with "
                        "MAI_EMBEDDING_BASE_URL.",
                    ) from None
            return self._model

    def _embed_sync(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        clipped = [truncate_tokens(self.counter, text, self.max_tokens) for text in texts]
        return [
            [float(x) for x in vector]
            for vector in model.embed(clipped, batch_size=self.batch_size)
        ]

    async def dimension(self) -> int:
        """The model's vector size; EmbeddingUnavailable at once when it cannot be loaded."""
        # Loading here (at start, or at the first knowledge-base call) makes every endpoint
        # answer 503 straight away when the model is missing, instead of queueing documents
        # that can never be embedded.
        await asyncio.to_thread(self._load)
        if self._dimension is None:
            self._dimension = self._declared_dimension()
        if self._dimension is None:
            self._dimension = len((await self.embed(["dimension probe"]))[0])
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed off the event loop; over-long texts are cut to MAI_EMBEDDING_MAX_TOKENS."""
        if not texts:
            return []
        return await asyncio.to_thread(self._embed_sync, list(texts))


class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings server (LM Studio, Ollama, vLLM, OpenAI)."""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str,
        api_key: str | None,
        batch_size: int,
        max_tokens: int,
        counter: TokenCounter,
        dimensions: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        self._model_name = model_name
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.counter = counter
        self._dimension = dimensions
        self._client = OpenAIEmbeddings(
            model=model_name,
            openai_api_base=base_url,
            openai_api_key=SecretStr(api_key or "not-needed"),
            check_embedding_ctx_length=False,
            chunk_size=batch_size,
            request_timeout=timeout,
            max_retries=2,
        )

    @property
    def model_name(self) -> str:
        """The model name sent to the server."""
        return self._model_name

    async def dimension(self) -> int:
        """MAI_EMBEDDING_DIMENSIONS, or the size of a probe vector."""
        if self._dimension is None:
            self._dimension = len((await self.embed(["dimension probe"]))[0])
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed in batches; over-long texts are cut to MAI_EMBEDDING_MAX_TOKENS first."""
        import openai

        if not texts:
            return []
        clipped = [truncate_tokens(self.counter, text, self.max_tokens) for text in texts]
        try:
            return await self._client.aembed_documents(clipped)
        except (openai.APIConnectionError, openai.APITimeoutError) as error:
            raise EmbeddingUnavailable(
                f"The embeddings server at {self.base_url} is not answering ({error}); "
                "start it or fix MAI_EMBEDDING_BASE_URL.",
            ) from None
        except openai.APIStatusError as error:
            raise EmbeddingUnavailable(
                f"The embeddings server at {self.base_url} refused the request "
                f"(HTTP {error.status_code}); check MAI_EMBEDDING_MODEL.",
            ) from None


def create_embedder(settings: Settings) -> Embedder:
    """The embedder the settings select."""
    counter = token_counter_for(settings.embedding_model_path)
    if settings.embedding_provider == "openai":
        api_key = settings.embedding_api_key or settings.llm_api_key
        return OpenAIEmbedder(
            settings.embedding_model,
            base_url=settings.effective_embedding_base_url,
            api_key=api_key.get_secret_value() if api_key else None,
            batch_size=settings.embedding_batch_size,
            max_tokens=settings.embedding_max_tokens,
            counter=counter,
            dimensions=settings.embedding_dimensions,
        )
    return FastEmbedEmbedder(
        settings.embedding_model,
        model_path=settings.embedding_model_path,
        cache_dir=settings.data_dir / "fastembed",
        batch_size=settings.embedding_batch_size,
        max_tokens=settings.embedding_max_tokens,
        counter=counter,
    )
