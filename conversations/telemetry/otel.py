"""Turns and provider attempts as OpenTelemetry spans and GenAI metrics (semantic conventions).

Imported only when telemetry is on. One ``chat turn`` span (INTERNAL) per turn, with one
``chat {gen_ai.request.model}`` span (CLIENT) per provider attempt under it, retries and fallbacks
as siblings. Each attempt records ``gen_ai.client.operation.duration``,
``gen_ai.client.operation.time_to_first_chunk`` and, when the provider reported usage (estimates
are not usage), ``gen_ai.client.token.usage``. Metric attributes never name a session or a user.
The tracer and meter come from providers handed in (the SDK's, or tests' in-memory ones).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from conversations.telemetry.base import AttemptTrace, Telemetry, TurnOutcome, TurnTrace
from conversations.telemetry.names import provider_name, server_of

if TYPE_CHECKING:
    from providers.base import Provider, ProviderChunk, ProviderRequest

SCOPE = "chatproject.conversations"
TURN_SPAN = "chat turn"
OPERATION = "chat"

#: The GenAI semantic conventions' recommended explicit bucket boundaries.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

CANCELLED = "cancelled"


def error_type(exc: BaseException) -> str:
    """Our error code for a provider error, ``cancelled`` for a cancellation, else the exception's class."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return CANCELLED
    return type(exc).__qualname__


class OtelTelemetry(Telemetry):
    enabled = True

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
        prometheus_registry: Any = None,
    ) -> None:
        self.tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(SCOPE)
        meter = (meter_provider or NoOpMeterProvider()).get_meter(SCOPE)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.capture_content = capture_content
        self.providers = [p for p in (tracer_provider, meter_provider) if p is not None]
        self.prometheus_registry = prometheus_registry  # what /metrics shows (a PrometheusMetricReader's)
        self.closers: list[Callable[[], None]] = []  # what shutdown stops besides the providers

    def turn(self, session_key: str) -> TurnTrace:
        return OtelTurn(self, session_key)

    def prometheus_exposition(self) -> tuple[bytes, str] | None:
        if self.prometheus_registry is None:
            return None
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.prometheus_registry), CONTENT_TYPE_LATEST

    def shutdown(self) -> None:
        for close in self.closers:
            close()
        for provider in self.providers:
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                shutdown()


class OtelTurn(TurnTrace):
    __slots__ = ("attempts", "context", "session_key", "span", "telemetry")

    def __init__(self, telemetry: OtelTelemetry, session_key: str) -> None:
        self.telemetry = telemetry
        self.session_key = session_key
        self.span = telemetry.tracer.start_span(
            TURN_SPAN, kind=SpanKind.INTERNAL, attributes={"gen_ai.conversation.id": session_key}
        )
        self.context = trace.set_span_in_context(self.span)
        self.attempts = 0

    def attempt(self, provider: Provider, request: ProviderRequest) -> AttemptTrace:
        self.attempts += 1
        return OtelAttempt(self, provider, request)

    def end(self, outcome: TurnOutcome) -> None:
        span = self.span
        if not span.is_recording():
            return
        span.set_attribute("chat.turn.status", outcome.status)
        span.set_attribute("chat.turn.attempts", self.attempts)
        if outcome.error_code:
            span.set_attribute("chat.turn.error_code", outcome.error_code)
        if outcome.status == "failed":
            span.set_attribute("error.type", outcome.error_code or "_OTHER")
            span.set_status(Status(StatusCode.ERROR, outcome.error_code or None))
        span.end()


class OtelAttempt(AttemptTrace):
    __slots__ = (
        "finish_reason",
        "first_chunk",
        "metric_attributes",
        "parts",
        "request",
        "response_id",
        "span",
        "started",
        "turn",
        "usage",
    )

    def __init__(self, turn: OtelTurn, provider: Provider, request: ProviderRequest) -> None:
        self.turn, self.request = turn, request
        common: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": provider_name(provider),
            "gen_ai.request.model": request.model,
        }
        server = server_of(provider)
        if server is not None:
            common["server.address"], common["server.port"] = server
        self.metric_attributes = common
        attributes = {**common, "gen_ai.conversation.id": turn.session_key}
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if turn.telemetry.capture_content:
            attributes.update(_input_content(request))
        self.span = turn.telemetry.tracer.start_span(
            f"{OPERATION} {request.model}", context=turn.context, kind=SpanKind.CLIENT, attributes=attributes
        )
        self.started = time.monotonic()
        self.first_chunk: float | None = None
        self.usage = None
        self.finish_reason = self.response_id = None
        self.parts: list[str] | None = [] if turn.telemetry.capture_content else None

    def chunk(self, chunk: ProviderChunk) -> None:
        if self.first_chunk is None:
            self.first_chunk = time.monotonic()
            self.turn.telemetry.time_to_first_chunk.record(
                self.first_chunk - self.started, self._attributes_with_response()
            )
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.response_id:
            self.response_id = chunk.response_id
        if self.parts is not None and chunk.text:
            self.parts.append(chunk.text)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        telemetry, span = self.turn.telemetry, self.span
        attributes = self._attributes_with_response()
        usage = self.usage if self.usage is not None and not self.usage.estimated else None
        if usage is not None:
            telemetry.token_usage.record(usage.input_tokens, {**attributes, "gen_ai.token.type": "input"})
            telemetry.token_usage.record(usage.output_tokens, {**attributes, "gen_ai.token.type": "output"})
        if exc is not None:
            attributes["error.type"] = error_type(exc)
        telemetry.duration.record(time.monotonic() - self.started, attributes)
        if not span.is_recording():
            return
        if "gen_ai.response.model" in attributes:
            span.set_attribute("gen_ai.response.model", attributes["gen_ai.response.model"])
        if self.response_id:
            span.set_attribute("gen_ai.response.id", self.response_id)
        if self.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", (self.finish_reason,))
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if self.parts is not None and self.first_chunk is not None:
            span.set_attribute("gen_ai.output.messages", _output_content(self.parts, self.finish_reason))
        if exc is not None:
            span.set_attribute("error.type", attributes["error.type"])
            if attributes["error.type"] != CANCELLED:  # stopped by the user or a client gone: not a fault
                span.set_status(Status(StatusCode.ERROR, str(exc) or None))
        span.end()

    def _attributes_with_response(self) -> dict[str, Any]:
        """The metric attributes; once the provider answered, with the model that answered."""
        attributes = dict(self.metric_attributes)
        if self.first_chunk is not None:
            # The providers' chunks do not carry the model the upstream reports: the one asked is it.
            attributes["gen_ai.response.model"] = self.request.model
        return attributes


def _input_content(request: ProviderRequest) -> dict[str, str]:
    """``gen_ai.input.messages`` and ``gen_ai.system_instructions`` as the conventions' JSON."""
    messages = [{"role": m.role, "parts": [{"type": "text", "content": m.content}]} for m in request.messages]
    content = {"gen_ai.input.messages": orjson.dumps(messages).decode()}
    if request.system:
        content["gen_ai.system_instructions"] = orjson.dumps(
            [{"type": "text", "content": request.system}]
        ).decode()
    return content


def _output_content(parts: list[str], finish_reason: str | None) -> str:
    message = {"role": "assistant", "parts": [{"type": "text", "content": "".join(parts)}]}
    message["finish_reason"] = finish_reason or ""
    return orjson.dumps([message]).decode()
