"""The LangGraph Server API at the service root: what langgraph-sdk, Agent Chat UI and Studio
call. Every route but `/ok` and `/info` takes an API key (`X-Api-Key`) or a bearer token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.api.deps import KeyOrTokenBudgetCheck, KeyOrTokenUser, ResourcesDep, SessionDep
from app.api.sse import encode, sse_response
from app.core.resources import Resources
from app.core.run_events import END_EVENT, LoggedEvent, sse_id
from app.models import AgentRun
from app.services.agent import AgentService
from app.services.langgraph_api import LangGraphService, RunOptions
from app.services.langgraph_assistants import graph_schemas


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
    """Filters of `POST /assistants/search` and `/assistants/count`."""

    model_config = ConfigDict(extra="ignore")

    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class AssistantCreateIn(BaseModel):
    """Body of `POST /assistants`."""

    model_config = ConfigDict(extra="ignore")

    graph_id: str = Field(min_length=1, max_length=100)
    assistant_id: uuid.UUID | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=200)
    description: str | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class AssistantPatchIn(BaseModel):
    """Body of `PATCH /assistants/{id}`: what the new version changes."""

    model_config = ConfigDict(extra="ignore")

    graph_id: str | None = Field(None, min_length=1, max_length=100)
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=200)
    description: str | None = None


class AssistantVersionsIn(BaseModel):
    """Body of `POST /assistants/{id}/versions`."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class AssistantLatestIn(BaseModel):
    """Body of `POST /assistants/{id}/latest`."""

    version: int = Field(ge=1)


@router.post("/assistants")
async def create_assistant(body: AssistantCreateIn, service: Service) -> dict[str, Any]:
    """A new assistant on a graph, with its own config, context and metadata (409 when
    `assistant_id` exists, unless `if_exists: do_nothing`)."""
    return await service.assistants.create(
        graph_id=body.graph_id,
        assistant_id=body.assistant_id,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
        name=body.name,
        description=body.description,
        if_exists=body.if_exists,
    )


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearchIn, service: Service) -> list[dict[str, Any]]:
    """Assistants by graph id, metadata and name: the system ones and your own."""
    return await service.assistants.search(
        graph_id=body.graph_id,
        metadata=body.metadata,
        name=body.name,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )


@router.post("/assistants/count")
async def count_assistants(body: AssistantSearchIn, service: Service) -> int:
    """How many assistants match the filters."""
    found = await service.assistants.search(
        graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=10**6, offset=0
    )
    return len(found)


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, service: Service) -> dict[str, Any]:
    """An assistant by its id or its graph id."""
    return await service.assistants.get(assistant_id)


@router.patch("/assistants/{assistant_id}")
async def patch_assistant(
    assistant_id: str, body: AssistantPatchIn, service: Service
) -> dict[str, Any]:
    """Save a new version of your assistant and make it the current one."""
    return await service.assistants.update(
        assistant_id,
        graph_id=body.graph_id,
        config=body.config,
        context=body.context,
        metadata=body.metadata,
        name=body.name,
        description=body.description,
    )


@router.delete("/assistants/{assistant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_assistant(
    assistant_id: str, service: Service, delete_threads: bool = False
) -> None:
    """Delete your assistant and its versions (409 for a system assistant); with
    `delete_threads`, also your threads whose metadata names it."""
    await service.delete_assistant(assistant_id, delete_threads=delete_threads)


@router.post("/assistants/{assistant_id}/versions")
async def assistant_versions(
    assistant_id: str, body: AssistantVersionsIn, service: Service
) -> list[dict[str, Any]]:
    """The assistant's versions, newest first."""
    return await service.assistants.versions(assistant_id, body.metadata, body.limit, body.offset)


@router.post("/assistants/{assistant_id}/latest")
async def set_latest_assistant_version(
    assistant_id: str, body: AssistantLatestIn, service: Service
) -> dict[str, Any]:
    """Make one of your assistant's versions the current one."""
    return await service.assistants.set_latest(assistant_id, body.version)


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, service: Service, xray: Annotated[int | bool, Query()] = False
) -> dict[str, Any]:
    """The assistant's graph as drawable JSON (`xray` draws subgraphs)."""
    resolved = await service.assistants.resolve(assistant_id)
    return service.assistants.drawable_graph(resolved.entry, xray)


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, service: Service) -> dict[str, Any]:
    """The assistant's input, output, state and context JSON schemas."""
    resolved = await service.assistants.resolve(assistant_id)
    return graph_schemas(resolved.entry)


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_assistant_subgraphs(
    assistant_id: str, service: Service, recurse: bool = False
) -> dict[str, Any]:
    """The schemas of the assistant's subgraphs, by namespace."""
    resolved = await service.assistants.resolve(assistant_id)
    return service.assistants.subgraphs(resolved.entry, None, recurse)


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_assistant_subgraphs_in(
    assistant_id: str, namespace: str, service: Service, recurse: bool = False
) -> dict[str, Any]:
    """The schemas of the assistant's subgraphs under one namespace."""
    resolved = await service.assistants.resolve(assistant_id)
    return service.assistants.subgraphs(resolved.entry, namespace, recurse)


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


