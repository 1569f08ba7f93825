"""The one fake allowed: a scripted chat model (GenericFakeChatModel with tools and structure).

Script it with a list of replies (consumed in order: `AIMessage`, plain strings, or dicts for
structured output), or with a `respond(messages) -> AIMessage | str` function for runs whose
order is not fixed (concurrent streams, benchmarks). Streaming yields the content word by word and
a last chunk with the tool calls and usage metadata, as an OpenAI-compatible server would.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field

Reply = AIMessage | str | dict[str, Any] | BaseException
Responder = Callable[[list[BaseMessage]], AIMessage | str]


def count_tokens(text: str) -> int:
    """A deterministic token count for the fake's usage metadata: one per word or symbol."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def tool_call(name: str, args: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """A tool call as a model would ask for it."""
    return {
        "name": name,
        "args": args,
        "id": call_id or f"call_{uuid.uuid4().hex[:12]}",
        "type": "tool_call",
    }


def ask_tools(*calls: dict[str, Any], content: str = "") -> AIMessage:
    """A model reply that asks for one or more tool calls."""
    return AIMessage(content=content, tool_calls=list(calls))


class ScriptedChatModel(GenericFakeChatModel):
    """A chat model that answers from a script; supports bind_tools and with_structured_output."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))
    script: list[Any] = Field(default_factory=list)
    respond: Any = None
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    model_name: str = "scripted-fake"
    report_usage: bool = True
    # False: a model without structured output (with_structured_output raises NotImplementedError).
    structured_output: bool = True
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def remaining(self) -> int:
        """Replies left in the script."""
        return len(self.script)

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        with self.lock:
            self.calls.append(list(messages))
            if self.respond is not None:
                reply: Any = self.respond(list(messages))
            elif self.script:
                reply = self.script.pop(0)
            else:
                raise AssertionError(
                    f"ScriptedChatModel ran out of replies after {len(self.calls) - 1} calls; "
                    f"last input: {messages[-1].content if messages else None!r}"
                )
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, dict):
            reply = AIMessage(content=json.dumps(reply))
        if isinstance(reply, str):
            reply = AIMessage(content=reply)
        message = reply.model_copy(deep=True)
        if message.id is None:
            message.id = f"run-{uuid.uuid4()}"
        if self.report_usage and message.usage_metadata is None:
            prompt = " ".join(str(m.content) for m in messages)
            completion = str(message.content) + "".join(
                json.dumps(c["args"]) for c in message.tool_calls
            )
            inputs, outputs = count_tokens(prompt), count_tokens(completion)
            message.usage_metadata = {
                "input_tokens": inputs,
                "output_tokens": outputs,
                "total_tokens": inputs + outputs,
            }
        message.response_metadata = {"model_name": self.model_name, **message.response_metadata}
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _chunks(self, message: AIMessage) -> Iterator[AIMessageChunk]:
        content = message.content if isinstance(message.content, str) else ""
        tokens = [t for t in re.split(r"(\s)", content) if t] if content else []
        for token in tokens:
            yield AIMessageChunk(content=token, id=message.id)
        yield AIMessageChunk(
            content="",
            id=message.id,
            tool_call_chunks=[
                {
                    "name": c["name"],
                    "args": json.dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                run_manager.on_llm_new_token(
                    chunk.content, chunk=ChatGenerationChunk(message=chunk)
                )
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(self._next(messages)):
            generation = ChatGenerationChunk(message=chunk)
            if run_manager and isinstance(chunk.content, str) and chunk.content:
                await run_manager.on_llm_new_token(chunk.content, chunk=generation)
            yield generation

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:  # type: ignore[override]
        """Remember the tools (tests can assert on them) and answer from the script as usual."""
        self.bound_tools = [convert_to_openai_tool(t) for t in tools]
        return self

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Parse the next reply's content as JSON into the schema, as a tool-calling model would."""
        if not self.structured_output:
            raise NotImplementedError("this model has no structured output")

        def convert(message: BaseMessage) -> Any:
            try:
                raw = json.loads(str(message.content))
                parsed: Any = raw
                if isinstance(schema, type) and issubclass(schema, BaseModel):
                    parsed = schema.model_validate(raw)
            except (ValueError, TypeError) as error:
                if include_raw:
                    return {"raw": message, "parsed": None, "parsing_error": error}
                raise
            if include_raw:
                return {"raw": message, "parsed": parsed, "parsing_error": None}
            return parsed

        async def parse(value: LanguageModelInput) -> Any:
            return convert(await self.ainvoke(value))

        def parse_sync(value: LanguageModelInput) -> Any:
            return convert(self.invoke(value))

        return RunnableLambda(parse_sync, afunc=parse)


def scripted(*replies: Reply, **kwargs: Any) -> ScriptedChatModel:
    """A scripted model answering these replies in order."""
    return ScriptedChatModel(script=list(replies), **kwargs)


def responding(respond: Responder, **kwargs: Any) -> ScriptedChatModel:
    """A model answering each call with respond(messages)."""
    return ScriptedChatModel(respond=respond, **kwargs)
