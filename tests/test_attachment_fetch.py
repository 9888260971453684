"""Remote attachments fetched by the server (conversations/attachments/remote.py): SSRF rules, caps
and errors, over real sockets against a small HTTP server on 127.0.0.1
(tests/attachment_fetch_servers.py). Only the loopback switch, which only test code can set, lets a
fetch reach that server; everything else the rules refuse is refused before any connection."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest

from conversations.attachments.remote import (
    MAX_REDIRECTS,
    RemoteFetchRefused,
    RemoteFile,
    address_refusal,
    fetch_remote,
)
from tests.attachment_fetch_servers import FILE_BODY, FetchServer, TlsHelloServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    with FetchServer() as running:
        yield running


@pytest.fixture
def loopback(settings):
    settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK = True


async def refused(url: str, **kwargs) -> RemoteFetchRefused:
    with pytest.raises(RemoteFetchRefused) as caught:
        await fetch_remote(url, **kwargs)
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the address classifier


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("64:ff9b::808:808", None),  # 8.8.8.8 through DNS64/NAT64
        ("127.0.0.1", "a loopback address"),
        ("127.1.2.3", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped IPv6 address"),
        ("::ffff:10.0.0.1", "an IPv4-mapped IPv6 address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped IPv6 address"),
        ("::ffff:8.8.8.8", "an IPv4-mapped IPv6 address"),  # refused outright, whatever it maps
        ("2002:7f00:1::", "an IPv6 tunnel address (Teredo or 6to4)"),
        ("2002:808:808::", "an IPv6 tunnel address (Teredo or 6to4)"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "an IPv6 tunnel address (Teredo or 6to4)"),
        ("64:ff9b::a00:1", "a private address behind a NAT64 prefix"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata address behind a NAT64 prefix"),
        ("0.1.2.3", "refused"),
        ("192.0.2.1", "refused"),
        ("198.18.0.1", "refused"),
        ("240.0.0.1", "refused"),
        ("255.255.255.255", "refused"),
        ("2001:db8::1", "refused"),
        ("::127.0.0.1", "refused"),  # IPv4-compatible (deprecated)
        ("100::1", "refused"),  # discard prefix
    ],
)
def test_address_classifier(address, reason):
    got = address_refusal(ipaddress.ip_address(address))
    if reason == "refused":
        assert got is not None
    else:
        assert got == reason


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("8.8.8.8", True),
        ("10.0.0.1", False),
        ("192.168.0.10", False),
        ("169.254.169.254", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),
        ("64:ff9b::7f00:1", False),
    ],
)
def test_the_loopback_switch_lets_loopback_only_through(address, allowed):
    assert (address_refusal(ipaddress.ip_address(address), allow_loopback=True) is None) is allowed


# --- fetches against the local server


async def test_a_fetch_returns_the_bytes_with_the_switch_on(server, loopback):
    got = await fetch_remote(f"{server.url}/file")
    assert got == RemoteFile(data=FILE_BODY, content_type="image/png", final_url=f"{server.url}/file")
    assert server.hosts == [f"127.0.0.1:{server.port}"]


async def test_without_the_switch_loopback_is_refused_before_any_connection(server, settings):
    assert settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK is False  # the suite's own settings leave it off
    error = await refused(f"https://127.0.0.1:{server.port}/file")
    assert (error.status, error.code) == (422, "url_not_allowed")
    assert "127.0.0.1 resolves to a loopback address (127.0.0.1)" in error.message
    assert "send the file's bytes instead (a data URL or an upload)" in error.message
    assert server.requests == []


async def test_a_host_name_resolving_to_loopback_is_refused_without_the_switch(server):
    error = await refused(f"https://localhost:{server.port}/file")
    assert (error.status, error.code) == (422, "url_not_allowed")
    assert "host localhost resolves to a loopback address" in error.message
    assert server.requests == []


async def test_a_host_name_is_resolved_once_and_the_checked_address_connected(server, loopback, monkeypatch):
    """DNS rebinding: the name answers loopback (allowed under the switch) to the check, then a
    private address to anyone who asks again. The fetch connects to the address it checked, and
    the server still sees the name in the Host header."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            asked.append(host)
            host = "127.0.0.1" if len(asked) == 1 else "10.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    got = await fetch_remote(f"http://rebind.test:{server.port}/file", timeout=3)
    assert got.data == FILE_BODY
    assert got.final_url == f"http://rebind.test:{server.port}/file"
    assert asked == ["rebind.test"]
    assert server.hosts == [f"rebind.test:{server.port}"]


