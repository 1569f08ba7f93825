"""Graph test fixtures: the three checkpointers, a local HTTP server, and a turn runner."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from graphs.assistant import Context, builder
from tests.conftest import PostgresDatabase, unavailable
from tests.graphs.http_server import LocalServer, serve


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_database: PostgresDatabase | None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """InMemorySaver, AsyncSqliteSaver on a temp file, AsyncPostgresSaver on a fresh database."""
    if request.param == "memory":
        yield InMemorySaver()
    elif request.param == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.db")) as saver:
            yield saver
    else:
        if postgres_database is None:
            unavailable("PostgreSQL")
        assert postgres_database is not None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            postgres_database.conninfo,
            max_size=4,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await pool.open()
        try:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            yield saver
        finally:
            await pool.close()


@pytest.fixture
def agent(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The assistant graph compiled with the parametrized checkpointer."""
    return builder.compile(checkpointer=checkpointer)


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A local HTTP server on a free port."""
    with serve() as server:
        yield server


def thread() -> dict[str, Any]:
    """A config for a fresh conversation thread."""
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex}"}}


async def turn(
    agent: CompiledStateGraph[Any, Any, Any, Any],
    message: str,
    context: Context,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one turn to the end and return the output state."""
    result = await agent.ainvoke(
        {"messages": [HumanMessage(content=message)]}, config or thread(), context=context
    )
    assert isinstance(result, dict)
    return result
