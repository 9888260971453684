"""OpenTelemetry GenAI telemetry of real turns against the fake upstream (the real SDK over HTTP),
read with the OpenTelemetry SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from conversations import telemetry
from conversations.telemetry.otel import SECONDS_BUCKETS, TOKEN_BUCKETS, OtelTelemetry
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start

pytestmark = pytest.mark.django_db(transaction=True)


class Recorded:
    """What the in-memory exporter and reader got."""

    def __init__(self, *, capture_content: bool = False) -> None:
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.telemetry = OtelTelemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            capture_content=capture_content,
        )

    def spans(self, name: str | None = None) -> list:
        spans = sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time)
        return [s for s in spans if name is None or s.name == name]

    def turn_span(self):
        (span,) = self.spans("chat turn")
        return span

    def attempts(self) -> list:
        return [s for s in self.spans() if s.name != "chat turn"]

    def points(self, metric: str) -> list:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


@pytest.fixture
def recorded():
    rec = Recorded()
    previous = telemetry.install(rec.telemetry)
    yield rec
    telemetry.install(previous)
    rec.telemetry.shutdown()


async def run_turn(request: TurnRequest, *, stop_after_deltas: int | None = None) -> list:
    turn = await turn_start(request)
    events = []
    async for event in turn.events():
        events.append(event)
        if stop_after_deltas is not None and sum(e.type == "delta" for e in events) == stop_after_deltas:
            turn.stop()
    return events


async def settled(recorded: Recorded, spans: int) -> None:
    """The attempt of a stopped turn may end a moment after the turn (its task unwinds)."""
    for _ in range(200):
        if len(recorded.spans()) >= spans:
            return
        await asyncio.sleep(0.01)


async def test_a_completed_turn_is_one_turn_span_with_one_client_attempt(recorded, openai_upstream):
    request = TurnRequest(
        session_key="otel-done", content="hello [[chunks=3]]", temperature=0.3, max_tokens=200
    )
    events = await asyncio.wait_for(run_turn(request), 10)
    assert events[-1].type == "completed"

    turn = recorded.turn_span()
    (attempt,) = recorded.attempts()
    assert (turn.kind, attempt.kind) == (SpanKind.INTERNAL, SpanKind.CLIENT)
    assert attempt.name == "chat gpt-test"
    assert attempt.parent.span_id == turn.context.span_id
    assert attempt.context.trace_id == turn.context.trace_id
    attrs = dict(attempt.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "gpt-test"
    assert attrs["gen_ai.response.id"] == events[-1].response_id != ""
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        events[-2].input_tokens,
        3,
    )
    assert attrs["gen_ai.conversation.id"] == "otel-done"
    assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.max_tokens"]) == (0.3, 200)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == openai_upstream.port
    assert "error.type" not in attrs
    assert attempt.status.status_code == StatusCode.UNSET
    assert dict(turn.attributes) == {
        "gen_ai.conversation.id": "otel-done",
        "chat.turn.status": "complete",
        "chat.turn.attempts": 1,
    }
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs


async def test_retries_and_the_fallback_are_sibling_attempts_under_one_turn_span(
    recorded, openai_upstream, settings
):
    settings.LLM_RETRY_ATTEMPTS = 1
    settings.OPENAI_MODELS = ["gpt-test", "backup-model"]  # the fallback model is one OpenAI serves
    settings.LLM_FALLBACKS = ["openai:backup-model"]
    openai_upstream.push_fault("500", times=2, model="gpt-test")
    events = await asyncio.wait_for(
        run_turn(TurnRequest(session_key="otel-fb", content="hi [[chunks=2]]")), 10
    )
    assert (events[-1].type, events[-1].model) == ("completed", "backup-model")

    turn = recorded.turn_span()
    attempts = recorded.attempts()
    assert [a.name for a in attempts] == ["chat gpt-test", "chat gpt-test", "chat backup-model"]
    assert {a.parent.span_id for a in attempts} == {turn.context.span_id}
    assert {a.context.trace_id for a in attempts} == {turn.context.trace_id}
    for failed in attempts[:2]:
        assert failed.attributes["error.type"] == "provider_unavailable"
        assert failed.status.status_code == StatusCode.ERROR
        assert "gen_ai.response.model" not in failed.attributes
        assert "gen_ai.usage.input_tokens" not in failed.attributes
    answered = attempts[2]
    assert "error.type" not in answered.attributes
    assert answered.attributes["gen_ai.response.model"] == "backup-model"
    assert answered.attributes["gen_ai.usage.output_tokens"] == 2
    assert turn.attributes["chat.turn.attempts"] == 3
    assert turn.attributes["chat.turn.status"] == "complete"

    durations = recorded.points("gen_ai.client.operation.duration")
    by_error = {
        (p.attributes["gen_ai.request.model"], p.attributes.get("error.type")): p.count for p in durations
    }
    assert by_error == {("gpt-test", "provider_unavailable"): 2, ("backup-model", None): 1}
    assert [p.attributes["gen_ai.request.model"] for p in recorded.points("gen_ai.client.token.usage")] == [
        "backup-model",
        "backup-model",
    ]


async def test_a_failed_turn_sets_error_type_and_error_status_on_its_attempt_and_turn(
    recorded, openai_upstream
):
    events = await asyncio.wait_for(
        run_turn(TurnRequest(session_key="otel-fail", content="no [[fault=401]]")), 10
    )
    assert (events[-1].type, events[-1].code) == ("failed", "provider_auth_failed")

    (attempt,) = recorded.attempts()
    assert attempt.attributes["error.type"] == "provider_auth_failed"
    assert attempt.status.status_code == StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in attempt.attributes
    turn = recorded.turn_span()
    assert turn.status.status_code == StatusCode.ERROR
    assert turn.attributes["error.type"] == "provider_auth_failed"
    assert turn.attributes["chat.turn.status"] == "failed"
    assert recorded.points("gen_ai.client.token.usage") == []
    assert recorded.points("gen_ai.client.operation.time_to_first_chunk") == []
    (duration,) = recorded.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "provider_auth_failed"


async def test_a_turn_stopped_mid_answer_ends_its_attempt_cancelled_without_provider_usage(
    recorded, openai_upstream
):
    request = TurnRequest(session_key="otel-stop", content="long [[chunks=40 delay=0.05]]")
    events = await asyncio.wait_for(run_turn(request, stop_after_deltas=2), 10)
    assert (events[-1].status, events[-1].code) == ("interrupted", "stopped")
    assert events[-2].estimated  # the answer's usage is an estimate ...
    await settled(recorded, 2)

    (attempt,) = recorded.attempts()
    assert attempt.attributes["error.type"] == "cancelled"
    assert attempt.status.status_code == StatusCode.UNSET  # a stop is not a fault
    assert "gen_ai.usage.input_tokens" not in attempt.attributes  # ... and is not reported as usage
    assert "gen_ai.response.finish_reasons" not in attempt.attributes
    turn = recorded.turn_span()
    assert (turn.attributes["chat.turn.status"], turn.attributes["chat.turn.error_code"]) == (
        "interrupted",
        "stopped",
    )
    assert turn.status.status_code == StatusCode.UNSET
    assert recorded.points("gen_ai.client.token.usage") == []
    (duration,) = recorded.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "cancelled"
    (first_chunk,) = recorded.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 1


async def test_metrics_carry_the_operation_provider_and_model_and_the_recommended_buckets(
    recorded, openai_upstream
):
    await asyncio.wait_for(
        run_turn(TurnRequest(session_key="otel-metrics", content="count [[chunks=4]]")), 10
    )

    tokens = {p.attributes["gen_ai.token.type"]: p for p in recorded.points("gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["output"].sum == 4 and tokens["input"].sum > 0
    assert tuple(tokens["output"].explicit_bounds) == TOKEN_BUCKETS
    (duration,) = recorded.points("gen_ai.client.operation.duration")
    (first_chunk,) = recorded.points("gen_ai.client.operation.time_to_first_chunk")
    assert tuple(duration.explicit_bounds) == tuple(first_chunk.explicit_bounds) == SECONDS_BUCKETS
    assert 0 < first_chunk.sum <= duration.sum
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.response.model": "gpt-test",
        "server.address": "127.0.0.1",
        "server.port": openai_upstream.port,
    }
    assert dict(duration.attributes) == dict(first_chunk.attributes) == expected
    assert dict(tokens["input"].attributes) == {**expected, "gen_ai.token.type": "input"}
    assert "gen_ai.conversation.id" not in str(recorded.reader.get_metrics_data().to_json())
    assert "otel-metrics" not in recorded.reader.get_metrics_data().to_json()


async def test_message_content_is_captured_only_when_opted_in(openai_upstream):
    rec = Recorded(capture_content=True)
    previous = telemetry.install(rec.telemetry)
    try:
        request = TurnRequest(
            session_key="otel-content", content="secret plans [[chunks=2]]", system="Be brief."
        )
        events = await asyncio.wait_for(run_turn(request), 10)
    finally:
        telemetry.install(previous)
    (attempt,) = rec.attempts()
    assert orjson.loads(attempt.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "secret plans [[chunks=2]]"}]}
    ]
    assert orjson.loads(attempt.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert orjson.loads(attempt.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": events[-1].content}],
            "finish_reason": "stop",
        }
    ]


async def test_the_demo_provider_reports_no_usage_and_no_server(recorded, settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0
    events = await asyncio.wait_for(run_turn(TurnRequest(session_key="otel-demo", content="hi")), 10)
    assert events[-1].type == "completed"
    (attempt,) = recorded.attempts()
    assert attempt.name == "chat demo"
    assert attempt.attributes["gen_ai.provider.name"] == "demo"
    assert "server.address" not in attempt.attributes
    assert "gen_ai.usage.input_tokens" not in attempt.attributes  # the demo's counts are estimates
    assert recorded.points("gen_ai.client.token.usage") == []


def test_a_turn_through_the_openai_compatible_endpoint_is_traced(recorded, sdk):
    stream = sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "over http [[chunks=3]]"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text
    (attempt,) = recorded.attempts()
    assert attempt.name == "chat gpt-test"
    assert attempt.attributes["gen_ai.usage.output_tokens"] == 3
    assert recorded.turn_span().attributes["chat.turn.status"] == "complete"
