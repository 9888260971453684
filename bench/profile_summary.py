"""Summarize py-spy raw (collapsed) stacks into where the server's time goes, by category.

    .venv/bin/python bench/profile_summary.py bench/results/profile-throughput-1p-0.txt [--turns N]

Each sample is given to the first category (in the order below) whose pattern appears anywhere in
its stack, so "DB" includes the thread hop that carried the query, and "Django handler" includes
the sync-middleware adaptation it triggers. With ``--turns`` (turns completed while recording) and
``--cpu-ms`` (server CPU ms per turn, measured separately), shares are turned into ms per turn.
Profiles recorded with ``--gil`` (the bench default) count only samples holding the GIL, i.e.
Python CPU time, not threads blocked on sockets.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

CATEGORIES: list[tuple[str, str]] = [
    (
        "DB: opening a PostgreSQL connection (login per hop)",
        r"get_new_connection|_connect_gen|wait_conn|psycopg_pool/.*connect",
    ),
    ("DB: ORM + psycopg queries/commits", r"django/db/|psycopg/"),
    (
        "Redis: replay buffer + channel layer publish, presence, stop listener",
        r"conversations/turns/jobs\.py.*_publish|replay_buffer\.py|channels_redis|redis/|coredis/|ratelimit|limits/",
    ),
    (
        "SDK: openai stream parsing (SSE decode, pydantic chunk objects)",
        r"openai/_streaming|openai/_models|pydantic|construct_type|_SSE",
    ),
    ("SDK: openai request building/sending (transform, headers, httpx)", r"openai/"),
    ("httpx/httpcore/anyio (upstream HTTP client)", r"httpx|httpcore|anyio/"),
    (
        "Django HTTP handler, signals, middleware (incl. sync-middleware adaptation)",
        r"django/core/handlers|django/utils/deprecation|whitenoise|corsheaders|django/middleware|django/contrib/(sessions|auth|messages)|django/dispatch|django/http/|django/urls",
    ),
    (
        "Thread hops (asgiref sync_to_async, executor, thread start/wakeup)",
        r"asgiref/|concurrent/futures|threading\.py",
    ),
    ("Turn service, events, encoders (conversations/*)", r"conversations/|orjson|dataclasses"),
    ("ASGI server (uvicorn/granian/daphne protocol)", r"uvicorn/|httptools|granian|daphne|twisted"),
    ("asyncio event loop (scheduling, selectors)", r"asyncio/|selectors\.py|uvloop"),
]


def summarize(paths: list[Path]) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    compiled = [(name, re.compile(pat)) for name, pat in CATEGORIES]
    counts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            total += int(n)
            frames = stack.split(";")
            joined = ";".join(f.split(" (", 1)[-1] + f.split(" (", 1)[0] for f in frames)
            for name, pat in compiled:
                if pat.search(joined):
                    counts[name] += int(n)
                    break
            else:
                counts["other"] += int(n)
            leaves[re.sub(r":\d+\)", ")", frames[-1])] += int(n)
    return total, counts.most_common(), leaves.most_common(25)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--cpu-ms", type=float, help="server CPU ms per turn, to express shares in ms")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()
    total, cats, leaves = summarize(args.files)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples from {', '.join(str(p) for p in args.files)}")
    print(f"\n{'share':>6}  {'ms/turn':>7}  category")
    rows = []
    for name, n in cats:
        share = n / total
        ms = share * args.cpu_ms if args.cpu_ms else None
        rows.append({"category": name, "share": share, "ms_per_turn": ms})
        print(f"{share:6.1%}  {f'{ms:.2f}' if ms is not None else '-':>7}  {name}")
    print("\nhottest leaf frames:")
    for frame, n in leaves:
        print(f"{n / total:6.1%}  {frame[:140]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"samples": total, "categories": rows, "leaves": [[f, n / total] for f, n in leaves]},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
