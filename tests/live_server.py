"""Run the real ASGI application in a child server process on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def current_database_url() -> str:
    """A DATABASE_URL naming the database the test run is using (the test database)."""
    from urllib.parse import quote

    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = quote(conf["USER"] or "", safe="")
    if conf.get("PASSWORD"):
        auth += ":" + quote(conf["PASSWORD"], safe="")
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


# The fake upstream bills nothing: its OpenAI models are declared free, as an operator declares a
# self-hosted server's (a model without a price is refused while a budget applies: docs/usage.md).
FAKE_UPSTREAM_PRICES = {"openai:*": {"input": 0, "output": 0}}


def provider_env(upstream) -> dict[str, str]:
    """Environment for a server process whose providers (OpenAI first) answer from the fake upstream."""
    return {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": upstream.openai_base_url,
        "OPENAI_MODEL": "gpt-test",
        "PRICES": json.dumps(FAKE_UPSTREAM_PRICES),
        "GEMINI_API_KEY": "gem-test",
        "GEMINI_BASE_URL": upstream.gemini_base_url,
        "ZAI_API_KEY": "id.secret",
        "ZAI_BASE_URL": upstream.zai_base_url,
        "LLM_RETRY_ATTEMPTS": "0",
    }


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections there (a local PostgreSQL, Redis...)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A server process serving chatproject.asgi on a free port (uvicorn or daphne)."""

    def __init__(
        self, env: Mapping[str, str] | None = None, *, server: str = "daphne", port: int | None = None
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        if server == "daphne":
            self.cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        else:
            self.cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port)]
            self.cmd += [
                "--no-proxy-headers",  # as the README's command: the app alone trusts X-Forwarded-*
                "--no-access-log",
                "--timeout-graceful-shutdown",
                self.env.get("GRACEFUL_TIMEOUT", "5"),
            ]
        self.cmd.append("chatproject.asgi:application")
        self.proc: subprocess.Popen | None = None

    def start(self) -> LiveServer:
        # A file, not a pipe: a chatty server would block once an unread pipe fills up.
        self.log = tempfile.NamedTemporaryFile(prefix="live-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                httpx.get(self.url + "/health", timeout=10)
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start within 30 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        """What the server printed so far (its log lines)."""
        return Path(self.log.name).read_text(errors="replace")


@contextmanager
def live_server(env: Mapping[str, str] | None = None, *, server: str = "daphne") -> Iterator[str]:
    """Start ``daphne`` (or ``uvicorn``) serving chatproject.asgi; yield its base URL."""
    server_process = LiveServer(env, server=server).start()
    try:
        yield server_process.url
    finally:
        server_process.stop()
