"""Structured answers from any chat model: structured output first, plain-text JSON as fallback.

Local models differ: some support tool calling or `response_format`, some reject it, some
answer with prose around a JSON object. `ask_structured` tries `with_structured_output`
(include_raw) and falls back to a plain call whose text is searched for a JSON object, the same
way the assistant's router falls back to plain text. It never raises for bad output: it returns
what it parsed, or the error a repair prompt can show the model. `ask_with_repair` adds the one
repair attempt the graphs allow before failing with `OutputInvalid`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM
from pydantic import BaseModel, ValidationError

from graphs.assistant.messages import add_usage, text_of
from graphs.assistant.state import Usage, no_usage

M = TypeVar("M", bound=BaseModel)

# Structured calls are internal: tagged so their tokens never reach the "messages" stream.
QUIET: RunnableConfig = {"tags": [TAG_NOSTREAM]}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
MAX_ERROR_CHARS = 1500


class OutputInvalid(ValueError):
    """The model's output failed validation even after the repair attempt."""


@dataclass(frozen=True, slots=True)
class Answer(Generic[M]):
    """One structured call: the parsed value (or None), the raw text, the error, the usage."""

    value: M | None
    raw: str
    error: str | None
    usage: Usage


def validation_message(error: ValidationError) -> str:
    """A pydantic error as short lines a model (or a person) can act on."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)[:MAX_ERROR_CHARS]


def json_in(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced block, or the outermost {...}.

    Raises ValueError when there is none.
    """
    stripped = text.strip()
    candidates = [stripped]
    candidates += [match.group(1).strip() for match in _FENCE.finditer(text)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("the reply holds no JSON object")


def parse_as(schema: type[M], data: Any) -> tuple[M | None, str | None]:
    """Validate `data` against `schema`: (value, None) or (None, the error)."""
    try:
        return schema.model_validate(data), None
    except ValidationError as error:
        return None, validation_message(error)


def _from_raw(schema: type[M], raw: BaseMessage) -> tuple[M | None, str | None]:
    if isinstance(raw, AIMessage):
        for call in raw.tool_calls:
            value, error = parse_as(schema, call["args"])
            if value is not None:
                return value, None
    try:
        data = json_in(text_of(raw))
    except ValueError as error:
        return None, str(error)
    return parse_as(schema, data)


async def _plain(llm: BaseChatModel, schema: type[M], messages: Sequence[BaseMessage]) -> Answer[M]:
    reply = await llm.ainvoke(list(messages), config=QUIET)
    value, error = _from_raw(schema, reply)
    return Answer(value, text_of(reply), error, add_usage(None, reply, messages))


def _rejected_as_bad_request(error: Exception) -> bool:
    """Whether the OpenAI client raised its 400. openai is a large import that a start does
    not need: if no model client has loaded it yet, the error cannot be one of its own."""
    if "openai" not in sys.modules:
        return False
    import openai

    return isinstance(error, openai.BadRequestError)


async def ask_structured(
    llm: BaseChatModel, schema: type[M], messages: Sequence[BaseMessage]
) -> Answer[M]:
    """One structured call; falls back to plain text when the model or server has no support."""
    try:
        runnable = llm.with_structured_output(schema, include_raw=True)
    except NotImplementedError:
        return await _plain(llm, schema, messages)
    try:
        result: Any = await runnable.ainvoke(list(messages), config=QUIET)
    except NotImplementedError:
        return await _plain(llm, schema, messages)
    except Exception as rejection:
        # Servers without response_format / tool support reject the call: ask in plain text.
        if not _rejected_as_bad_request(rejection):
            raise
        return await _plain(llm, schema, messages)
    raw = result.get("raw") if isinstance(result, dict) else None
    usage = add_usage(None, raw, messages) if isinstance(raw, BaseMessage) else no_usage()
    parsed = result.get("parsed") if isinstance(result, dict) else result
    raw_text = text_of(raw) if isinstance(raw, BaseMessage) else ""
    if isinstance(parsed, schema):
        return Answer(parsed, raw_text, None, usage)
    if isinstance(parsed, dict):
        value, error = parse_as(schema, parsed)
        return Answer(value, raw_text, error, usage)
    if isinstance(raw, BaseMessage):
        value, error = _from_raw(schema, raw)
        return Answer(value, raw_text, error, usage)
    return Answer(None, raw_text, "the model returned nothing", usage)


def repair_messages(
    messages: Sequence[BaseMessage], previous: str, error: str
) -> list[BaseMessage]:
    """The conversation for the repair attempt: the bad answer and what was wrong with it."""
    return [
        *messages,
        AIMessage(content=previous or "(empty reply)"),
        HumanMessage(
            content=(
                f"That answer is not valid: {error}\n"
                "Reply again with only the corrected JSON object, nothing else."
            )
        ),
    ]


def sum_usage(*usages: Usage) -> Usage:
    """Token usage added up."""
    return {
        "input_tokens": sum(u["input_tokens"] for u in usages),
        "output_tokens": sum(u["output_tokens"] for u in usages),
    }


def add_up_usage(left: Usage | None, right: Usage | None) -> Usage:
    """A state reducer summing token usage over nodes (parallel ones too); None resets it."""
    if right is None:
        return no_usage()
    return sum_usage(left or no_usage(), right)


async def ask_with_repair(
    llm: BaseChatModel,
    schema: type[M],
    messages: Sequence[BaseMessage],
    *,
    what: str,
    check: Callable[[M], str | None] | None = None,
) -> tuple[M, Usage]:
    """A validated answer, asking once more with the error when the first one is invalid.

    `check` adds rules the schema cannot express (it returns an error or None). Raises
    `OutputInvalid` naming `what` and the last error when the repaired answer fails too.
    """
    answer = await ask_structured(llm, schema, messages)
    error = answer.error or (check(answer.value) if check and answer.value else None)
    if answer.value is not None and error is None:
        return answer.value, answer.usage
    second = await ask_structured(
        llm, schema, repair_messages(messages, answer.raw, error or "invalid")
    )
    usage = sum_usage(answer.usage, second.usage)
    error = second.error or (check(second.value) if check and second.value else None)
    if second.value is not None and error is None:
        return second.value, usage
    raise OutputInvalid(
        f"{what}: the model's output failed validation after one repair attempt: {error}"
    )