async def test_localhost_under_the_switch_tries_each_checked_address(server, loopback):
    """localhost may resolve to ::1 first; the server listens on 127.0.0.1 only: the next checked
    address is tried, with no new lookup."""
    got = await fetch_remote(f"http://localhost:{server.port}/file")
    assert got.data == FILE_BODY
    assert server.hosts == [f"localhost:{server.port}"]


async def test_tls_verifies_the_host_name_while_connecting_to_the_checked_address(loopback):
    """https://localhost: the connection goes to the address checked, and the TLS handshake asks for
    (and would verify the certificate of) localhost, not the IP; an IP in the URL sends no name."""
    with TlsHelloServer() as tls:
        error = await refused(f"https://localhost:{tls.port}/file", timeout=5)
        assert error.code == "fetch_failed"
        error = await refused(f"https://127.0.0.1:{tls.port}/file", timeout=5)
        assert error.code == "fetch_failed"
    assert tls.names == ["localhost", None]


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/file",
        "http://100.64.0.1/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "http://0.0.0.0:{port}/file",
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused_even_with_the_switch(server, loopback, target):
    target = target.format(port=server.port)
    started = time.monotonic()
    error = await refused(f"{server.url}/redirect?to={target}", timeout=5)
    assert (error.status, error.code) == (422, "url_not_allowed")
    assert "(reached by a redirect from 127.0.0.1)" in error.message
    assert "which the server does not fetch from" in error.message
    assert time.monotonic() - started < 2  # refused, not a connection attempt timing out
    assert server.requests == [f"/redirect?to={target}"]  # the mapped loopback never reached the server


async def test_redirects_are_followed_relative_ones_too_up_to_the_limit(server, loopback):
    got = await fetch_remote(f"{server.url}/chain/{MAX_REDIRECTS}")
    assert got.data == FILE_BODY
    assert got.final_url == f"{server.url}/file"
    assert len(server.requests) == MAX_REDIRECTS + 1

    got = await fetch_remote(f"{server.url}/redirect?to=file")
    assert got.final_url == f"{server.url}/file"


async def test_a_redirect_to_an_invalid_url_is_fetch_failed(server, loopback):
    error = await refused(f"{server.url}/redirect?to=http://[::1")
    assert (error.status, error.code) == (422, "fetch_failed")
    assert "from 127.0.0.1 (RemoteProtocolError: Invalid URL in location header" in error.message


async def test_an_international_host_name_is_looked_up_and_sent_idna_encoded(server, loopback, monkeypatch):
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host, port, *args, **kwargs):
        if host.endswith(".test"):
            asked.append(host)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    got = await fetch_remote(f"http://faß.test:{server.port}/file")
    assert got.data == FILE_BODY
    assert asked == ["xn--fa-hia.test"]  # IDNA 2008, as the Host header says it (not "fass.test")
    assert server.hosts == [f"xn--fa-hia.test:{server.port}"]


async def test_too_many_redirects_are_refused(server, loopback):
    error = await refused(f"{server.url}/chain/{MAX_REDIRECTS + 1}")
    assert (error.status, error.code) == (422, "fetch_failed")
    assert f"redirected more than {MAX_REDIRECTS} times" in error.message
    assert len(server.requests) == MAX_REDIRECTS + 1  # the sixth Location is never requested


