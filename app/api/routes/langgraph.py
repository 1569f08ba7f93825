"""The LangGraph Server API at the service root: what langgraph-sdk, Agent Chat UI and Studio
call. Every route but `/ok` and `/info` takes an API key (`X-Api-Key`) or a bearer token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import KeyOrTokenBudgetCheck, KeyOrTokenUser, ResourcesDep, SessionDep
from app.api.sse import encode, sse_response
from app.core.errors import Unprocessable
from app.core.resources import Resources
from app.core.run_events import END_EVENT, LoggedEvent, sse_id
from app.models import AgentRun
from app.services.agent import AgentService
from app.services.langgraph_api import LangGraphService


async def _release_connection(session: SessionDep, _: KeyOrTokenUser) -> None:
    """Give the request's database connection back once the caller is authenticated: runs
    and streams last as long as the model takes, and use short sessions of their own."""
    await session.close()


public_router = APIRouter(tags=["langgraph"])
router = APIRouter(tags=["langgraph"], dependencies=[Depends(_release_connection)])


def get_langgraph_service(resources: ResourcesDep, user: KeyOrTokenUser) -> LangGraphService:
    """LangGraph API use cases for the caller."""
    return LangGraphService(resources, user)


Service = Annotated[LangGraphService, Depends(get_langgraph_service)]


BudgetCheck = KeyOrTokenBudgetCheck


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


# Meta -------------------------------------------------------------------------------------


@public_router.get("/ok")
async def ok() -> dict[str, bool]:
    """Liveness, as LangGraph's server answers it."""
    return {"ok": True}


@public_router.get("/info")
async def info() -> dict[str, Any]:
    """The server's version and which LangGraph API features it has."""
    return {
        "version": _version("mai") or "0.0.0",
        "langgraph_py_version": _version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "self-hosted", "project_id": None, "tenant_id": None},
    }


# Assistants -------------------------------------------------------------------------------


class AssistantSearchIn(BaseModel):
    """Filters of `POST /assistants/search`."""

    model_config = ConfigDict(extra="ignore")

    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearchIn, service: Service) -> list[dict[str, Any]]:
    """Assistants by graph id, metadata and name: each graph's system assistant."""
    return service.search_assistants(
        graph_id=body.graph_id,
        metadata=body.metadata,
        name=body.name,
        limit=body.limit,
        offset=body.offset,
    )


@router.post("/assistants/count")
async def count_assistants(body: AssistantSearchIn, service: Service) -> int:
    """How many assistants match the filters."""
    return len(
        service.search_assistants(
            graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=10**6, offset=0
        )
    )


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, service: Service) -> dict[str, Any]:
    """An assistant by its id or its graph id."""
    return service.assistant(service.resolve_graph(assistant_id).graph_id)


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, service: Service, xray: Annotated[int | bool, Query()] = False
) -> dict[str, Any]:
    """The assistant's graph as drawable JSON (`xray` draws subgraphs)."""
    return service.drawable_graph(assistant_id, xray)


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, service: Service) -> dict[str, Any]:
    """The assistant's input, output, state and context JSON schemas."""
    return service.schemas(assistant_id)


# Threads ----------------------------------------------------------------------------------


class ThreadCreateIn(BaseModel):
    """Body of `POST /threads`."""

    model_config = ConfigDict(extra="ignore")

    thread_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatchIn(BaseModel):
    """Body of `PATCH /threads/{id}`."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearchIn(BaseModel):
    """Filters of `POST /threads/search`."""

    model_config = ConfigDict(extra="ignore")

    ids: list[uuid.UUID] | None = None
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class HistoryIn(BaseModel):
    """Body of `POST /threads/{id}/history`."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


@router.post("/threads")
async def create_thread(body: ThreadCreateIn, service: Service) -> dict[str, Any]:
    """A new, empty thread (409 when `thread_id` exists, unless `if_exists: do_nothing`)."""
    return await service.create_thread(body.thread_id, body.metadata, body.if_exists)


@router.post("/threads/search")
async def search_threads(body: ThreadSearchIn, service: Service) -> list[dict[str, Any]]:
    """Your threads matching metadata, values, status and ids, newest first."""
    return await service.search_threads(
        ids=body.ids,
        metadata=body.metadata,
        values=body.values,
        status=body.status,
        limit=body.limit,
        offset=body.offset,
    )


