"""LangGraph assistants: each graph's system assistant, and the versioned assistants users
create on a graph with their own config, context and metadata.

A user sees the system assistants and their own (an admin sees every user's); everywhere an
assistant id is taken, a graph id names that graph's system assistant.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.graphs import GraphEntry
from app.core.resources import Resources
from app.models import Assistant, AssistantVersion, User
from app.repositories.assistants import AssistantRepository
from app.services.runs import to_jsonable

# LangGraph's namespace for system assistant ids: uuid5(NAMESPACE_GRAPH, graph_id), the same
# ids `langgraph dev` and LangGraph's server give the graphs of a langgraph.json.
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
# When this process started: the system assistants' creation time.
STARTED_AT = datetime.now(UTC)
SORT_KEYS = frozenset({"assistant_id", "graph_id", "name", "created_at", "updated_at"})


def system_assistant_id(graph_id: str) -> str:
    """The id LangGraph gives the system assistant of a graph."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    return all(metadata.get(key) == value for key, value in (wanted or {}).items())


def merge_config(base: Mapping[str, Any] | None, run: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's config over its assistant's: `configurable` and `metadata` merged key by key
    (the run's win), tags joined, anything else the run's when it sets it; 422 for a config
    whose `configurable`, `metadata` or `tags` has the wrong type."""
    for given in (base, run):
        for key, kind in (("configurable", dict), ("metadata", dict), ("tags", list)):
            if (given or {}).get(key) is not None and not isinstance((given or {})[key], kind):
                raise Unprocessable(
                    f"config.{key} must be {'an object' if kind is dict else 'a list'}.",
                    code="invalid_config",
                )
    merged: dict[str, Any] = {**(base or {}), **(run or {})}
    for key in ("configurable", "metadata"):
        if (base or {}).get(key) or (run or {}).get(key):
            merged[key] = {**((base or {}).get(key) or {}), **((run or {}).get(key) or {})}
    tags = [*((base or {}).get("tags") or []), *((run or {}).get("tags") or [])]
    if tags:
        merged["tags"] = list(dict.fromkeys(tags))
    return merged


def graph_schemas(entry: GraphEntry, graph: Any = None) -> dict[str, Any]:
    """A graph's input, output, state, config and context JSON schemas (a schema a type
    cannot express, such as a live object in the context, is None)."""
    from pydantic import TypeAdapter

    graph = graph if graph is not None else entry.graph

    def schema_of(make: Any) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], make())
        except Exception:
            return None

    state_type = getattr(getattr(graph, "builder", None), "state_schema", None)
    context_type = getattr(getattr(graph, "builder", None), "context_schema", None)
    if graph is entry.graph:
        context_type = entry.context_schema
    return {
        "graph_id": entry.graph_id,
        "input_schema": schema_of(graph.get_input_jsonschema),
        "output_schema": schema_of(graph.get_output_jsonschema),
        "state_schema": schema_of(lambda: TypeAdapter(state_type).json_schema())
        if state_type is not None
        else None,
        "config_schema": None,
        "context_schema": schema_of(lambda: TypeAdapter(context_type).json_schema())
        if context_type is not None
        else None,
    }


@dataclass(frozen=True)
class ResolvedAssistant:
    """What a run of an assistant needs: its id, its graph, its config and context."""

    assistant_id: str
    entry: GraphEntry
    config: dict[str, Any]
    context: dict[str, Any]


class AssistantService:
    """Assistant use cases for one caller; stateless, one per request is fine."""

    def __init__(self, resources: Resources, user: User) -> None:
        self.resources = resources
        self.user = user

    def _entries(self) -> dict[str, GraphEntry]:
        assert self.resources.graphs is not None, "the graphs are not loaded"
        return self.resources.graphs.entries

    def _graph(self, graph_id: str) -> GraphEntry:
        entry = self._entries().get(graph_id)
        if entry is None:
            raise Unprocessable(
                f"No graph {graph_id!r}; use one of {', '.join(sorted(self._entries()))}.",
                code="graph_not_found",
            )
        return entry

    @staticmethod
    def _missing(assistant_id: str) -> NotFound:
        return NotFound(f"No assistant with id {assistant_id!r}.", code="assistant_not_found")

    def system_graph(self, assistant_id: str) -> GraphEntry | None:
        """The graph whose system assistant this id (or graph id) names, if any."""
        entries = self._entries()
        if assistant_id in entries:
            return entries[assistant_id]
        for graph_id, entry in entries.items():
            if system_assistant_id(graph_id) == assistant_id.lower():
                return entry
        return None

    async def _owned(self, assistant_id: str, *, write: bool = False) -> Assistant:
        """The caller's assistant (an admin reads anyone's); 404 otherwise, 409 for a system
        assistant on a write."""
        if write and self.system_graph(assistant_id) is not None:
            raise Conflict(
                "System assistants come from langgraph.json and cannot be changed; create an "
                "assistant on the graph instead.",
                code="system_assistant",
            )
        try:
            key = uuid.UUID(assistant_id)
        except ValueError:
            raise self._missing(assistant_id) from None
        async with self.resources.sessionmaker() as session:
            found = await AssistantRepository(session).get(key)
        if found is None or (found.user_id != self.user.id and (write or not self.user.is_admin)):
            raise self._missing(assistant_id)
        return found

    def system_json(self, graph_id: str) -> dict[str, Any]:
        """The system assistant of a graph, as LangGraph's `Assistant`."""
        created = _iso(STARTED_AT)
        return {
            "assistant_id": system_assistant_id(graph_id),
            "graph_id": graph_id,
            "config": {},
            "context": {},
            "metadata": {"created_by": "system"},
            "name": graph_id,
            "description": None,
            "version": 1,
            "created_at": created,
            "updated_at": created,
        }

    @staticmethod
    def assistant_json(assistant: Assistant) -> dict[str, Any]:
        """A user's assistant as LangGraph's `Assistant`."""
        return {
            "assistant_id": str(assistant.id),
            "graph_id": assistant.graph_id,
            "config": assistant.config or {},
            "context": assistant.context or {},
            "metadata": assistant.assistant_metadata or {},
            "name": assistant.name,
            "description": assistant.description,
            "version": assistant.version,
            "created_at": _iso(assistant.created_at),
            "updated_at": _iso(assistant.updated_at),
        }

    @staticmethod
    def version_json(version: AssistantVersion) -> dict[str, Any]:
        """One version as LangGraph's `AssistantVersion`."""
        return {
            "assistant_id": str(version.assistant_id),
            "graph_id": version.graph_id,
            "config": version.config or {},
            "context": version.context or {},
            "metadata": version.version_metadata or {},
            "name": version.name,
            "description": version.description,
            "version": version.version,
            "created_at": _iso(version.created_at),
        }

    # Reading ------------------------------------------------------------------------------

    async def resolve(self, assistant_id: str) -> ResolvedAssistant:
        """The assistant a run names: a system one (by id or graph id) or a visible user's."""
        entry = self.system_graph(assistant_id)
        if entry is not None:
            return ResolvedAssistant(system_assistant_id(entry.graph_id), entry, {}, {})
        assistant = await self._owned(assistant_id)
        entry = self._entries().get(assistant.graph_id)
        if entry is None:
            raise self._missing(assistant_id)
        return ResolvedAssistant(
            str(assistant.id), entry, dict(assistant.config or {}), dict(assistant.context or {})
        )

    async def get(self, assistant_id: str) -> dict[str, Any]:
        """An assistant by its id, or a graph's system assistant by the graph id."""
        entry = self.system_graph(assistant_id)
        if entry is not None:
            return self.system_json(entry.graph_id)
        return self.assistant_json(await self._owned(assistant_id))

    async def search(
        self,
        *,
        graph_id: str | None,
        metadata: Mapping[str, Any] | None,
        name: str | None,
        limit: int,
        offset: int,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> list[dict[str, Any]]:
        """The visible assistants matching every filter: the system ones by graph id, then
        the caller's oldest first (or sorted by `sort_by`)."""
        found = [self.system_json(gid) for gid in sorted(self._entries())]
        found = [a for a in found if graph_id is None or a["graph_id"] == graph_id]
        async with self.resources.sessionmaker() as session:
            # Search lists the caller's own (an admin reads others' by id only).
            mine = await AssistantRepository(session).visible_to(self.user.id, graph_id)
        found.extend(self.assistant_json(a) for a in mine)
        found = [
            a
            for a in found
            if (name is None or name.lower() in str(a["name"]).lower())
            and _matches(a["metadata"], metadata)
        ]
        if sort_by is not None:
            if sort_by not in SORT_KEYS:
                raise Unprocessable(
                    f"sort_by must be one of {', '.join(sorted(SORT_KEYS))}.",
                    code="invalid_sort",
                )
            found.sort(key=lambda a: str(a[sort_by]), reverse=sort_order != "asc")
        return found[offset : offset + limit]

    async def versions(
        self, assistant_id: str, metadata: Mapping[str, Any] | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """An assistant's versions, newest first (a system assistant has one)."""
        entry = self.system_graph(assistant_id)
        if entry is not None:
            system = self.system_json(entry.graph_id)
            system.pop("updated_at")
            found = [system]
        else:
            assistant = await self._owned(assistant_id)
            async with self.resources.sessionmaker() as session:
                stored = await AssistantRepository(session).versions(assistant.id)
            found = [self.version_json(v) for v in stored]
        found = [v for v in found if _matches(v["metadata"], metadata)]
        return found[offset : offset + limit]

    def drawable_graph(self, entry: GraphEntry, xray: bool | int) -> dict[str, Any]:
        """The graph as LangGraph's drawable JSON (nodes and edges)."""
        drawn = entry.graph.get_graph(xray=xray).to_json()
        return cast(dict[str, Any], to_jsonable(drawn))

    def subgraphs(
        self, entry: GraphEntry, namespace: str | None, recurse: bool
    ) -> dict[str, dict[str, Any]]:
        """The graph's subgraphs' schemas by namespace."""
        return {
            ns: graph_schemas(entry, subgraph)
            for ns, subgraph in entry.graph.get_subgraphs(namespace=namespace, recurse=recurse)
        }

    # Writing ------------------------------------------------------------------------------

    async def create(
        self,
        *,
        graph_id: str,
        assistant_id: uuid.UUID | None,
        config: dict[str, Any] | None,
        context: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
        name: str | None,
        description: str | None,
        if_exists: str,
    ) -> dict[str, Any]:
        """A new assistant on a graph (version 1); an existing id is 409 unless `if_exists:
        do_nothing`, which answers the caller's existing assistant."""
        entry = self._graph(graph_id)
        merge_config(config, None)
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            assistants = AssistantRepository(session)
            if assistant_id is not None:
                existing = await assistants.get(assistant_id)
                taken = existing is not None or self.system_graph(str(assistant_id)) is not None
                if taken:
                    if (
                        if_exists == "do_nothing"
                        and existing is not None
                        and existing.user_id == self.user.id
                    ):
                        return self.assistant_json(existing)
                    raise Conflict(
                        f"Assistant {assistant_id} already exists.", code="assistant_exists"
                    )
            assistant = await assistants.add(
                Assistant(
                    id=assistant_id or uuid.uuid4(),
                    user_id=self.user.id,
                    graph_id=entry.graph_id,
                    name=name or "Untitled",
                    description=description,
                    config=dict(config or {}),
                    context=dict(context or {}),
                    assistant_metadata=dict(metadata or {}),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
            )
            await assistants.add_version(self._snapshot(assistant, 1, now))
            await session.commit()
        return self.assistant_json(assistant)

    @staticmethod
    def _snapshot(assistant: Assistant, version: int, now: datetime) -> AssistantVersion:
        return AssistantVersion(
            assistant_id=assistant.id,
            version=version,
            graph_id=assistant.graph_id,
            name=assistant.name,
            description=assistant.description,
            config=assistant.config,
            context=assistant.context,
            version_metadata=assistant.assistant_metadata,
            created_at=now,
        )

    async def update(
        self,
        assistant_id: str,
        *,
        graph_id: str | None,
        config: dict[str, Any] | None,
        context: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
        name: str | None,
        description: str | None,
    ) -> dict[str, Any]:
        """A new version of the caller's assistant, made the current one: what is given
        replaces the current value (metadata is merged into it)."""
        current = await self._owned(assistant_id, write=True)
        if graph_id is not None:
            self._graph(graph_id)
        merge_config(config, None)
        now = self.resources.clock.now()
        async with self.resources.sessionmaker() as session:
            assistants = AssistantRepository(session)
            assistant = await assistants.get(current.id)
            if assistant is None:
                raise self._missing(assistant_id)
            stored = await assistants.versions(assistant.id)
            version = (stored[0].version if stored else assistant.version) + 1
            if graph_id is not None:
                assistant.graph_id = graph_id
            if config is not None:
                assistant.config = dict(config)
            if context is not None:
                assistant.context = dict(context)
            if metadata is not None:
                assistant.assistant_metadata = {**(assistant.assistant_metadata or {}), **metadata}
            if name is not None:
                assistant.name = name
            if description is not None:
                assistant.description = description
            assistant.version = version
            assistant.updated_at = now
            await assistants.add_version(self._snapshot(assistant, version, now))
            await session.commit()
        return self.assistant_json(assistant)

    async def set_latest(self, assistant_id: str, version: int) -> dict[str, Any]:
        """Make one of the caller's assistant's versions the current one."""
        current = await self._owned(assistant_id, write=True)
        async with self.resources.sessionmaker() as session:
            assistants = AssistantRepository(session)
            chosen = await assistants.version(current.id, version)
            assistant = await assistants.get(current.id)
            if chosen is None or assistant is None:
                raise NotFound(
                    f"Assistant {assistant_id} has no version {version}.",
                    code="assistant_version_not_found",
                )
            assistant.graph_id = chosen.graph_id
            assistant.name = chosen.name
            assistant.description = chosen.description
            assistant.config = chosen.config
            assistant.context = chosen.context
            assistant.assistant_metadata = chosen.version_metadata
            assistant.version = chosen.version
            assistant.updated_at = self.resources.clock.now()
            await session.commit()
        return self.assistant_json(assistant)

    async def delete(self, assistant_id: str) -> None:
        """Delete the caller's assistant and its versions (its threads stay)."""
        assistant = await self._owned(assistant_id, write=True)
        async with self.resources.sessionmaker() as session:
            await AssistantRepository(session).delete(assistant.id)
            await session.commit()
