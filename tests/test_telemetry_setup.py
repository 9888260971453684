"""Telemetry is set up from the standard OTEL_* environment, and costs nothing without it: a server
process (start-up, a turn, shutdown) that was not asked for telemetry imports nothing of
OpenTelemetry; one given an OTLP endpoint exports the turn's spans and metrics there (HTTP/protobuf).

redis-py (8.x) imports ``opentelemetry.sdk.metrics`` by itself whenever the SDK is installed (its
own optional metrics, inactive unless initialised): the tests measure our imports against that
baseline, and once with OpenTelemetry made unimportable, where nothing of it may be loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.live_server import ROOT, current_database_url

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_PROCESS = r"""
import asyncio, json, sys

if sys.argv[2] == "without-opentelemetry":  # as if not installed: importing it fails


    class Uninstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("opentelemetry", "prometheus_client"):
                raise ImportError(f"No module named {name!r}")


    sys.meta_path.insert(0, Uninstalled())

import django

django.setup()
from chatproject.lifespan import LifespanApp
from conversations.turns.request import TurnRequest
from conversations.turns.service import turn_start


async def main():
    app = LifespanApp(app=None)
    await app.startup()
    turn = await turn_start(TurnRequest(session_key=sys.argv[1], content="hello"))
    events = [event async for event in turn.events()]
    loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "prometheus_client", "conversations.tel")))
    await app.shutdown()
    return events[-1].type, loaded


ending, loaded = asyncio.run(main())
print(json.dumps({"ending": ending, "loaded": loaded}))
"""


REDIS_ALONE = "import json, sys, redis; print(json.dumps(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))"


def run_server_process(session_key: str, *, installed: bool = True, **env: str) -> dict:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "METRICS_"))}
    child_env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=current_database_url(),
        LLM_PROVIDER="demo",
        DEMO_DELAY="0",
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-c", SERVER_PROCESS, session_key, "" if installed else "without-opentelemetry"],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# the do-nothing hooks, and the turn stage clock's flag (off; the standard library only)
OURS = ("conversations.telemetry", "conversations.telemetry.base", "conversations.telemetry.stages")


def imported_by_redis_alone() -> set[str]:
    done = subprocess.run([sys.executable, "-c", REDIS_ALONE], capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stdout))


def test_without_otel_settings_a_turn_imports_nothing_of_opentelemetry_beyond_redis_py():
    result = run_server_process("no-telemetry")
    assert result["ending"] == "completed"
    loaded = set(result["loaded"])
    assert loaded - imported_by_redis_alone() == set(OURS)
    assert "opentelemetry.sdk.trace" not in loaded  # neither the tracing SDK, the exporters ...
    assert not [m for m in loaded if m.startswith(("opentelemetry.exporter", "prometheus_client"))]
    assert "conversations.telemetry.otel" not in loaded  # ... nor our OpenTelemetry side


def test_without_otel_settings_and_without_the_sdk_importable_the_sdk_is_not_loaded():
    result = run_server_process("uninstalled", installed=False)
    assert result["ending"] == "completed"
    assert "opentelemetry.sdk" not in result["loaded"]
    assert set(result["loaded"]) == set(OURS)


def test_otel_sdk_disabled_wins_over_an_endpoint():
    result = run_server_process(
        "disabled",
        installed=False,
        OTEL_SDK_DISABLED="true",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert result["ending"] == "completed"
    assert set(result["loaded"]) == set(OURS)


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps each POST's path, content type and body."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector():
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", Collector.received
    server.shutdown()
    server.server_close()


def test_with_an_otlp_endpoint_the_turn_is_exported_over_http_protobuf(collector):
    endpoint, received = collector
    result = run_server_process(
        "exported", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="chat-test"
    )
    assert result["ending"] == "completed"
    assert "opentelemetry.sdk" in result["loaded"]
    assert {(path, kind) for path, kind, _ in received} == {
        ("/v1/traces", "application/x-protobuf"),
        ("/v1/metrics", "application/x-protobuf"),
    }

    spans, services = {}, set()
    for path, _, body in received:
        if path != "/v1/traces":
            continue
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            }
            for scope in resource_spans.scope_spans:
                spans |= {s.name: s for s in scope.spans}
    assert services == {"chat-test"}
    assert set(spans) == {"chat turn", "chat demo"}
    assert spans["chat demo"].parent_span_id == spans["chat turn"].span_id

    metrics = set()
    for path, _, body in received:
        if path == "/v1/metrics":
            export = ExportMetricsServiceRequest.FromString(body)
            metrics |= {
                m.name for rm in export.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            }
    # the demo's usage is an estimate: no token usage
    assert metrics == {"gen_ai.client.operation.duration", "gen_ai.client.operation.time_to_first_chunk"}


def settings_check(**env: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "METRICS_"))}
    child_env.update(DJANGO_SETTINGS_MODULE="tests.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"METRICS_ENABLED": "true"}, "METRICS_TOKEN"),  # never served to anyone who asks
        ({"METRICS_ENABLED": "true", "METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"METRICS_ENABLED": "true", "METRICS_BIND": "9464"}, "METRICS_BIND"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_telemetry_settings_that_cannot_work_stop_start_up_naming_the_variable(env, named):
    done = settings_check(**env)
    assert done.returncode != 0
    assert named in done.stderr and "Traceback" not in done.stderr  # one line naming it
