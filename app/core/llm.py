"""LLM access: one shared chat model per process, and LLM failures mapped to 503."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.errors import ServiceUnavailable

# openai and langchain_openai are imported where a model is called, not at start: they are a
# large share of every start's import time and no start needs them.
if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The chat model a turn uses and the model name it reports."""

    chat_model: BaseChatModel
    name: str


def llm_unavailable(base_url: str, reason: str) -> ServiceUnavailable:
    """The one error for an LLM that cannot be reached or fails: 503 naming the URL tried."""
    return ServiceUnavailable(
        f"The LLM server at {base_url} could not answer ({reason}). "
        "Check that it is running and MAI_LLM_BASE_URL points at it, then retry.",
        code="llm_unavailable",
        meta={"llm_base_url": base_url},
    )


def map_llm_error(error: BaseException, base_url: str) -> ServiceUnavailable | None:
    """The 503 for an OpenAI-client or HTTP failure anywhere in the cause chain, else None."""
    import openai

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ServiceUnavailable) and current.code == "llm_unavailable":
            return current
        if isinstance(current, openai.APITimeoutError):
            return llm_unavailable(base_url, "timed out")
        if isinstance(current, openai.APIConnectionError):
            return llm_unavailable(base_url, "connection failed")
        if isinstance(current, openai.APIStatusError):
            message = str(current.message)[:200]
            return llm_unavailable(base_url, f"HTTP {current.status_code}: {message}")
        if isinstance(current, httpx.TransportError):
            return llm_unavailable(base_url, f"{type(current).__name__}")
        if isinstance(current, openai.APIError):
            # Reported by the server inside a 200 stream, e.g. llama.cpp failing to parse the
            # model's tool call: the server could not answer, not a fault of this service.
            return llm_unavailable(base_url, f"the server reported: {str(current.message)[:200]}")
        current = current.__cause__ or current.__context__
    return None


async def list_models(http: httpx.AsyncClient, settings: Settings) -> list[str]:
    """The model ids the configured OpenAI-compatible server offers (GET /models)."""
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    response = await http.get(
        f"{settings.llm_base_url}/models",
        headers=headers,
        timeout=min(settings.llm_timeout_seconds, 10.0),
    )
    response.raise_for_status()
    payload = response.json()
    return [str(item["id"]) for item in payload.get("data", []) if "id" in item]


def build_chat_model(settings: Settings, model: str) -> ChatOpenAI:
    """A ChatOpenAI for the configured server: usage in streams, timeout, transient retries."""
    from langchain_openai import ChatOpenAI

    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    return ChatOpenAI(
        model=model,
        base_url=settings.llm_base_url,
        api_key=api_key,
        stream_usage=True,
        # A server that does not accept connections fails fast; a slow answer gets the full time.
        timeout=httpx.Timeout(
            settings.llm_timeout_seconds, connect=min(10.0, settings.llm_timeout_seconds)
        ),
        max_retries=settings.llm_max_retries,
    )


class ChatModelProvider:
    """The shared chat model: injected (tests), or a ChatOpenAI whose model is resolved once.

    With MAI_LLM_MODEL unset, the first model listed by `GET /models` is used; it is looked up
    at the first turn (not at start, so MAI starts while the LLM server is still down) and cached.
    """

    def __init__(
        self, settings: Settings, http: httpx.AsyncClient, chat_model: BaseChatModel | None = None
    ) -> None:
        self.settings = settings
        self.http = http
        self._lock = asyncio.Lock()
        self._resolved: ResolvedModel | None = None
        if chat_model is not None:
            name = getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None)
            self._resolved = ResolvedModel(chat_model, str(name or type(chat_model).__name__))

    @property
    def base_url(self) -> str:
        """The LLM server URL, for error messages."""
        return self.settings.llm_base_url

    async def model(self) -> BaseChatModel:
        """The chat model itself (503 if it cannot be resolved)."""
        return (await self.get()).chat_model

    async def get(self) -> ResolvedModel:
        """The chat model to use, resolving the model name on first use (503 if unreachable)."""
        if self._resolved is not None:
            return self._resolved
        if self.settings.llm_model:
            # Built at the first turn, like the looked-up model, so starting loads no client.
            self._resolved = ResolvedModel(
                build_chat_model(self.settings, self.settings.llm_model), self.settings.llm_model
            )
            return self._resolved
        async with self._lock:
            if self._resolved is None:
                try:
                    models = await list_models(self.http, self.settings)
                except httpx.HTTPStatusError as error:
                    raise llm_unavailable(
                        self.base_url, f"GET /models answered HTTP {error.response.status_code}"
                    ) from error
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                    raise llm_unavailable(
                        self.base_url, f"GET /models failed: {type(error).__name__}"
                    ) from error
                if not models:
                    raise llm_unavailable(
                        self.base_url, "GET /models lists no model; load one or set MAI_LLM_MODEL"
                    )
                self._resolved = ResolvedModel(
                    build_chat_model(self.settings, models[0]), models[0]
                )
            return self._resolved
