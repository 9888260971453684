"""providers/asyncio_transport.py over real sockets: a raw asyncio HTTP server scripted per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest

from providers import asyncio_transport
from providers.asyncio_transport import AsyncioTransport, use_asyncio_transport
from providers.base import Timeout, Unavailable
from tests.providers.conftest import ask

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (bodies carry a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def response(body: bytes, *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n%s\r\n" % (len(body), extra)
        + body
    )


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=AsyncioTransport(), timeout=httpx2.Timeout(2.0)) as http:
        yield http


async def test_requests_on_one_connection_and_the_exact_bytes_sent(client):
    async def handler(reader, writer):
        while True:
            head, body = await read_request(reader)
            server.requests.append((head, body))
            writer.write(response(b"echo:" + body))
            await writer.drain()

    async with Server(handler) as server:
        for i in range(3):
            answer = await client.post(server.url + "/v1/x?q=1", content=b"body %d" % i, headers={"x-k": "v"})
            assert (answer.status_code, answer.content) == (200, b"echo:body %d" % i)
            assert answer.http_version == "HTTP/1.1"

    assert server.connections == 1
    head = server.requests[0][0].decode().lower()
    assert head.startswith("post /v1/x?q=1 http/1.1\r\n")
    assert "host: 127.0.0.1:" in head and "x-k: v" in head and "content-length: 6" in head


async def test_a_body_is_streamed_as_it_arrives_and_chunked_encoding_is_decoded(client):
    release = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with Server(handler) as server, client.stream("GET", server.url) as answer:
        parts = answer.aiter_raw()
        assert await anext(parts) == b"first"  # before the rest was even written
        release.set()
        assert [part async for part in parts] == [b"second"]


async def test_a_body_without_a_length_ends_with_the_connection(client):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: one\n\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"data: two\n\n")
        await writer.drain()  # and close: the end of the body

    async with Server(handler) as server:
        answer = await client.get(server.url)
    assert answer.content == b"data: one\n\ndata: two\n\n"


async def test_a_large_body_arrives_whole_through_back_pressure(client, monkeypatch):
    monkeypatch.setattr(asyncio_transport, "READ_BUFFER_HIGH", 1024)
    body = bytes(range(256)) * 4096  # 1 MiB

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(response(body))
        await writer.drain()

    async with Server(handler) as server, client.stream("GET", server.url) as answer:
        received = b""
        async for part in answer.aiter_raw():
            received += part
            await asyncio.sleep(0)  # a slow reader
    assert received == body


async def test_connection_close_and_a_half_read_body_are_not_reused(client):
    async def handler(reader, writer):
        await read_request(reader)
        if server.connections == 1:
            writer.write(response(b"closing", extra=b"connection: close\r\n"))
        elif server.connections == 2:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10000\r\n\r\n" + b"x" * 100)  # and more later
        else:
            writer.write(response(b"ok"))
        await writer.drain()
        await read_request(reader)  # a next request on this connection would be served here
        writer.write(response(b"reused"))
        await writer.drain()
        await reader.read()

    async with Server(handler) as server:
        assert (await client.get(server.url)).content == b"closing"
        async with client.stream("GET", server.url) as answer:
            await anext(answer.aiter_raw())  # closed half-read
        assert (await client.get(server.url)).content == b"ok"
    assert server.connections == 3


async def test_an_idle_connection_the_server_closed_is_not_reused(client):
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(response(b"once"))
        await writer.drain()  # and close, as a server's idle timeout does

    async with Server(handler) as server:
        assert (await client.get(server.url)).content == b"once"
        await asyncio.sleep(0.05)
        assert (await client.get(server.url)).content == b"once"
    assert server.connections == 2


async def test_an_idle_connection_past_the_keepalive_expiry_is_not_reused(client, monkeypatch):
    monkeypatch.setattr(asyncio_transport, "KEEPALIVE_EXPIRY", 0.01)

    async def handler(reader, writer):
        while True:
            await read_request(reader)
            writer.write(response(b"ok"))
            await writer.drain()

    async with Server(handler) as server:
        await client.get(server.url)
        await asyncio.sleep(0.05)
        await client.get(server.url)
    assert server.connections == 2


async def test_failures_are_httpx2s_own_exceptions(closed_port_url):
    async def silent(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    async def cut(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    async def garbage(reader, writer):
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    timeout = httpx2.Timeout(0.2, connect=1.0)
    async with httpx2.AsyncClient(transport=AsyncioTransport(), timeout=timeout) as http:
        with pytest.raises(httpx2.ConnectError, match="could not connect"):
            await http.get(closed_port_url)
        async with Server(silent) as server:
            with pytest.raises(httpx2.ReadTimeout, match="read timeout"):
                await http.get(server.url)
        async with Server(cut) as server:
            with pytest.raises(httpx2.RemoteProtocolError, match="before the end of the response body"):
                await http.get(server.url)
        async with Server(garbage) as server:
            with pytest.raises(httpx2.RemoteProtocolError, match="malformed HTTP response"):
                await http.get(server.url)


async def test_the_sdk_maps_them_to_our_taxonomy_as_before(make_provider, closed_port_url):
    async def silent(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    from providers.base import Timeouts

    with pytest.raises(Unavailable, match=r"could not reach the provider|connection to the provider"):
        await make_provider("openai", base=closed_port_url).complete(ask("hi"))
    async with Server(silent) as server:
        slow = make_provider("openai", base=server.url, timeouts=Timeouts(connect=1.0, read=0.2))
        with pytest.raises(Timeout):
            await slow.complete(ask("hi"))


def test_a_proxy_in_the_environment_or_the_setting_selects_the_sdks_own_transport(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert use_asyncio_transport("asyncio")
    assert not use_asyncio_transport("httpx")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert not use_asyncio_transport("asyncio")
