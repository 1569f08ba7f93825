"""Every graph of langgraph.json loads as Studio loads it, with schemas Studio can show."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = json.loads((ROOT / "langgraph.json").read_text())["graphs"]


@pytest.mark.parametrize("graph_id", sorted(GRAPHS))
def test_graph_loads_with_its_schemas(graph_id: str) -> None:
    path, _, attribute = GRAPHS[graph_id].partition(":")
    module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
    graph = getattr(module, attribute)
    package = importlib.import_module(module.__name__.rsplit(".", 1)[0])

    assert graph.name == graph_id
    assert package.graph is graph
    assert package.builder is not None
    # What LangGraph Studio and the LangGraph API call to draw forms and validate input.
    assert graph.get_context_jsonschema()["properties"]
    assert graph.get_input_jsonschema()["properties"]
    assert graph.get_output_jsonschema()["properties"]
    assert graph.get_graph().nodes
