"""The graphs the service runs: every graph listed in langgraph.json, compiled at start with the
service's checkpointer (and store), looked up by graph id."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.errors import NotFound

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GRAPHS_FILE = PROJECT_ROOT / "langgraph.json"


class GraphConfigError(RuntimeError):
    """langgraph.json names a graph that cannot be loaded."""


@dataclass(frozen=True, slots=True)
class GraphEntry:
    """One served graph: its id, where it comes from, and the compiled graph."""

    graph_id: str
    source: str
    graph: CompiledStateGraph[Any, Any, Any, Any]
    context_schema: type[Any] | None


def graph_sources(path: Path = DEFAULT_GRAPHS_FILE) -> dict[str, str]:
    """graph id -> `./path/to/module.py:attribute`, as langgraph.json lists them."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GraphConfigError(f"{path}: cannot read the graph list ({error})") from None
    graphs = spec.get("graphs") if isinstance(spec, dict) else None
    if not isinstance(graphs, dict) or not graphs:
        raise GraphConfigError(f'{path}: no graphs listed under "graphs"')
    return {str(k): str(v) for k, v in graphs.items()}


def _load(graph_id: str, source: str, root: Path) -> Any:
    file_part, _, attribute = source.partition(":")
    relative = Path(file_part)
    if relative.is_absolute():
        relative = relative.relative_to(root)
    module_name = ".".join(relative.with_suffix("").parts).lstrip(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise GraphConfigError(
            f"graph {graph_id!r}: cannot import {module_name} ({error})"
        ) from None
    found = getattr(module, attribute or "graph", None)
    if found is None:
        raise GraphConfigError(f"graph {graph_id!r}: {module_name} has no {attribute!r}")
    return found


class GraphRegistry:
    """The compiled graphs by id."""

    def __init__(self, entries: dict[str, GraphEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(
        cls,
        checkpointer: BaseCheckpointSaver[Any] | None,
        store: BaseStore | None = None,
        path: Path = DEFAULT_GRAPHS_FILE,
    ) -> GraphRegistry:
        """Import every listed graph and compile its builder with the checkpointer and store."""
        entries: dict[str, GraphEntry] = {}
        for graph_id, source in graph_sources(path).items():
            loaded = _load(graph_id, source, path.parent)
            builder = getattr(loaded, "builder", loaded)
            if not hasattr(builder, "compile"):
                raise GraphConfigError(f"graph {graph_id!r}: {source} is not a StateGraph")
            compiled = builder.compile(checkpointer=checkpointer, store=store, name=graph_id)
            entries[graph_id] = GraphEntry(
                graph_id=graph_id,
                source=source,
                graph=compiled,
                context_schema=getattr(builder, "context_schema", None),
            )
        return cls(entries)

    def get(self, graph_id: str) -> GraphEntry:
        """The graph with this id (404 `graph_not_found`)."""
        found = self.entries.get(graph_id)
        if found is None:
            raise NotFound(
                f"No graph {graph_id!r}; this server runs: {', '.join(sorted(self.entries))}.",
                code="graph_not_found",
            )
        return found

    def ids(self) -> list[str]:
        """The ids of every served graph."""
        return sorted(self.entries)