async def test_an_endless_body_is_refused_while_streaming(server, loopback):
    max_bytes = 4 * 1024 * 1024
    await fetch_remote(f"{server.url}/file")  # the TLS context and imports, before measuring
    tracemalloc.start()
    try:
        started = time.monotonic()
        error = await refused(f"{server.url}/endless", max_bytes=max_bytes, timeout=10)
        elapsed = time.monotonic() - started
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.status, error.code) == (413, "payload_too_large")
    assert f"larger than {max_bytes} bytes" in error.message
    assert elapsed < 3
    # At most the cap, the chunk that passed it and the HTTP client's read buffers (about 600 KB
    # measured), never the stream, nor a copy of what was read; nothing kept by the refusal.
    assert peak < max_bytes + 1024 * 1024
    assert held < 1024 * 1024
    assert server.endless_done.wait(5)  # the connection was closed: the server stopped writing


async def test_a_content_length_over_the_cap_is_refused_up_front(server, loopback):
    started = time.monotonic()
    error = await refused(f"{server.url}/liar", timeout=10)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "127.0.0.1 is larger than" in error.message
    assert time.monotonic() - started < 2  # the server keeps the connection open: nothing waited on it


async def test_a_slow_server_is_a_fetch_timeout(server, loopback):
    started = time.monotonic()
    error = await refused(f"{server.url}/slow", timeout=0.5)
    assert (error.status, error.code) == (422, "fetch_timeout")
    assert "took longer than 0.5 s" in error.message
    assert time.monotonic() - started < 2


async def test_the_deadline_covers_the_redirects_too(server, loopback):
    error = await refused(f"{server.url}/redirect?to=/slow", timeout=0.5)
    assert error.code == "fetch_timeout"
    assert server.requests == ["/redirect?to=/slow", "/slow"]


@pytest.mark.parametrize("status", [404, 500])
async def test_an_upstream_error_is_fetch_failed(server, loopback, status):
    error = await refused(f"{server.url}/status/{status}")
    assert (error.status, error.code) == (422, "fetch_failed")
    assert f"127.0.0.1 answered HTTP {status}" in error.message


async def test_a_connection_refused_is_fetch_failed(loopback):
    error = await refused(f"http://127.0.0.1:{closed_port()}/file")
    assert (error.status, error.code) == (422, "fetch_failed")
    assert "could not be fetched from 127.0.0.1" in error.message


async def test_an_unresolvable_host_is_fetch_failed(monkeypatch):
    def resolver(host, *args, **kwargs):  # NXDOMAIN, without depending on the machine's DNS
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    error = await refused("https://no-such-host.invalid/file.png", timeout=5)
    assert (error.status, error.code) == (422, "fetch_failed")
    assert "no-such-host.invalid could not be resolved" in error.message


async def test_a_compressed_answer_is_refused_rather_than_passed_on_compressed(server, loopback):
    error = await refused(f"{server.url}/gzip")
    assert (error.status, error.code) == (422, "fetch_failed")
    assert "compressed (gzip)" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http://example.com/file.png",  # plain http: the switch is off
        "https://user:secret@example.com/file.png",
        "https:///file.png",
        "not a url at all",
        "https://example.com:99999/file.png",
    ],
)
async def test_urls_that_are_not_plain_https_are_refused(url):
    error = await refused(url)
    assert (error.status, error.code) == (422, "url_not_allowed")
    assert "send the file's bytes instead" in error.message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "http://8.8.8.8/x"])
async def test_the_switch_allows_plain_http_to_loopback_only(loopback, url):
    error = await refused(url)
    assert (error.status, error.code) == (422, "url_not_allowed")


async def test_proxy_variables_are_ignored(server, loopback, monkeypatch):
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with httpx.AsyncClient() as client:  # a client that reads them goes to the dead proxy
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{server.url}/file")
    assert server.requests == []

    got = await fetch_remote(f"{server.url}/file")
    assert got.data == FILE_BODY
    assert server.requests == ["/file"]


def test_the_loopback_switch_cannot_be_set_from_the_environment():
    env = {
        **os.environ,
        "ATTACHMENT_FETCH_ALLOW_LOOPBACK": "true",
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(repr(settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK))",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
