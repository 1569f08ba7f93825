"""Langfuse tracing of agent runs (OpenTelemetry under the hood), off without LANGFUSE_PUBLIC_KEY.

Each run gets one trace: a root `agent` observation named after the graph, with the run's user id,
the conversation id as the Langfuse session, and graph, model and run id as tags and metadata,
propagated to every span below it. Langfuse's LangChain callback handler adds the graph's nodes,
model calls (tokens, time to first token) and tool calls as child observations.

An outage of Langfuse never slows or fails a request: spans are queued in memory and exported by
a background thread (OpenTelemetry's batch processor; a full queue drops spans), and every call
into the SDK made on the request path is local. At shutdown the queue gets a few seconds to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from langchain_core.callbacks import BaseCallbackHandler

from app.core.config import Settings
from app.core.logging import get_logger

# Langfuse and the OpenTelemetry SDK are imported only when tracing is on: they cost every
# start (and every `mai` command) a noticeable share of its import time otherwise.
if TYPE_CHECKING:
    from langfuse import Langfuse
    from opentelemetry.sdk.trace import TracerProvider

log = get_logger(__name__)

SERVICE_NAME: Final = "mai"
# How long shutdown waits for queued spans to reach Langfuse.
SHUTDOWN_FLUSH_SECONDS: Final = 3.0
# Langfuse limits propagated attribute values to 200 characters.
_MAX_ATTRIBUTE = 200

# The Langfuse SDK keeps one exporter per public key and process; the tracer provider it
# exports from is kept the same way, so app instances sharing a process share both.
_providers: dict[str, TracerProvider] = {}
_providers_lock = threading.Lock()


def _provider_for(public_key: str) -> TracerProvider:
    with _providers_lock:
        provider = _providers.get(public_key)
        if provider is None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider

            # No exit hook of its own: Langfuse's flushes it at exit (one hook, not two).
            provider = TracerProvider(
                resource=Resource.create({"service.name": SERVICE_NAME}), shutdown_on_exit=False
            )
            _providers[public_key] = provider
        return provider


@dataclass
class RunTrace:
    """The tracing of one run: the callbacks to pass to the graph and the trace id for logs.

    A disabled trace has no callbacks and no trace id; its methods do nothing.
    """

    trace_id: str | None = None
    callbacks: list[BaseCallbackHandler] = field(default_factory=list)
    _span: Any = None

    def finish(self, *, output: Any = None, error: str | None = None) -> None:
        """Record the run's outcome on its root observation (the answer, or the error code)."""
        if self._span is None:
            return
        try:
            if error is not None:
                self._span.update(output=output, level="ERROR", status_message=error)
            else:
                self._span.update(output=output)
        except Exception:
            log.warning("tracing_update_failed", exc_info=True)


