"""The OpenTelemetry SDK set up from settings: exporters, readers, resource, the Prometheus reader.

Imported only when telemetry is on. The SDK reads the rest of the standard ``OTEL_*`` environment
itself (``OTEL_EXPORTER_OTLP_ENDPOINT`` and its per-signal forms, ``…_HEADERS``, ``…_TIMEOUT``,
``…_COMPRESSION``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``);
the settings say which signals are exported where (chatproject/settings.py, docs/telemetry.md).
The providers are this project's own, not installed as OpenTelemetry's global ones.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from conversations.telemetry.otel import OtelTelemetry

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "chat-backend"


def telemetry_from_settings() -> OtelTelemetry:
    resource = _resource()
    tracer_provider = None
    if settings.OTEL_TRACES_EXPORTER:
        tracer_provider = TracerProvider(resource=resource)
        for name in settings.OTEL_TRACES_EXPORTER:
            tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(name)))
    readers: list[Any] = [
        PeriodicExportingMetricReader(_metric_exporter(n)) for n in settings.OTEL_METRICS_EXPORTER
    ]
    registry = None
    if settings.METRICS_ENABLED:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, ProcessCollector

        registry = CollectorRegistry()  # ours, not prometheus_client's global one
        ProcessCollector(registry=registry)
        readers.append(PrometheusMetricReader(registry=registry))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    telemetry = OtelTelemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=settings.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
        prometheus_registry=registry,
    )
    if registry is not None and settings.METRICS_BIND:
        telemetry.closers.append(_serve_metrics(settings.METRICS_BIND, registry))
    return telemetry


def _serve_metrics(bind: tuple[str, int], registry: Any) -> Any:
    """prometheus_client's own HTTP server on ``METRICS_BIND``, in a daemon thread; returns its closer.

    A port already taken (another worker process of this host got it first) is logged, not fatal.
    """
    from prometheus_client import start_http_server

    host, port = bind
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        logger.warning("METRICS_BIND %s:%s: cannot listen (%s); /metrics not served there", host, port, exc)
        return lambda: None
    logger.info("serving Prometheus metrics on http://%s:%s/metrics", host, server.server_port)

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return close


def _resource() -> Resource:
    resource = Resource.create(
        {SERVICE_NAME: settings.OTEL_SERVICE_NAME} if settings.OTEL_SERVICE_NAME else {}
    )
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _span_exporter(name: str) -> Any:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _metric_exporter(name: str) -> Any:
    if name == "console":
        return ConsoleMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()