@router.post("/threads/count")
async def count_threads(body: ThreadSearchIn, service: Service) -> int:
    """How many of your threads match the filters."""
    found = await service.search_threads(
        ids=body.ids,
        metadata=body.metadata,
        values=body.values,
        status=body.status,
        limit=10**6,
        offset=0,
    )
    return len(found)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: uuid.UUID, service: Service) -> dict[str, Any]:
    """A thread: metadata, status, current values and pending interrupts."""
    return await service.get_thread(thread_id)


@router.patch("/threads/{thread_id}")
async def patch_thread(
    thread_id: uuid.UUID, body: ThreadPatchIn, service: Service
) -> dict[str, Any]:
    """Merge metadata into the thread's."""
    return await service.update_thread(thread_id, body.metadata)


@router.delete("/threads/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: uuid.UUID, service: Service) -> None:
    """Delete a thread with its runs, messages and checkpoints (409 while a run is active)."""
    await service.delete_thread(thread_id)


@router.get("/threads/{thread_id}/state")
async def get_thread_state(
    thread_id: uuid.UUID, service: Service, subgraphs: bool = False
) -> dict[str, Any]:
    """The thread's current state: values, next, tasks with interrupts, checkpoint."""
    return await service.get_state(thread_id, subgraphs=subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_thread_state_at(
    thread_id: uuid.UUID, checkpoint_id: str, service: Service, subgraphs: bool = False
) -> dict[str, Any]:
    """The thread's state at a checkpoint."""
    return await service.get_state(thread_id, checkpoint_id, subgraphs=subgraphs)


@router.post("/threads/{thread_id}/history")
async def thread_history(
    thread_id: uuid.UUID, body: HistoryIn, service: Service
) -> list[dict[str, Any]]:
    """The thread's past states, newest first (`before` a checkpoint id or checkpoint)."""
    before = body.before
    if isinstance(before, dict):
        before = before.get("checkpoint_id")
    return await service.history(thread_id, limit=body.limit, before=before, metadata=body.metadata)


@router.get("/threads/{thread_id}/history")
async def thread_history_get(
    thread_id: uuid.UUID,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """The thread's past states, newest first."""
    return await service.history(thread_id, limit=limit, before=before, metadata=None)


# Runs -------------------------------------------------------------------------------------


class RunIn(BaseModel):
    """A run: which assistant, with what input or command, streamed how."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str
    input: Any = None
    command: dict[str, Any] | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    # Accepted by LangGraph's server; refused here (422) until MAI has them, so nothing is
    # silently dropped.
    interrupt_before: Any = None
    interrupt_after: Any = None
    webhook: str | None = None
    after_seconds: float | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None

    def refuse_unsupported(self) -> None:
        """422 for parameters this server does not carry out yet."""
        unsupported = [
            name
            for name in (
                "interrupt_before",
                "interrupt_after",
                "webhook",
                "after_seconds",
                "checkpoint",
                "checkpoint_id",
            )
            if getattr(self, name) not in (None, [], "")
        ]
        if self.stream_subgraphs:
            unsupported.append("stream_subgraphs")
        if unsupported:
            raise Unprocessable(
                f"{', '.join(unsupported)} {'is' if len(unsupported) == 1 else 'are'} not "
                "supported by this server yet; send the run without "
                f"{'it' if len(unsupported) == 1 else 'them'}.",
                code="unsupported_run_parameter",
                meta={"fields": unsupported},
            )


async def _start(
    service: LangGraphService, thread_id: uuid.UUID | None, body: RunIn, streamed: bool
) -> AgentRun:
    body.refuse_unsupported()
    command = {k: v for k, v in (body.command or {}).items() if v is not None} or None
    return await service.create_run(
        thread_id,
        assistant_id=body.assistant_id,
        input=body.input,
        command=command,
        stream_mode=body.stream_mode,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
        multitask_strategy=body.multitask_strategy,
        if_not_exists=body.if_not_exists if thread_id is not None else "create",
        streamed=streamed,
    )


async def relay_langgraph(
    events: AsyncIterator[LoggedEvent], run_id: uuid.UUID
) -> AsyncIterator[ServerSentEvent]:
    """A run's events as LangGraph's server sends them: each with an `id:`, errors as
    {error, message}, and the stream simply closing when the run ends."""
    async for item in events:
        if item.event in (END_EVENT, "retry"):
            continue
        data = item.data
        if item.event == "error" and isinstance(data, dict):
            data = {"error": data.get("error"), "message": data.get("detail")}
        yield ServerSentEvent(data=encode(data), event=item.event, id=sse_id(run_id, item.seq))


def _location(run: AgentRun) -> dict[str, str]:
    return {"Content-Location": f"/threads/{run.conversation_id}/runs/{run.id}"}


async def _stream(
    service: LangGraphService, resources: Resources, run: AgentRun, discard: bool
) -> EventSourceResponse:
    events = await AgentService(resources).opened_stream(run)

    async def relayed() -> AsyncIterator[ServerSentEvent]:
        async for event in relay_langgraph(events, run.id):
            yield event
        if discard:
            await service.discard_thread(run.conversation_id)

    response = sse_response(relayed(), resources)
    response.headers.update(_location(run))
    return response


@router.post(
    "/threads/{thread_id}/runs/stream",
    dependencies=[BudgetCheck],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE events"}},
)
async def stream_run(
    thread_id: uuid.UUID, body: RunIn, service: Service, resources: ResourcesDep
) -> EventSourceResponse:
    """Run the assistant on the thread and stream its events (`stream_mode`: values,
    updates, messages-tuple, custom, debug, tasks, checkpoints)."""
    run = await _start(service, thread_id, body, streamed=True)
    return await _stream(service, resources, run, discard=False)


@router.post("/threads/{thread_id}/runs/wait", dependencies=[BudgetCheck])
async def wait_run(
    thread_id: uuid.UUID, body: RunIn, service: Service, response: Response
) -> dict[str, Any]:
    """Run the assistant on the thread and answer with the thread's values once it ends."""
    run = await _start(service, thread_id, body, streamed=False)
    response.headers.update(_location(run))
    return await service.output_of(run)


@router.post("/threads/{thread_id}/runs", dependencies=[BudgetCheck])
async def create_run(thread_id: uuid.UUID, body: RunIn, service: Service) -> dict[str, Any]:
    """Queue a background run on the thread; follow it with join or join_stream."""
    run = await _start(service, thread_id, body, streamed=False)
    return service.run_json(run)


@router.post(
    "/runs/stream",
    dependencies=[BudgetCheck],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE events"}},
)
async def stream_stateless_run(
    body: RunIn, service: Service, resources: ResourcesDep
) -> EventSourceResponse:
    """A run on a temporary thread, streamed; the thread is deleted after it unless
    `on_completion: keep`."""
    run = await _start(service, None, body, streamed=True)
    return await _stream(service, resources, run, discard=body.on_completion != "keep")


@router.post("/runs/wait", dependencies=[BudgetCheck])
async def wait_stateless_run(body: RunIn, service: Service) -> dict[str, Any]:
    """A run on a temporary thread; answers its final values. The thread is deleted after
    it unless `on_completion: keep`."""
    run = await _start(service, None, body, streamed=False)
    try:
        return await service.output_of(run)
    finally:
        if body.on_completion != "keep":
            await service.discard_thread(run.conversation_id)


@router.post("/runs", dependencies=[BudgetCheck])
async def create_stateless_run(body: RunIn, service: Service) -> dict[str, Any]:
    """A background run on a new thread (kept, so it can be joined)."""
    run = await _start(service, None, body, streamed=False)
    return service.run_json(run)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: uuid.UUID,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    return await service.list_runs(thread_id, limit=limit, offset=offset, status=status)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: uuid.UUID, run_id: uuid.UUID, service: Service) -> dict[str, Any]:
    """A run and its status."""
    return service.run_json(await service.get_run(thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(thread_id: uuid.UUID, run_id: uuid.UUID, service: Service) -> None:
    """Delete a run that ended (409 while it is active)."""
    await service.delete_run(thread_id, run_id)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: uuid.UUID, run_id: uuid.UUID, service: Service) -> dict[str, Any]:
    """Wait for the run to end; the thread's values then."""
    return await service.output_of(await service.get_run(thread_id, run_id))


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE events"}},
)
async def join_run_stream(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    service: Service,
    resources: ResourcesDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The run's events after `Last-Event-ID` (from its start without it), then the live
    ones until it ends."""
    run = await service.get_run(thread_id, run_id)
    after = service.engine.start_after(run, last_event_id)
    return sse_response(relay_langgraph(service.engine.follow(run, after), run.id), resources)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    service: Service,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> dict[str, Any]:
    """Cancel a pending, running or interrupted run (409 once it ended); `wait` answers once
    it stopped."""
    run = await service.get_run(thread_id, run_id)
    stopped = await service.engine.cancel(run, action)
    if wait and stopped.status == "running":
        stopped = await service.engine.wait(stopped)
    return service.run_json(stopped)
