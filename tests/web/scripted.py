"""What the scripted test model answers in the browser tests (and when developing the console)."""

from __future__ import annotations

from typing import Any

EMAIL = {"to": "ada@example.com", "subject": "Minutes", "body": "Here are the minutes."}
SENT = "I sent the email."
SLOW_WORDS = 40
SLOW_WORD_DELAY = 0.25


def slow_answer() -> str:
    """The long answer streamed word by word: `word1 word2 ... wordN`."""
    return " ".join(f"word{i}" for i in range(1, SLOW_WORDS + 1))


def respond(body: dict[str, Any]) -> str | dict[str, Any]:
    """A send_email call for "email", the knowledge base for "handbook", a slowly streamed
    answer for "slow", an echo otherwise; after a tool ran, its result in words."""
    messages = body.get("messages", [])
    if messages and messages[-1].get("role") == "tool":
        last_tool = messages[-1]
        if "email" in str(last_tool.get("content", "")).lower() or "sent" in str(
            last_tool.get("content", "")
        ):
            return SENT
        return "According to the handbook, employees get twenty-five days of holidays [1]."
    users = [m for m in messages if m.get("role") == "user"]
    last = str(users[-1].get("content")) if users else ""
    if "email" in last:
        return {"tool_call": {"name": "send_email", "arguments": EMAIL}}
    if "handbook" in last:
        return {"tool_call": {"name": "kb_search", "arguments": {"query": "paid holidays"}}}
    if "slow" in last:
        return {"text": slow_answer(), "word_delay": SLOW_WORD_DELAY}
    return f"You said: {last}"
