"""A run's context (the graph's `context_schema`), built from settings, the run row and the
service's live resources (model, retriever, tools, tool ledger, clock)."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.core.graphs import GraphEntry
from app.core.llm import ResolvedModel
from app.core.resources import Resources
from app.models import AgentRun
from app.services.memory import memory_options
from app.services.runs.ledger import DatabaseToolLedger
from app.services.tools import current_registry
from graphs.assistant import Context as AssistantContext


def service_values(
    resources: Resources, run: AgentRun, resolved: ResolvedModel | None
) -> dict[str, Any]:
    """Everything the service can hand a graph's context, by the field names graphs use."""
    settings = resources.settings
    return {
        "user_id": str(run.user_id),
        "conversation_id": str(run.conversation_id),
        "thread_id": str(run.conversation_id),
        "run_id": str(run.id),
        "model": resolved.name if resolved is not None else (settings.llm_model or ""),
        "llm_base_url": settings.llm_base_url,
        "llm_api_key": settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        "llm": resolved.chat_model if resolved is not None else None,
        "llm_timeout_seconds": settings.llm_timeout_seconds,
        "llm_max_retries": settings.llm_max_retries,
        "max_tool_iterations": settings.max_tool_iterations,
        "tool_timeout_seconds": settings.tool_timeout_seconds,
        "context_tokens": settings.llm_context_tokens,
        "max_history_messages": settings.agent_max_history_messages,
        "summary_max_tokens": settings.summary_max_tokens,
        "retriever": resources.retriever,
        "tools": current_registry(resources),
        "tool_ledger": DatabaseToolLedger(resources, str(run.conversation_id)),
        "approval_required": frozenset(settings.approval_required_tools) or None,
        "approval_exempt": frozenset(settings.approval_exempt_tools) or None,
        "approval_timeout_seconds": settings.approval_timeout_seconds,
        "clock": resources.clock.now,
        "memory": memory_options(settings),
    }


def graph_values(resources: Resources, graph_id: str) -> dict[str, Any]:
    """The settings of one bundled graph's own context fields (MAI_PLANNER_*, MAI_MODERATION_*,
    MAI_SENTIMENT_*), so a run gets what the service was configured with."""
    settings = resources.settings
    if graph_id == "planner":
        return {
            "approval": settings.planner_approval,
            "approval_cost_usd": settings.planner_approval_cost_usd,
            "step_cost_usd": settings.planner_step_cost_usd,
            "failure_policy": settings.planner_failure_policy,
            "max_attempts": settings.planner_max_attempts,
            "step_timeout_seconds": settings.planner_step_timeout_seconds,
        }
    if graph_id == "moderation":
        return {
            "block_threshold": settings.moderation_block_threshold,
            "review_threshold": settings.moderation_review_threshold,
            "error_strategy": settings.moderation_error_strategy,
        }
    if graph_id == "sentiment" and settings.sentiment_glossary is not None:
        return {"glossary_path": str(settings.sentiment_glossary)}
    return {}


def build_context(
    resources: Resources, run: AgentRun, resolved: ResolvedModel | None, entry: GraphEntry
) -> Any:
    """The context for this run: the service's values for the fields the schema has, with the
    run's own `context` (set by the caller) on top for the fields that are plain values."""
    schema = entry.context_schema
    if schema is None:
        return None
    values = service_values(resources, run, resolved) | graph_values(resources, run.graph_id)
    live = {"llm", "retriever", "tools", "tool_ledger", "clock", "user_id", "run_id", "memory"}
    for key, value in (run.context or {}).items():
        if key not in live:
            values[key] = value
    if dataclasses.is_dataclass(schema):
        names = {f.name for f in dataclasses.fields(schema) if f.init}
        return schema(**{k: v for k, v in values.items() if k in names})
    fields = getattr(schema, "model_fields", None)
    if isinstance(fields, dict):
        return schema(**{k: v for k, v in values.items() if k in fields})
    annotations = getattr(schema, "__annotations__", {})
    return {k: v for k, v in values.items() if k in annotations}


__all__ = ["AssistantContext", "build_context", "service_values"]
