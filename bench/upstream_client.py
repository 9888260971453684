"""CPU of the upstream HTTP client per relayed chunk: the OpenAI adapter on each HTTP transport.

The project's OpenAI adapter (``providers/openai_chat.py``) streams N concurrent replies from the
fake upstream, once on the SDK's own transport (``LLM_HTTP_TRANSPORT=httpx``: httpx2 → httpcore2 →
anyio) and once on ``providers/asyncio_transport.py`` (the default). Two shapes:

  slow  every chunk arrives alone (``delay`` between chunks): one socket read per chunk, as for
        thousands of slow streams
  fast  the whole reply at once: the per-request cost (building, sending, connection reuse)

CPU = this process's CPU time / chunks received (the fake upstream runs in its own process).

    .venv/bin/python bench/upstream_client.py [--streams 500] [--chunks 20] [--delay 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import _common as c  # noqa: E402


async def run(transport: str, base: str, streams: int, chunks: int, delay: float) -> dict[str, float]:
    from providers.base import ChatMessage, ProviderRequest
    from providers.openai_chat import OpenAIChatProvider

    provider = OpenAIChatProvider(
        default_model="gpt-4o-mini", api_key="sk-bench", base_url=base + "/v1", http_transport=transport
    )

    async def one(i: int) -> int:
        text = f"stream {i} [[chunks={chunks} delay={delay}]]"
        request = ProviderRequest(model="gpt-4o-mini", messages=(ChatMessage("user", text),))
        return sum([1 async for chunk in provider.stream(request) if chunk.text])

    await asyncio.gather(*(one(i) for i in range(min(streams, 20))))  # warm the pool
    cpu0, t0 = time.process_time(), time.perf_counter()
    received = sum(await asyncio.gather(*(one(i) for i in range(streams))))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    await provider.aclose()
    return {
        "chunks": received,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_us_per_chunk": cpu * 1e6 / max(received, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds between chunks (slow shape)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.chunks, args.delay = 20, 5, 0.05
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
    os.environ.setdefault("DEBUG", "true")
    import django
    import uvloop

    django.setup()
    upstream = c.start_upstream()
    results: dict[str, dict[str, float]] = {}
    try:
        for shape, delay in (("slow", args.delay), ("fast", 0.0)):
            for transport in ("httpx", "asyncio"):
                results[f"{shape} {transport}"] = uvloop.run(
                    run(transport, upstream.url, args.streams, args.chunks, delay)
                )
    finally:
        upstream.child.stop()
    c.print_table(
        f"Client CPU per chunk, {args.streams} concurrent streams x {args.chunks} chunks (µs)",
        ["shape transport", "chunks", "cpu s", "wall s", "cpu µs/chunk"],
        [
            [k, v["chunks"], f"{v['cpu_s']:.2f}", f"{v['wall_s']:.1f}", f"{v['cpu_us_per_chunk']:.0f}"]
            for k, v in results.items()
        ],
    )
    c.write_json(
        "upstream_client",
        {
            "script": "upstream_client",
            "quick": args.quick,
            "machine": c.machine_info(),
            "args": vars(args),
            "results": results,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