class StateUpdateIn(BaseModel):
    """Body of `POST /threads/{id}/state`."""

    model_config = ConfigDict(extra="ignore")

    values: Any = None
    as_node: str | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None


@router.post("/threads/{thread_id}/state")
async def update_thread_state(
    thread_id: uuid.UUID, body: StateUpdateIn, service: Service
) -> dict[str, Any]:
    """Write values to the thread's state as node `as_node` would; the new checkpoint."""
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    return await service.update_state(
        thread_id,
        body.values,
        as_node=body.as_node,
        checkpoint_id=str(checkpoint_id) if checkpoint_id else None,
    )


@router.post("/threads/{thread_id}/copy")
async def copy_thread(thread_id: uuid.UUID, service: Service) -> dict[str, Any]:
    """A new thread with this one's metadata, messages, state and history."""
    return await service.copy_thread(thread_id)


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
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: AnyHttpUrl | None = None
    after_seconds: float | None = Field(None, ge=0, le=7 * 24 * 3600)
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None

    def options(self) -> RunOptions:
        """The run as the service takes it."""
        command = {k: v for k, v in (self.command or {}).items() if v is not None} or None
        checkpoint_id = self.checkpoint_id or (self.checkpoint or {}).get("checkpoint_id")
        return RunOptions(
            assistant_id=self.assistant_id,
            input=self.input,
            command=command,
            stream_mode=self.stream_mode,
            stream_subgraphs=self.stream_subgraphs,
            config=self.config,
            context=self.context,
            metadata=self.metadata,
            multitask_strategy=self.multitask_strategy,
            if_not_exists=self.if_not_exists,
            interrupt_before=self.interrupt_before,
            interrupt_after=self.interrupt_after,
            webhook=str(self.webhook) if self.webhook is not None else None,
            after_seconds=self.after_seconds,
            checkpoint_id=str(checkpoint_id) if checkpoint_id else None,
            durability=self.durability,
        )


class BatchRunIn(RunIn):
    """One run of `POST /runs/batch`: on its thread, or stateless without one."""

    thread_id: uuid.UUID | None = None


async def _start(
    service: LangGraphService, thread_id: uuid.UUID | None, body: RunIn, streamed: bool
) -> AgentRun:
    options = body.options()
    if thread_id is None:
        options.if_not_exists = "create"
    return await service.create_run(thread_id, options, streamed=streamed)


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
    service: LangGraphService,
    resources: Resources,
    run: AgentRun,
    *,
    discard: bool,
    cancel_on_disconnect: bool,
) -> EventSourceResponse:
    events = await AgentService(resources).opened_stream(run)

    async def relayed() -> AsyncIterator[ServerSentEvent]:
        finished = False
        try:
            async for event in relay_langgraph(events, run.id):
                yield event
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                # The client went away mid-run and asked for `on_disconnect: cancel`; shielded,
                # as the stream's own task is being cancelled.
                with anyio.CancelScope(shield=True):
                    await service.cancel_if_active(run)
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
    updates, messages, messages-tuple, custom, debug, tasks, checkpoints, events)."""
    run = await _start(service, thread_id, body, streamed=True)
    return await _stream(
        service,
        resources,
        run,
        discard=False,
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )


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
    return await _stream(
        service,
        resources,
        run,
        discard=body.on_completion != "keep",
        cancel_on_disconnect=body.on_disconnect == "cancel",
    )


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


@router.post("/runs/batch", dependencies=[BudgetCheck])
async def create_run_batch(
    body: Annotated[list[BatchRunIn], Field(min_length=1, max_length=100)], service: Service
) -> list[dict[str, Any]]:
    """Queue several background runs at once, each on its `thread_id` or on a new thread."""
    started = [await _start(service, item.thread_id, item, streamed=False) for item in body]
    return [service.run_json(run) for run in started]


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
    return service.run_json(await service.get_run(thread_id, run_id, read=True))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(thread_id: uuid.UUID, run_id: uuid.UUID, service: Service) -> None:
    """Delete a run that ended (409 while it is active)."""
    await service.delete_run(thread_id, run_id)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: uuid.UUID, run_id: uuid.UUID, service: Service) -> dict[str, Any]:
    """Wait for the run to end; the thread's values then."""
    return await service.output_of(await service.get_run(thread_id, run_id, read=True))


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
    run = await service.get_run(thread_id, run_id, read=True)
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
