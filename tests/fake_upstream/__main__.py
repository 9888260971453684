"""CLI: ``python -m tests.fake_upstream --port 8765 [--host 127.0.0.1] [--chunks 20] [--delay 0]``.

Prints one base URL per provider, then serves until killed (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse

import uvicorn

from .app import FakeUpstreamApp
from .scenario import DEFAULT_CHUNKS
from .server import bind_socket, make_config
from .state import UpstreamState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="default chunks per reply")
    parser.add_argument("--delay", type=float, default=0.0, help="default seconds between chunks")
    args = parser.parse_args(argv)

    app = FakeUpstreamApp(UpstreamState(default_chunks=args.chunks, default_delay=args.delay))
    sock = bind_socket(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    print(f"OPENAI_BASE_URL={url}/v1", flush=True)
    print(f"GEMINI_BASE_URL={url}", flush=True)
    print(f"ZAI_BASE_URL={url}/api/paas/v4", flush=True)
    print(f"CONTROL_URL={url}/_control", flush=True)
    uvicorn.Server(make_config(app)).run(sockets=[sock])


if __name__ == "__main__":
    main()
