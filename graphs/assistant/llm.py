"""The chat model for a run: the injected one, or a ChatOpenAI built from the context."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from graphs.assistant.context import Context

# openai and langchain_openai are imported where a model is called, not at start: they are a
# large share of every start's import time and no start needs them.
if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

_first_models: dict[str, str] = {}


async def first_model(base_url: str, api_key: str | None, *, timeout: float = 10.0) -> str:
    """The first model listed by GET {base_url}/models (remembered per URL).

    Failures surface as the openai exceptions (APIConnectionError, APITimeoutError,
    APIStatusError) that the service maps to 503 llm_unavailable.
    """
    if base_url in _first_models:
        return _first_models[base_url]
    import openai

    async with openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1
    ) as client:
        raw = await client.models.with_raw_response.list()
        models = [model.id for model in raw.parse().data]
    if not models:
        raise openai.APIStatusError(
            f"the LLM server at {base_url} lists no models; set MAI_LLM_MODEL",
            response=raw.http_response,
            body=None,
        )
    _first_models[base_url] = models[0]
    return models[0]


@lru_cache(maxsize=16)
def _openai_model(
    base_url: str, model: str, api_key: str | None, timeout: float, max_retries: int
) -> ChatOpenAI:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=SecretStr(api_key or "not-needed"),
        stream_usage=True,
        timeout=timeout,
        max_retries=max_retries,
    )


async def chat_model(context: Context) -> BaseChatModel:
    """The model for this run: `context.llm`, else a ChatOpenAI for `context.llm_base_url`;
    with the client's end-user id (`llm_params["user"]`) on every call when there is one."""
    if context.llm is not None:
        return for_end_user(context.llm, context.llm_params.get("user"))
    model = context.model or await first_model(context.llm_base_url, context.llm_api_key)
    llm = _openai_model(
        context.llm_base_url,
        model,
        context.llm_api_key,
        context.llm_timeout_seconds,
        context.llm_max_retries,
    )
    return for_end_user(llm, context.llm_params.get("user"))


def for_end_user(llm: BaseChatModel, user: object) -> BaseChatModel:
    """The model sending OpenAI's `user` field (the id a client gives its own end user, for
    the provider's abuse monitoring and attribution) with each request, where the model class
    takes extra request fields (ChatOpenAI's `model_kwargs`); the model unchanged otherwise."""
    if not user or "model_kwargs" not in type(llm).model_fields:
        return llm
    extra = dict(getattr(llm, "model_kwargs", None) or {})
    return llm.model_copy(update={"model_kwargs": {**extra, "user": str(user)}})


# The sampling settings a run may set on its answering call, by chat model field name.
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "stop")


def with_sampling(llm: BaseChatModel, params: dict[str, Any]) -> BaseChatModel:
    """The model with the run's sampling settings (those the model class has as fields)."""
    fields = type(llm).model_fields
    update = {k: v for k, v in params.items() if k in SAMPLING_FIELDS and k in fields}
    return llm.model_copy(update=update) if update else llm
