"""The repository's nginx configuration (deploy/nginx.conf), run with Debian's nginx in front of uvicorn.

The compose file runs the same file in the official nginx image; only the two addresses differ (the
port nginx listens on, the app's address). What it must do: streams and WebSockets pass unbuffered,
a client that sends its headers slowly is cut, and the app's client address (rate limits) is the one
nginx saw — never what a client wrote in X-Forwarded-For. Skipped without nginx, unless
PROXY_REQUIRED is set (CI installs nginx and sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.factories import make_conversation
from tests.live_server import ROOT, LiveServer, current_database_url, free_port, provider_env
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SLOW = "[[chunks=8 delay=0.15]]"


def _require_nginx() -> str:
    if NGINX:
        return NGINX
    if os.environ.get("PROXY_REQUIRED"):
        pytest.fail("nginx is not installed (PROXY_REQUIRED is set): apt-get install nginx")
    pytest.skip("nginx is not installed (apt-get install nginx)")


def proxy_config(listen_port: int, app_port: int) -> str:
    """deploy/nginx.conf with only its two addresses replaced."""
    text = CONFIG.read_text()
    for old in ("listen 80;", "server web:8000;"):
        assert text.count(old) == 1, f"deploy/nginx.conf should say {old!r} exactly once"
    return text.replace("listen 80;", f"listen 127.0.0.1:{listen_port};").replace(
        "server web:8000;", f"server 127.0.0.1:{app_port};"
    )


class Nginx:
    def __init__(self, app_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-"))
        (self.dir / "nginx.conf").write_text(proxy_config(self.port, app_port))

    def start(self) -> Nginx:
        directives = f"daemon off; pid {self.dir / 'nginx.pid'};"
        cmd = [_require_nginx(), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g", directives]
        check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.log = open(self.dir / "stderr.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert self.proc.poll() is None, (self.dir / "stderr.log").read_text()
                assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def proxied(django_db_setup, django_db_blocker, fake_upstream_server):
    """uvicorn as the README runs it (--no-proxy-headers) behind nginx as deploy/nginx.conf says."""
    _require_nginx()
    with django_db_blocker.unblock():
        database_url = current_database_url()
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        **provider_env(fake_upstream_server),
        "ALLOW_ANONYMOUS": "true",
        "TRUSTED_PROXIES": "1",
        "TRUST_X_FORWARDED_PROTO": "true",
        "ALLOWED_HOSTS": "127.0.0.1",
        "ALLOWED_ORIGINS": "",
        "RATE_LIMIT_TURNS": "3/minute",
        "LOG_LEVEL": "WARNING",
    }
    app = LiveServer(env, server="uvicorn", port=port).start()
    proxy = Nginx(app.port).start()
    yield proxy
    proxy.stop()
    app.stop()


def client_from(address: str) -> httpx.Client:
    """An HTTP client whose connections leave from ``address`` (any 127.x.y.z is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def arrivals_until(lines, stop: str) -> tuple[list[str], list[str]]:
    """(what had arrived when the first text delta arrived, everything) of a streamed body."""
    seen: list[str] = []
    at_first = None
    for chunk in lines:
        seen.append(chunk)
        if at_first is None and ('"delta"' in chunk or '"text-delta"' in chunk):
            at_first = list(seen)
        if stop in chunk:
            break
    assert at_first is not None, "".join(seen)[:500]
    return at_first, seen


def test_the_native_sse_stream_arrives_unbuffered(proxied, upstream):
    with (
        client_from("127.0.0.10") as client,
        client.stream(
            "POST",
            f"{proxied.url}/api/sessions/proxy-sse/messages",
            json={"content": f"stream {SLOW}"},
            headers={"Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        at_first, everything = arrivals_until(response.iter_text(), "event: completed")
    assert "completed" not in "".join(at_first), "the first delta arrived with the end: buffered"
    frames = SSEParser().feed("".join(everything))
    assert [f.event for f in frames].count("delta") == 8


def test_the_ai_sdk_stream_arrives_unbuffered(proxied, upstream):
    body = {
        "id": "proxy-ai-sdk",
        "trigger": "submit-message",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": f"hi {SLOW}"}]}],
    }
    with (
        client_from("127.0.0.11") as client,
        client.stream("POST", f"{proxied.url}/api/ai-sdk/chat", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        at_first, everything = arrivals_until(response.iter_text(), "[DONE]")
    assert '"finish"' not in "".join(at_first), "the first delta arrived with the end: buffered"
    assert "".join(everything).count('"text-delta"') == 8


def test_a_websocket_is_upgraded_and_its_frames_arrive_as_they_are_sent(proxied, upstream):
    make_conversation(owner=None, session_key="proxy-ws")
    url = proxied.url.replace("http://", "ws://") + "/ws/chat/proxy-ws/"
    with ws_connect(url, origin=proxied.url) as socket_:
        socket_.send(json.dumps({"type": "message", "content": f"ws {SLOW}"}))
        frames = []
        while not frames or frames[-1]["type"] not in ("done", "completed", "failed", "error"):
            frames.append(json.loads(socket_.recv(timeout=20)))
            if frames[-1]["type"] == "delta" and len([f for f in frames if f["type"] == "delta"]) == 1:
                first_delta_at = time.monotonic()
        done_at = time.monotonic()
    assert [f["type"] for f in frames].count("delta") == 8, frames
    # 8 chunks 0.15 s apart: the first arrived while the others were still being generated.
    assert done_at - first_delta_at > 0.5


def test_a_client_sending_its_headers_slowly_is_cut(proxied):
    with socket.create_connection(("127.0.0.1", proxied.port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 25:
            try:
                sock.sendall(b"X")
                time.sleep(1)
            except OSError:
                closed = True
                break
            sock.settimeout(0.01)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except OSError:
                closed = True
                break
            sock.settimeout(30)
    assert closed, "nginx kept a socket open that had not finished its headers in 25 s"
    # client_header_timeout is 10 s: cut between 10 s and 25 s, never held forever.
    assert time.monotonic() - started >= 9


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limits need REDIS_URL")
def test_the_rate_limit_counts_the_address_nginx_saw_not_the_forwarded_header(proxied, upstream):
    def turn(client: httpx.Client, n: int, forwarded: str) -> int:
        response = client.post(
            f"{proxied.url}/api/sessions/proxy-rate-{client_id(client)}-{n}/messages",
            json={"content": "hi"},
            headers={"X-Forwarded-For": forwarded, "X-Real-IP": forwarded, "Forwarded": f"for={forwarded}"},
        )
        return response.status_code

    def client_id(client: httpx.Client) -> str:
        return str(id(client))

    with client_from("127.0.0.20") as first, client_from("127.0.0.21") as second:
        codes = [turn(first, n, f"10.9.8.{n}") for n in range(4)]  # a new "address" every time
        assert codes == [200, 200, 200, 429], codes
        assert turn(second, 0, "10.9.8.1") == 200  # another client, its own limit


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="rate limits need REDIS_URL")
def test_a_websocket_is_counted_at_the_same_client_address_as_its_http_requests(proxied, upstream):
    address = "127.0.0.40"
    with client_from(address) as client:
        for n in range(3):
            reply = client.post(
                f"{proxied.url}/api/sessions/proxy-ws-rate-{n}/messages", json={"content": "hi"}
            )
            assert reply.status_code == 200
    make_conversation(owner=None, session_key="proxy-ws-rate")
    sock = socket.create_connection(("127.0.0.1", proxied.port), source_address=(address, 0))
    url = proxied.url.replace("http://", "ws://") + "/ws/chat/proxy-ws-rate/"
    with ws_connect(url, origin=proxied.url, sock=sock) as socket_:
        socket_.send(json.dumps({"type": "message", "content": "one more"}))
        frame = json.loads(socket_.recv(timeout=20))
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame


def test_an_attachment_larger_than_other_bodies_is_uploaded_through_the_proxy(proxied):
    """deploy/nginx.conf lets /api/attachments take ATTACHMENT_MAX_BYTES (10 MiB) though other bodies
    stop at 8 MB; past its own limit nginx answers 413 before the app reads anything."""
    import io

    from PIL import Image

    width, height = 1800, 1700  # random pixels do not compress: a PNG of about 9 MB
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
        buffer, "PNG", compress_level=0
    )
    data = buffer.getvalue()
    assert 8 * 1024 * 1024 < len(data) < 10 * 1024 * 1024
    with client_from("127.0.0.50") as client:
        reply = client.post(
            f"{proxied.url}/api/attachments", files={"file": ("noise.png", data, "image/png")}
        )
        assert reply.status_code == 201, reply.text[:300]
        created = reply.json()
        assert created["size"] == len(data)
        assert client.get(f"{proxied.url}{created['download_url']}").content == data
        too_big = client.post(
            f"{proxied.url}/api/attachments",
            files={"file": ("big.bin", b"\0" * (12 * 1024 * 1024), "image/png")},
        )
        assert too_big.status_code == 413
