"""The model used when none is injected: a ChatOpenAI for the context's base URL."""

from __future__ import annotations

import openai
import pytest
from langchain_openai import ChatOpenAI

from graphs.assistant import Context
from graphs.assistant.llm import chat_model, first_model
from tests.fake_llm import scripted
from tests.graphs.http_server import LocalServer


async def test_injected_model_wins() -> None:
    llm = scripted("hi")
    assert await chat_model(Context(llm=llm)) is llm


async def test_first_listed_model_is_used_when_none_is_named(http_server: LocalServer) -> None:
    http_server.json(
        "GET",
        "/v1/models",
        {
            "object": "list",
            "data": [{"id": "qwen-small", "object": "model", "created": 0, "owned_by": "me"}],
        },
    )
    base = f"{http_server.url}/v1"
    model = await chat_model(Context(llm_base_url=base, model="", llm_api_key="k"))
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "qwen-small"
    assert model.stream_usage is True
    assert http_server.requests[0].headers["authorization"] == "Bearer k"
    # Remembered per URL: no second lookup.
    assert await first_model(base, "k") == "qwen-small"
    assert len(http_server.requests) == 1
    named = await chat_model(Context(llm_base_url=base, model="other"))
    assert isinstance(named, ChatOpenAI)
    assert named.model_name == "other"


async def test_a_server_listing_no_models_is_an_api_status_error(
    http_server: LocalServer,
) -> None:
    http_server.json("GET", "/v1/models", {"object": "list", "data": []})
    with pytest.raises(openai.APIStatusError, match="lists no models; set MAI_LLM_MODEL"):
        await first_model(f"{http_server.url}/v1", None)
