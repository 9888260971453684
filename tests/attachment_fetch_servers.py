"""A small HTTP server on 127.0.0.1 for the remote attachment fetch tests (tests/test_attachment_fetch.py):
plain HTTP/1.0 in a thread, each path one behaviour, every request it receives logged.

- ``/file``: 200, a small PNG-looking body with its Content-Type and Content-Length
- ``/redirect?to=URL``: 302 to URL (absolute or relative)
- ``/chain/N``: N redirects (relative) before ``/file``
- ``/status/N``: answers HTTP N
- ``/endless``: 200, no Content-Length, 64 KiB chunks until the client goes away (bytes counted)
- ``/liar``: 200 with a Content-Length of 1 GB, then a few bytes and a wait
- ``/slow``: waits (up to 30 s, or the server's stop) before answering
- ``/gzip``: 200 with ``Content-Encoding: gzip``

And :class:`TlsHelloServer`, which reads the server name a TLS client asks for.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILE_BODY = b"\x89PNG\r\n\x1a\n" + b"fetched bytes " * 8
CHUNK = b"x" * 65536


class FetchServer:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.hosts: list[str] = []  # each request's Host header
        self.endless_sent = 0
        self.endless_done = threading.Event()
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # quiet
                pass

            def do_GET(self):
                owner.requests.append(self.path)
                owner.hosts.append(self.headers.get("Host", ""))
                path, _, query = self.path.partition("?")
                route = getattr(owner, "route_" + path.strip("/").split("/")[0], None)
                if route is None:
                    self.send_error(404)
                    return
                route(self, path, urllib.parse.parse_qs(query))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FetchServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def _headers(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()

    def route_file(self, h, path, query) -> None:
        self._headers(h, 200, {"Content-Type": "image/png", "Content-Length": str(len(FILE_BODY))})
        h.wfile.write(FILE_BODY)

    def route_redirect(self, h, path, query) -> None:
        self._headers(h, 302, {"Location": query["to"][0], "Content-Length": "0"})

    def route_chain(self, h, path, query) -> None:
        left = int(path.rsplit("/", 1)[1])
        self._headers(
            h, 302, {"Location": f"/chain/{left - 1}" if left > 1 else "/file", "Content-Length": "0"}
        )

    def route_status(self, h, path, query) -> None:
        self._headers(h, int(path.rsplit("/", 1)[1]), {"Content-Length": "0"})

    def route_endless(self, h, path, query) -> None:
        self._headers(h, 200, {"Content-Type": "application/octet-stream"})
        try:
            while not self.stop.is_set():
                h.wfile.write(CHUNK)
                self.endless_sent += len(CHUNK)
        except OSError:  # the client closed the connection: what the test waits for
            pass
        finally:
            self.endless_done.set()

    def route_liar(self, h, path, query) -> None:
        self._headers(h, 200, {"Content-Type": "image/png", "Content-Length": str(10**9)})
        h.wfile.write(FILE_BODY)
        h.wfile.flush()
        self.stop.wait(30)

    def route_slow(self, h, path, query) -> None:
        self.stop.wait(30)

    def route_gzip(self, h, path, query) -> None:
        self._headers(h, 200, {"Content-Encoding": "gzip", "Content-Length": str(len(FILE_BODY))})
        h.wfile.write(FILE_BODY)


class TlsHelloServer:
    """A TCP server on 127.0.0.1 that reads each TLS ClientHello, records the SNI host name it carries
    (None when there is none) and closes: what name a client verifies, without a certificate."""

    def __init__(self) -> None:
        self.names: list[str | None] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsHelloServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                self.names.append(server_name(data))


def server_name(record: bytes) -> str | None:
    """The SNI host name in a TLS record holding a ClientHello (RFC 8446 4.1.2, RFC 6066 3)."""
    if record[:1] != b"\x16" or record[5:6] != b"\x01":
        raise ValueError("not a ClientHello")
    at = 5 + 4 + 2 + 32  # record header, handshake header, legacy version, random
    at += 1 + record[at]  # session id
    at += 2 + int.from_bytes(record[at : at + 2], "big")  # cipher suites
    at += 1 + record[at]  # compression methods
    end = at + 2 + int.from_bytes(record[at : at + 2], "big")
    at += 2
    while at < end:
        kind, size = (
            int.from_bytes(record[at : at + 2], "big"),
            int.from_bytes(record[at + 2 : at + 4], "big"),
        )
        if kind == 0:  # server_name: list length (2), name type (1), name length (2), name
            length = int.from_bytes(record[at + 7 : at + 9], "big")
            return record[at + 9 : at + 9 + length].decode("ascii")
        at += 4 + size
    return None
