"""The fake upstream (tests/fake_upstream, unchanged) served on a socket that gets TCP_NODELAY.

``python -m tests.fake_upstream`` binds ``socket.socket(AF_INET, SOCK_STREAM)`` (proto 0), and
asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP: on a keep-alive
connection the response body then waits for the client's delayed ACK (~40 ms per request after
the first few). Benchmarks would measure Nagle, not the server, so the bench scripts run the same
app, config and CLI through this launcher, with the socket created as ``IPPROTO_TCP``.

    python bench/upstream.py --port 8765 --chunks 20 --delay 0
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn

from tests.fake_upstream.app import FakeUpstreamApp
from tests.fake_upstream.scenario import DEFAULT_CHUNKS
from tests.fake_upstream.server import make_config
from tests.fake_upstream.state import UpstreamState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    app = FakeUpstreamApp(UpstreamState(default_chunks=args.chunks, default_delay=args.delay))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"OPENAI_BASE_URL=http://{args.host}:{sock.getsockname()[1]}/v1", flush=True)
    uvicorn.Server(make_config(app)).run(sockets=[sock])


if __name__ == "__main__":
    main()
