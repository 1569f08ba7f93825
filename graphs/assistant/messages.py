"""Small helpers over LangChain messages: their text, and token usage of a model call."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from graphs.assistant.state import Usage, no_usage


def text_of(message: BaseMessage) -> str:
    """The text of a message, joining text blocks when the content is a list."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def count_tokens(messages: Sequence[BaseMessage]) -> int:
    """An offline token estimate (about four characters a token); no tokenizer download."""
    return count_tokens_approximately(messages)


def add_usage(total: Usage | None, response: BaseMessage, prompt: Sequence[BaseMessage]) -> Usage:
    """`total` plus one call: the usage the model reported, else a local estimate."""
    base = total or no_usage()
    reported = response.usage_metadata if isinstance(response, AIMessage) else None
    if reported is not None:
        inputs, outputs = reported.get("input_tokens", 0), reported.get("output_tokens", 0)
    else:
        inputs, outputs = count_tokens(prompt), count_tokens([response])
    return {
        "input_tokens": base["input_tokens"] + int(inputs),
        "output_tokens": base["output_tokens"] + int(outputs),
    }


def transcript(messages: Sequence[BaseMessage], *, max_chars: int) -> str:
    """Messages as 'User: ...' lines for a prompt, each shortened to fit `max_chars` in total."""
    if not messages:
        return ""
    per_message = max(200, max_chars // len(messages))
    lines = []
    for message in messages:
        text = " ".join(text_of(message).split())
        if isinstance(message, AIMessage) and message.tool_calls:
            asked = ", ".join(call["name"] for call in message.tool_calls)
            text = f"{text} [called {asked}]".strip()
        if len(text) > per_message:
            text = text[:per_message].rstrip() + "…"
        lines.append(f"{_speaker(message)}: {text}")
    return "\n".join(lines)


def _speaker(message: BaseMessage) -> str:
    if message.type == "human":
        return "User"
    if message.type == "ai":
        return "Assistant"
    if message.type == "tool":
        return f"Tool {message.name or ''}".rstrip()
    return message.type.capitalize()
