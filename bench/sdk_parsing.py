"""CPU per upstream call for three ways of streaming an OpenAI chat completion (the SDK lever).

  sdk        openai.AsyncOpenAI().chat.completions.create(stream=True), iterate chunk objects
             (what providers/openai_chat.py does today)
  sdk-raw    with_streaming_response.create(...): the SDK builds and sends the request, we read
             the SSE lines and parse them with orjson
  httpx-raw  one httpx.AsyncClient: a pre-serialized orjson body, SSE lines parsed with orjson
             (no SDK request transform, no pydantic objects)

Sequential calls against the fake upstream (20-chunk replies, 11 messages of context like a turn
with history); CPU = this process's CPU time / calls. Only the client side is measured.

    .venv/bin/python bench/sdk_parsing.py [--calls 300] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c


def messages() -> list[dict[str, str]]:
    history = []
    for i in range(5):
        history.append({"role": "user", "content": f"question {i} about something longer than a word"})
        history.append({"role": "assistant", "content": "Echo: an answer of a few dozen characters " * 3})
    return [*history, {"role": "user", "content": "bench turn"}]


async def run(mode: str, base: str, calls: int) -> dict[str, float]:
    import httpx
    import openai
    import orjson

    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base + "/v1", max_retries=0)
    raw = httpx.AsyncClient(base_url=base + "/v1", headers={"Authorization": "Bearer sk-bench"})
    msgs = messages()
    params = {
        "model": "gpt-4o-mini",
        "messages": msgs,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def once() -> int:
        n = 0
        if mode == "sdk":
            stream = await client.chat.completions.create(**params)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    n += 1
        elif mode == "sdk-raw":
            async with client.chat.completions.with_streaming_response.create(**params) as resp:
                async for line in resp.iter_lines():
                    if line.startswith("data: {"):
                        data = orjson.loads(line[6:])
                        if data["choices"] and data["choices"][0]["delta"].get("content"):
                            n += 1
        else:
            body = orjson.dumps(params)
            headers = {"Content-Type": "application/json"}
            async with raw.stream("POST", "/chat/completions", content=body, headers=headers) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: {"):
                        data = orjson.loads(line[6:])
                        if data["choices"] and data["choices"][0]["delta"].get("content"):
                            n += 1
        return n

    for _ in range(10):
        await once()
    cpu0, t0 = time.process_time(), time.perf_counter()
    tokens = 0
    for _ in range(calls):
        tokens += await once()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    await client.close()
    await raw.aclose()
    return {
        "cpu_ms_per_call": cpu * 1000 / calls,
        "wall_ms_per_call": wall * 1000 / calls,
        "tokens": tokens / calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    calls = 20 if args.quick else args.calls
    upstream = c.start_upstream(chunks=20)
    results = {}
    for mode in ("sdk", "sdk-raw", "httpx-raw", "sdk"):
        key = mode if mode not in results else f"{mode} (again)"
        results[key] = asyncio.run(run(mode, upstream.url, calls))
    c.print_table(
        f"Client CPU per streamed call ({calls} calls, 20 chunks, 11 context messages)",
        ["mode", "cpu ms/call", "wall ms/call", "content chunks"],
        [
            [k, f"{v['cpu_ms_per_call']:.2f}", f"{v['wall_ms_per_call']:.2f}", f"{v['tokens']:.0f}"]
            for k, v in results.items()
        ],
    )
    c.write_json(
        "sdk_parsing",
        {"script": "sdk_parsing", "machine": c.machine_info(), "calls": calls, "results": results},
        args.out,
    )
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