class Tracing:
    """Agent-run tracing for one app instance: Langfuse when configured, otherwise a no-op.

    `Tracing()` is the disabled instance; `Tracing.from_settings(settings)` the configured one.
    """

    def __init__(
        self,
        client: Langfuse | None = None,
        provider: TracerProvider | None = None,
        public_key: str | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.public_key = public_key

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        """Langfuse tracing when LANGFUSE_PUBLIC_KEY (and the secret key) are set, else disabled."""
        public_key, secret_key = settings.langfuse_public_key, settings.langfuse_secret_key
        if public_key is None or secret_key is None:
            return cls()
        from langfuse import Langfuse

        provider = _provider_for(public_key)
        # Constructing the client connects to nothing; export happens in the background.
        client = Langfuse(
            public_key=public_key,
            secret_key=secret_key.get_secret_value(),
            base_url=settings.langfuse_host,
            tracer_provider=provider,
            environment=settings.env.value,
        )
        return cls(client, provider, public_key)

    @property
    def enabled(self) -> bool:
        """Whether runs are traced."""
        return self.client is not None

    def trace_id_for(self, run_id: str) -> str | None:
        """The Langfuse trace id of a run (derived from its id), or None when disabled."""
        if self.client is not None:
            return str(self.client.create_trace_id(seed=run_id))
        if not self.enabled:
            return None
        from langfuse import Langfuse

        # Derived from the run id alone, so it is known before the client is built.
        return str(Langfuse.create_trace_id(seed=run_id))

    @contextlib.contextmanager
    def trace_run(
        self,
        *,
        graph: str,
        run_id: str,
        user_id: str,
        conversation_id: str,
        model: str | None,
        input: Any = None,
        end_user: str | None = None,
    ) -> Iterator[RunTrace]:
        """Open the trace of one run around the graph's execution (a no-op when disabled).

        Use it in the task that runs the graph, around the whole run, and pass
        `trace.callbacks` in the graph's config. The trace id is derived from the run id, so a
        run can be found in Langfuse from its id alone (`Langfuse.create_trace_id(seed=run_id)`).
        A failure inside the SDK is logged and the run goes on untraced.
        """
        if self.client is None:
            yield RunTrace()
            return
        with contextlib.ExitStack() as stack:
            try:
                trace = self._open(
                    stack, graph, run_id, user_id, conversation_id, model, input, end_user
                )
            except Exception:
                log.warning("tracing_start_failed", run_id=run_id, exc_info=True)
                stack.close()
                trace = RunTrace()
            yield trace

    def _open(
        self,
        stack: contextlib.ExitStack,
        graph: str,
        run_id: str,
        user_id: str,
        conversation_id: str,
        model: str | None,
        input: Any,
        end_user: str | None = None,
    ) -> RunTrace:
        assert self.client is not None
        tags = [f"graph:{graph}"] + ([f"model:{model}"[:_MAX_ATTRIBUTE]] if model else [])
        metadata = {"run_id": run_id, "graph": graph, "model": model or "unknown"}
        if end_user:
            # The client's own end user (OpenAI's `user`): who the run was for, past MAI's user.
            metadata["end_user"] = end_user[:_MAX_ATTRIBUTE]
        from langfuse import propagate_attributes
        from langfuse.langchain import CallbackHandler

        trace_id = self.client.create_trace_id(seed=run_id)
        span = stack.enter_context(
            self.client.start_as_current_observation(
                name=graph,
                as_type="agent",
                trace_context={"trace_id": trace_id},
                input=input,
                metadata=metadata,
            )
        )
        stack.enter_context(
            propagate_attributes(
                user_id=user_id,
                session_id=conversation_id,
                tags=tags,
                metadata=metadata,
                trace_name=graph,
            )
        )
        handler = CallbackHandler(public_key=self.public_key)
        return RunTrace(trace_id=trace_id, callbacks=[handler], _span=span)

    async def aclose(self) -> None:
        """Give queued spans SHUTDOWN_FLUSH_SECONDS to reach Langfuse, without blocking the loop.

        The export runs in a daemon thread: the SDK's flush ignores timeouts, and a hanging
        Langfuse must not hold up the shutdown (nor the event loop's executor). When the spans
        could not be delivered in time, the exporter is shut down too, so that the SDK's exit
        hook does not wait on Langfuse again; tracing in this process ends with it.
        """
        if self.provider is None:
            return
        provider = self.provider
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def settle(flushed: bool) -> None:
            if not done.done():
                done.set_result(flushed)

        def flush() -> None:
            try:
                flushed = provider.force_flush()
            except Exception:
                flushed = False
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, flushed)

        threading.Thread(target=flush, name="langfuse-flush", daemon=True).start()
        try:
            flushed = await asyncio.wait_for(asyncio.shield(done), SHUTDOWN_FLUSH_SECONDS)
        except TimeoutError:
            flushed = False
        if not flushed:
            log.warning("tracing_flush_incomplete", seconds=SHUTDOWN_FLUSH_SECONDS)
            threading.Thread(target=provider.shutdown, name="langfuse-stop", daemon=True).start()


def start_tracing(settings: Settings, stack: contextlib.AsyncExitStack) -> Tracing:
    """Set up tracing for an app instance; the queued spans are flushed when `stack` closes."""
    try:
        tracing = Tracing.from_settings(settings)
    except Exception:
        # A broken tracing setup must not keep the service from starting.
        log.exception("tracing_setup_failed")
        return Tracing()
    stack.push_async_callback(tracing.aclose)
    if tracing.enabled:
        log.info("tracing_enabled", langfuse_host=settings.langfuse_host)
    return tracing
