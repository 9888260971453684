"""The reliability suite: live server processes, real PostgreSQL and Redis, the fake upstream.

Every scenario records what it tried in the session ledger; the figures are
printed at the end of the run (and written to reliability-report.json) —
turns attempted / persisted / refused (409: never acknowledged, by policy) / abandoned (the
client dropped the request before any answer, and nothing was stored) / lost, faults injected,
hostile inputs, 5xx, cross-owner leaks.
``RELIABILITY_SOAK=N`` multiplies the load for a longer run by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.live_server import ROOT, LiveServer, current_database_url, free_port, listening, provider_env

SOAK = max(1, int(os.environ.get("RELIABILITY_SOAK", "1")))
REPORT = Path(__file__).resolve().parents[2] / "reliability-report.json"


class Ledger:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] += n

    def as_dict(self) -> dict:
        return {
            "turns_attempted": self.counts["turns_attempted"],
            "turns_persisted": self.counts["turns_persisted"],
            "turns_refused": self.counts["turns_refused"],
            "turns_abandoned": self.counts["turns_abandoned"],
            "turns_lost": self.counts["turns_lost"],
            "faults_injected": dict(sorted(self.faults.items())),
            "hostile_inputs": self.counts["hostile_inputs"],
            "server_5xx": self.counts["server_5xx"],
            "cross_owner_leaks": self.counts["cross_owner_leaks"],
        }


LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not any(LEDGER.counts.values()) and not LEDGER.faults:
        return
    figures = LEDGER.as_dict()
    terminalreporter.section("reliability figures")
    for key, value in figures.items():
        terminalreporter.write_line(f"{key}: {value}")
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")


@pytest.fixture
def reliability_env(django_db_blocker, fake_upstream_server):
    fake_upstream_server.reset()
    with django_db_blocker.unblock():
        database_url = current_database_url()
    up = fake_upstream_server
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        **provider_env(up),
        "LLM_READ_TIMEOUT": "2",
        "LLM_CONNECT_TIMEOUT": "2",
        "TURN_HEARTBEAT_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def live(reliability_env):
    server = LiveServer(reliability_env, server="uvicorn").start()
    yield server
    server.stop()


@pytest.fixture
def upstream_process():
    """The fake upstream in a process of its own; yields the provider URLs for a server's env.

    A scenario that drives the server from hundreds of client threads must not share the test
    process's interpreter lock with the upstream: with 400 threads in the test process, the
    in-process upstream answered a turn's request more than LLM_READ_TIMEOUT late and the server
    rightly reported 504 provider_timeout — the suite's own upstream saturated first (measured: the
    same load with this fixture gave no 504 at RELIABILITY_SOAK 20 and 30)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not listening(port):
        assert process.poll() is None and time.monotonic() < deadline, "the fake upstream did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    yield {"OPENAI_BASE_URL": f"{url}/v1", "GEMINI_BASE_URL": url, "ZAI_BASE_URL": f"{url}/api/paas/v4"}
    process.terminate()
    process.wait(10)
