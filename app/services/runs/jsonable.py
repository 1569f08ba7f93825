"""Graph values (messages, typed dicts, dataclasses) as plain JSON values, for events and rows."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    """Graph output (messages, typed dicts, dataclasses) as plain JSON values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return to_jsonable(value.model_dump(warnings=False))
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", warnings=False)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def message_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of LangGraph's per-token metadata (node, step, model, thread)."""
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str | int | float | bool) or value is None:
            kept[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(item, str | int | float | bool) for item in value
        ):
            kept[key] = list(value)
    return kept


def tool_calls_of(tool_runs: Any) -> list[dict[str, Any]]:
    """The tool runs of a state as JSON (id, name, args, result, duration, status), as a
    turn lists them: the id lets a client match a call it streamed to the finished one."""
    return [
        {
            "id": run.get("id"),
            "name": run.get("name"),
            "args": to_jsonable(run.get("args") or {}),
            "result": to_jsonable(run.get("result")),
            "duration_ms": run.get("duration_ms"),
            "status": run.get("status"),
        }
        for run in tool_runs or []
        if isinstance(run, Mapping)
    ]


def usage_of(value: Any) -> dict[str, int]:
    """Token usage as {input_tokens, output_tokens}."""
    usage = value if isinstance(value, Mapping) else {}
    return {
        "input_tokens": int(usage.get("input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
    }
