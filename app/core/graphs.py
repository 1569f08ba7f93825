"""The graphs the service runs: every graph listed in langgraph.json, compiled with the service's
checkpointer (and store), looked up by graph id.

The default graph is compiled at start, the others on first use: importing a graph's modules
is a noticeable share of a start, and most deployments serve one graph. The first request for
another graph (or the first listing of them all) compiles it, once.
"""

from __future__ import annotations

import importlib
import json
import threading
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


def _compile(
    graph_id: str,
    source: str,
    root: Path,
    checkpointer: BaseCheckpointSaver[Any] | None,
    store: BaseStore | None,
) -> GraphEntry:
    loaded = _load(graph_id, source, root)
    builder = getattr(loaded, "builder", loaded)
    if not hasattr(builder, "compile"):
        raise GraphConfigError(f"graph {graph_id!r}: {source} is not a StateGraph")
    compiled = builder.compile(checkpointer=checkpointer, store=store, name=graph_id)
    return GraphEntry(
        graph_id=graph_id,
        source=source,
        graph=compiled,
        context_schema=getattr(builder, "context_schema", None),
    )


class GraphRegistry:
    """The graphs by id, each compiled once, at start or on first use."""

    def __init__(
        self,
        entries: dict[str, GraphEntry],
        sources: dict[str, str] | None = None,
        *,
        root: Path = PROJECT_ROOT,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
    ) -> None:
        self._compiled = dict(entries)
        self._sources = dict(sources or {})
        self._root = root
        self._checkpointer = checkpointer
        self._store = store
        # Once each, even when two threads (an API call, a `to_thread` helper) ask together.
        self._lock = threading.Lock()

    def _entry(self, graph_id: str) -> GraphEntry | None:
        found = self._compiled.get(graph_id)
        if found is not None or graph_id not in self._sources:
            return found
        with self._lock:
            found = self._compiled.get(graph_id)
            if found is None:
                found = _compile(
                    graph_id,
                    self._sources[graph_id],
                    self._root,
                    self._checkpointer,
                    self._store,
                )
                self._compiled[graph_id] = found
            return found

    @property
    def entries(self) -> dict[str, GraphEntry]:
        """Every graph, compiled (those not compiled yet are compiled now)."""
        return {graph_id: entry for graph_id in self.ids() if (entry := self._entry(graph_id))}

    @classmethod
    def load(
        cls,
        checkpointer: BaseCheckpointSaver[Any] | None,
        store: BaseStore | None = None,
        path: Path = DEFAULT_GRAPHS_FILE,
        *,
        eager: tuple[str, ...] | None = None,
    ) -> GraphRegistry:
        """Compile the `eager` graphs now (default: all) and the others on first use.

        Every listed module file must exist: a typo in langgraph.json stops the start."""
        sources = graph_sources(path)
        for graph_id, source in sources.items():
            file_part = Path(source.partition(":")[0])
            if not (file_part if file_part.is_absolute() else path.parent / file_part).exists():
                raise GraphConfigError(f"graph {graph_id!r}: {file_part} does not exist")
        entries = {
            graph_id: _compile(graph_id, source, path.parent, checkpointer, store)
            for graph_id, source in sources.items()
            if eager is None or graph_id in eager
        }
        return cls(entries, sources, root=path.parent, checkpointer=checkpointer, store=store)

    def get(self, graph_id: str) -> GraphEntry:
        """The graph with this id (404 `graph_not_found`)."""
        found = self._entry(graph_id)
        if found is None:
            raise NotFound(
                f"No graph {graph_id!r}; this server runs: {', '.join(self.ids())}.",
                code="graph_not_found",
            )
        return found

    def ids(self) -> list[str]:
        """The ids of every served graph."""
        return sorted(set(self._sources) | set(self._compiled))
