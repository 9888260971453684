"""Maximum streaming turns/s and server CPU per turn, for 1 and 2 server processes.

Ramp: closed-loop clients (keep-alive, one session each, every turn persisted) at increasing
concurrency, ``--step`` seconds per level after a warm-up turn per client; the ramp stops when two
levels in a row add less than 5 % or errors appear. Server CPU per turn = (utime + stime) delta of
the server's process tree (/proc/<pid>/stat) over the measured window / turns completed. The client
is a raw asyncio HTTP/1.1 client (uvloop when available); its own CPU is reported so you can see
whether it was the bottleneck. The fake upstream's CPU is reported too: on 2 cores, client,
upstream, PostgreSQL, Redis and the server share the machine.

    .venv/bin/python bench/throughput.py                   # 1 and 2 processes (~2-3 min)
    .venv/bin/python bench/throughput.py --processes 1 --levels 8,16,32 --step 5
    .venv/bin/python bench/throughput.py --quick
    .venv/bin/python bench/throughput.py --profile         # + py-spy flame graph at the best level
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c


async def level_run(
    targets: list[c.Target],
    concurrency: int,
    step: float,
    tag: str,
    content: str,
    server: c.Server,
    upstream: c.Upstream,
) -> dict[str, Any]:
    conns = []
    for i in range(concurrency):
        host, port = targets[i % len(targets)].hostport
        conns.append(c.HttpConn(host, port))
    keys = [f"{tag}-{i}" for i in range(concurrency)]
    warm = await asyncio.gather(
        *(c.run_turn(conns[i], targets[i % len(targets)], keys[i], content) for i in range(concurrency))
    )
    errors = [w.error for w in warm if not w.ok]
    done = 0
    totals: list[float] = []
    ttfts: list[float] = []
    deadline = 0.0

    async def user(i: int) -> None:
        nonlocal done
        target = targets[i % len(targets)]
        while time.perf_counter() < deadline:
            res = await c.run_turn(conns[i], target, keys[i], content)
            if res.ok:
                if time.perf_counter() <= deadline:
                    done += 1
                    totals.append(res.total)
                    if res.ttft is not None:
                        ttfts.append(res.ttft)
            else:
                errors.append(res.error)
                await asyncio.sleep(0.05)

    cpu0, up0, me0 = server.cpu(), c.cpu_seconds(upstream.child.tree()), c.self_cpu_seconds()
    pg0, redis0 = c.postgres_cpu_seconds(), c.redis_cpu_seconds()
    t0 = time.perf_counter()
    deadline = t0 + step
    await asyncio.wait_for(asyncio.gather(*(user(i) for i in range(concurrency))), step + 120)
    # count only turns finished inside the window; CPU is read at the window's end
    elapsed = step
    cpu = server.cpu() - cpu0
    up = c.cpu_seconds(upstream.child.tree()) - up0
    me = c.self_cpu_seconds() - me0
    pg = c.postgres_cpu_seconds() - pg0
    redis = c.redis_cpu_seconds() - redis0
    svc = pg + redis
    tail = time.perf_counter() - t0 - step  # turns that straddle the end: CPU includes their tail
    for conn in conns:
        conn.close()
    return {
        "concurrency": concurrency,
        "turns": done,
        "turns_per_s": done / elapsed,
        "errors": len(errors),
        "error_samples": errors[:3],
        "server_cpu_s": cpu,
        "server_cpu_ms_per_turn": (cpu * 1000 / done) if done else None,
        "server_cpu_util": cpu / (elapsed + tail),
        "upstream_cpu_util": up / (elapsed + tail),
        "client_cpu_util": me / (elapsed + tail),
        "services_cpu_util": svc / (elapsed + tail),
        # each on its own, per turn (issue 33: the database's and Redis's cost of a turn)
        "postgres_cpu_ms_per_turn": (pg * 1000 / done) if done else None,
        "redis_cpu_ms_per_turn": (redis * 1000 / done) if done else None,
        "total": c.summary(totals),
        "ttft": c.summary(ttfts),
        "rss_mb": server.rss() / 2**20,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def ramp(args, server: c.Server, upstream: c.Upstream, levels: list[int], step: float, label: str) -> dict:
    make = c.native_target if args.endpoint == "native-sse" else c.openai_target
    targets = [make(url) for url in server.urls]
    run = c.run_id()
    results: list[dict[str, Any]] = []
    best = 0.0
    flat = 0
    profile_children: list[c.Child] = []
    for level in levels:
        upstream.reset()
        res = asyncio.run(
            level_run(targets, level, step, f"tp{run}-{label}-{level}", "bench turn", server, upstream)
        )
        results.append(res)
        print(
            f"  [{label}] c={level:<4} {res['turns_per_s']:7.1f} turns/s  err={res['errors']:<3} "
            f"srv cpu {c.fmt_ms((res['server_cpu_ms_per_turn'] or 0) / 1000)} ms/turn "
            f"(util {res['server_cpu_util']:.2f}) upstream util {res['upstream_cpu_util']:.2f} "
            f"client util {res['client_cpu_util']:.2f} pg+redis util {res['services_cpu_util']:.2f}  total p50 {c.fmt_ms(res['total']['p50'])} ms",
            flush=True,
        )
        if res["errors"] > max(2, 0.01 * res["turns"]):
            break
        if res["turns_per_s"] < best * 1.05:
            flat += 1
            if flat >= 2:
                break
        else:
            flat = 0
        best = max(best, res["turns_per_s"])
    top = max(results, key=lambda r: r["turns_per_s"])
    profile = None
    if args.profile:
        level = top["concurrency"]
        dur = max(10.0, step * 2)
        profile_children = c.start_profile(server, dur, f"profile-throughput-{label}")
        time.sleep(0.5)
        res = asyncio.run(
            level_run(targets, level, dur, f"tp{run}-{label}-prof", "bench turn", server, upstream)
        )
        for child in profile_children:
            child.proc.wait(timeout=dur + 60)
            child.stop()
        profile = {
            "concurrency": level,
            "turns": res["turns"],
            "turns_per_s": res["turns_per_s"],
            "files": sorted(str(p) for p in c.RESULTS.glob(f"profile-throughput-{label}-*")),
            "note": "py-spy at 250 Hz slows the server; use the profile for shares, not for rates",
        }
    return {
        "label": label,
        "levels": results,
        "max_turns_per_s": top["turns_per_s"],
        "at_concurrency": top["concurrency"],
        "server_cpu_ms_per_turn_at_max": top["server_cpu_ms_per_turn"],
        "min_server_cpu_ms_per_turn": min(
            (r["server_cpu_ms_per_turn"] for r in results if r["server_cpu_ms_per_turn"]), default=None
        ),
        "profile": profile,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--processes", default="1,2", help="server process counts to measure (uses --server)")
    parser.add_argument("--levels", default="1,4,8,16,32,64,128", help="concurrency ramp")
    parser.add_argument("--step", type=float, default=6.0, help="seconds measured per level")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--endpoint", choices=("native-sse", "openai-compat"), default="native-sse")
    args = parser.parse_args()
    c.apply_common(args)
    levels = [int(x) for x in args.levels.split(",") if x]
    step = args.step
    processes = [int(x) for x in args.processes.split(",") if x]
    if args.quick:
        levels, step, processes = [2, 8], 0.8, [1]

    c.raise_nofile()
    loop_impl = c.install_fast_loop()
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    c.ensure_database()
    upstream = c.start_upstream(chunks=args.chunks)
    runs = []
    t_start = time.monotonic()
    server_desc = None
    for n in processes:
        args.workers = n
        server = c.start_server(args, upstream.url + "/v1", name=f"server-{n}p")
        server_desc = c.describe_server(server, args)
        try:
            runs.append(
                {"processes": n, "server": server_desc, **ramp(args, server, upstream, levels, step, f"{n}p")}
            )
        finally:
            server.stop()
    rows = []
    for run in runs:
        for r in run["levels"]:
            rows.append(
                [
                    run["processes"],
                    r["concurrency"],
                    f"{r['turns_per_s']:.1f}",
                    r["errors"],
                    "-" if r["server_cpu_ms_per_turn"] is None else f"{r['server_cpu_ms_per_turn']:.2f}",
                    f"{r['server_cpu_util']:.2f}",
                    f"{r['upstream_cpu_util']:.2f}",
                    f"{r['client_cpu_util']:.2f}",
                    f"{r['services_cpu_util']:.2f}",
                    _ms(r["postgres_cpu_ms_per_turn"]),
                    _ms(r["redis_cpu_ms_per_turn"]),
                    f"{r['server_cpu_util'] + r['upstream_cpu_util'] + r['client_cpu_util'] + r['services_cpu_util']:.2f}",
                    c.fmt_ms(r["ttft"]["p50"]),
                    c.fmt_ms(r["total"]["p50"]),
                    c.fmt_ms(r["total"]["p99"]),
                    f"{r['rss_mb']:.0f}",
                ]
            )
    c.print_table(
        f"Streaming turns/s ({args.endpoint}, {args.chunks}-chunk replies; server {args.server} "
        f"{' '.join(server_desc['flags']) if server_desc else ''}; CPU util in cores; client loop {loop_impl})",
        [
            "procs",
            "conc",
            "turns/s",
            "err",
            "srv cpu ms/turn",
            "srv util",
            "upstr util",
            "client util",
            "pg+redis util",
            "pg cpu ms/turn",
            "redis cpu ms/turn",
            "all util",
            "ttft p50",
            "total p50",
            "total p99",
            "rss MB",
        ],
        rows,
    )
    c.print_table(
        "Summary",
        ["procs", "max turns/s", "at conc", "srv cpu ms/turn @max", "min srv cpu ms/turn"],
        [
            [
                r["processes"],
                f"{r['max_turns_per_s']:.1f}",
                r["at_concurrency"],
                "-"
                if r["server_cpu_ms_per_turn_at_max"] is None
                else f"{r['server_cpu_ms_per_turn_at_max']:.2f}",
                "-" if r["min_server_cpu_ms_per_turn"] is None else f"{r['min_server_cpu_ms_per_turn']:.2f}",
            ]
            for r in runs
        ],
    )
    data = {
        "script": "throughput",
        "quick": args.quick,
        "machine": c.machine_info(),
        "endpoint": args.endpoint,
        "chunks": args.chunks,
        "step_s": step,
        "client_loop": loop_impl,
        "runs": runs,
        "elapsed_s": time.monotonic() - t_start,
    }
    c.write_json("throughput", data, args.out)
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
