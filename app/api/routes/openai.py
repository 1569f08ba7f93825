"""The OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`): MAI's agents as models for
Open WebUI, LibreChat and every OpenAI SDK. Each completion is a run on the run engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import KeyOrTokenBudgetCheck, KeyOrTokenUser, ResourcesDep, SessionDep
from app.api.errors import openai_error_body
from app.api.schemas.openai import ChatCompletionIn, ModelListOut, ModelOut
from app.api.sse import encode
from app.core.errors import BadRequest, MAIError, PayloadTooLarge
from app.core.logging import get_logger
from app.services.openai_chat import ChatMessage, ChatRequest, OpenAIChatService, text_of

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"])

SESSION_HEADER = "X-Session-ID"


def get_openai_service(resources: ResourcesDep) -> OpenAIChatService:
    """Model and completion use cases."""
    return OpenAIChatService(resources)


OpenAIServiceDep = Annotated[OpenAIChatService, Depends(get_openai_service)]


async def _limit_body(request: Request, resources: ResourcesDep) -> None:
    """413 for a body over MAI_OPENAI_MAX_BODY_BYTES, before it is parsed."""
    limit = resources.settings.openai_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        too_large = True
    else:
        too_large = len(await request.body()) > limit
    if too_large:
        raise PayloadTooLarge(
            f"The request body is over {limit} bytes (MAI_OPENAI_MAX_BODY_BYTES).",
            meta={"param": "messages"},
        )


async def _release_connection(session: SessionDep, _: KeyOrTokenUser) -> None:
    """Give the request's database connection back once the caller is authenticated (a
    completion lasts as long as the model takes; it writes through short sessions)."""
    await session.close()


@router.get("/models", dependencies=[Depends(_release_connection)])
async def list_models(openai: OpenAIServiceDep) -> ModelListOut:
    """The agents the caller can use, as models."""
    return ModelListOut(data=[ModelOut.model_validate(m) for m in openai.models()])


@router.get("/models/{model_id}", dependencies=[Depends(_release_connection)])
async def read_model(model_id: str, openai: OpenAIServiceDep) -> ModelOut:
    """One model (404 `model_not_found`)."""
    return ModelOut.model_validate(openai.model(openai.graph_for(model_id)))


def _refuse_client_tools(body: ChatCompletionIn) -> None:
    if body.tools or body.functions:
        name = "tools" if body.tools else "functions"
        raise BadRequest(
            f"`{name}` is not supported: this endpoint serves MAI's agents, which run their own "
            "tools on the server. Send the conversation without tools.",
            code="tools_not_supported",
            meta={"param": name},
        )
    for name, choice in (("tool_choice", body.tool_choice), ("function_call", body.function_call)):
        if choice not in (None, "none", "auto"):
            raise BadRequest(
                f"`{name}` is not supported: MAI's agents choose their own tools.",
                code="tools_not_supported",
                meta={"param": name},
            )
    if body.n not in (None, 1):
        raise BadRequest(
            "Only n=1 is supported: an agent run gives one answer.",
            code="unsupported_n",
            meta={"param": "n"},
        )
    if body.response_format and body.response_format.get("type") not in (None, "text"):
        raise BadRequest(
            'Only response_format {"type": "text"} is supported by the agents.',
            code="unsupported_response_format",
            meta={"param": "response_format"},
        )


def _llm_params(body: ChatCompletionIn) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if body.temperature is not None:
        params["temperature"] = body.temperature
    if body.top_p is not None:
        params["top_p"] = body.top_p
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if body.stop:
        params["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    if body.user:
        params["user"] = body.user
    return params


def _session_of(body: ChatCompletionIn, header: str | None) -> str | None:
    if header is not None and header.strip():
        return header.strip()[:200]
    conversation = (body.metadata or {}).get("conversation_id")
    if conversation is not None and str(conversation).strip():
        return str(conversation).strip()[:200]
    return None


@router.post(
    "/chat/completions",
    dependencies=[Depends(_limit_body), KeyOrTokenBudgetCheck, Depends(_release_connection)],
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}, "description": "chunks when streamed"}},
)
async def chat_completions(
    body: ChatCompletionIn,
    request: Request,
    user: KeyOrTokenUser,
    openai: OpenAIServiceDep,
    resources: ResourcesDep,
    session_header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None,
) -> Response:
    """Run the chosen agent on the conversation and answer as OpenAI would, streamed or not.

    With `X-Session-ID` (or `metadata.conversation_id`) the turn continues that MAI
    conversation and only the last user message is new; without it the messages are the
    whole conversation, run on a temporary thread deleted after the answer. `user` goes
    with the run (its metadata, the model calls, the usage event). The answer ends with its
    sources; a run that pauses for approval says what awaits approval and where to decide.
    The `mai` field carries run, conversation, tool calls, citations and approvals;
    `X-Session-ID` is echoed.
    """
    _refuse_client_tools(body)
    chat = ChatRequest(
        model=body.model,
        graph_id=openai.graph_for(body.model),
        messages=[
            ChatMessage(role=m.role, content=text_of(m.content, i))
            for i, m in enumerate(body.messages)
        ],
        session_id=_session_of(body, session_header),
        streamed=body.stream,
        llm_params=_llm_params(body),
        end_user=body.user or None,
    )
    run = await openai.start(user.id, chat)
    headers = {"X-MAI-Run-ID": str(run.id), "X-MAI-Conversation-ID": str(run.conversation_id)}
    if chat.session_id is not None:
        headers[SESSION_HEADER] = chat.session_id
    base_url = str(request.base_url)
    if not body.stream:
        completion = await openai.completion(run, chat, base_url)
        return JSONResponse(completion, headers=headers)
    events = await openai.opened(run, chat)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def relay() -> AsyncIterator[ServerSentEvent]:
        try:
            async for item in openai.chunks(run, chat, events, base_url, include_usage):
                yield ServerSentEvent(data=encode(item))
        except MAIError as error:
            # Headers are gone: the error goes in the stream, where OpenAI's SDKs raise it.
            yield ServerSentEvent(
                data=encode(openai_error_body(error.status_code, error.code, error.detail))
            )
            return
        yield ServerSentEvent(data="[DONE]")

    return EventSourceResponse(
        relay(),
        ping=resources.settings.agent_stream_heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
    )
