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


async def test_the_end_user_goes_with_every_request(http_server: LocalServer) -> None:
    http_server.json(
        "POST",
        "/v1/chat/completions",
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )
    base = f"{http_server.url}/v1"
    attributed = await chat_model(
        Context(llm_base_url=base, model="m", llm_params={"user": "end-user-7", "top_p": 0.5})
    )
    assert (await attributed.ainvoke("hi")).content == "Hello."
    assert http_server.requests[-1].json()["user"] == "end-user-7"
    # Only `user`: sampling settings are for the answering call alone (with_sampling).
    assert "top_p" not in http_server.requests[-1].json()
    # The shared model is left as it was: a run without `user` sends none.
    plain = await chat_model(Context(llm_base_url=base, model="m"))
    await plain.ainvoke("hi")
    assert "user" not in http_server.requests[-1].json()
    # A model without extra request fields (the scripted fake) is used as it is.
    fake = scripted("hi")
    assert await chat_model(Context(llm=fake, llm_params={"user": "end-user-7"})) is fake
