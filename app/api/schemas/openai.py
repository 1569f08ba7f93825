"""Request shapes of the OpenAI-compatible API (`/v1`), as OpenAI's SDKs send them.

Fields MAI does not use are accepted and ignored (front ends send many), except the ones that
would change what the client gets: `tools`, `functions`, `n` and the like are refused by the
route with a 400 naming them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessageIn(BaseModel):
    """One message: text, or a list of content parts."""

    model_config = ConfigDict(extra="allow")

    role: Annotated[str, Field(min_length=1, max_length=50)]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptionsIn(BaseModel):
    """Streaming options."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionIn(BaseModel):
    """A chat completion request."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessageIn], Field(max_length=1000)]
    stream: bool = False
    stream_options: StreamOptionsIn | None = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    user: Annotated[str | None, Field(max_length=256)] = None
    n: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    metadata: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


class ModelOut(BaseModel):
    """One model: an agent this server runs."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelListOut(BaseModel):
    """The models the caller can use."""

    object: Literal["list"] = "list"
    data: list[ModelOut]
