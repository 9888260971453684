"""The TTFT waterfall: where a native SSE turn's time to first token goes, stage by stage.

Starts the fake upstream and the server as ``ttft.py`` does (the README's production command:
uvicorn, uvloop + httptools, one process, every turn persisted to PostgreSQL), with the turn stage
clock on (``TURN_TIMING=1``: ``conversations/telemetry/stages.py``). Each client sends native SSE
turns in a closed loop (``POST /api/sessions/{key}/messages``, ``Accept: text/event-stream``) for
``--duration`` seconds per level after two warm-up turns each; the server keeps one record per turn,
from the request's arrival (uvicorn parsed its head) to its first delta frame written to the socket,
read afterwards from ``GET /_turn_timing`` (served only while the clock is on).

For each level: per stage, the wall time and the CPU time (the turn's own: the event loop thread's
CPU in the steps of the turn's own tasks; the loop thread's, all turns; the process's, every thread)
— the median across turns of each stage, and the stages of the median turn (the turn whose
server-side TTFT is the median). The stages' sum is the server-side TTFT; the client's TTFT minus
it is the network, the client, and uvicorn reading the request before its task exists.

    .venv/bin/python bench/waterfall.py                            # 1 and 10 concurrent, 8 s each
    .venv/bin/python bench/waterfall.py --levels 1,10 --duration 8
    .venv/bin/python bench/waterfall.py --compare-off              # also the TTFT with the clock off
    .venv/bin/python bench/waterfall.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

RECORDS_PATH = "/_turn_timing"
#: Stages of the turn's critical path grouped by who spends the time.
GROUPS = (
    ("server, before the upstream call", "arrived", "sent"),
    ("the upstream (request written -> first body bytes)", "sent", "upstream_body"),
    ("server, after the upstream's first bytes", "upstream_body", "written"),
)
MS = 1e6  # ns per ms


def fetch_records(base: str) -> dict[str, Any]:
    status, body = c.http_get(base + RECORDS_PATH, timeout=30)
    if status != 200:
        raise RuntimeError(
            f"GET {RECORDS_PATH} answered {status}: the server under test has no turn stage clock "
            "(TURN_TIMING, conversations/telemetry/stages.py) — measure a revision that has it"
        )
    return json.loads(body)


async def run_level(
    target: c.Target, concurrency: int, duration: float, tag: str, server: c.Server, timed: bool
) -> dict[str, Any]:
    """Two warm-up turns per client, then a closed loop for ``duration`` s; the records of those turns."""
    host, port = target.hostport
    conns = [c.HttpConn(host, port) for _ in range(concurrency)]
    keys = [f"{tag}-{i}" for i in range(concurrency)]
    warm_errors: list[str] = []
    for _ in range(2):
        warm = await asyncio.gather(
            *(c.run_turn(conns[i], target, keys[i], "bench turn") for i in range(concurrency))
        )
        warm_errors += [w.error for w in warm if not w.ok]
    if timed:
        await asyncio.to_thread(fetch_records, target.url)  # forget the warm-up's records
    ttfts: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration

    async def user(i: int) -> None:
        while time.perf_counter() < deadline:
            res = await c.run_turn(conns[i], target, keys[i], "bench turn")
            if res.ok and res.ttft is not None:
                ttfts.append(res.ttft)
            else:
                errors.append(res.error or "no token")
                await asyncio.sleep(0.05)

    cpu0 = server.cpu()
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(user(i) for i in range(concurrency))), duration + 120)
    elapsed = time.perf_counter() - t0
    cpu = server.cpu() - cpu0
    for conn in conns:
        conn.close()
    served = await asyncio.to_thread(fetch_records, target.url) if timed else None
    return {
        "concurrency": concurrency,
        "turns": len(ttfts),
        "errors": len(errors) + len(warm_errors),
        "error_samples": (warm_errors + errors)[:3],
        "turns_per_s": len(ttfts) / elapsed if elapsed else 0.0,
        "client_ttft": c.summary(ttfts),
        "server_cpu_ms_per_turn": cpu * 1000 / len(ttfts) if ttfts else None,
        "_served": served,
    }


def _median(values: list[float]) -> float | None:
    return c.percentile(values, 50)


def waterfall(served: dict[str, Any]) -> dict[str, Any]:
    """Per stage (consecutive marks of the critical path a record has): wall and CPU, p50/p90
    across turns, and the median turn's own stages (the turn with the median server TTFT)."""
    chain = [name for name, _ in served["stages"]]
    labels = dict(served["stages"])
    records = [r for r in served["records"] if "written" in r]
    coverage = {name: sum(1 for r in records if name in r) for name in chain}

    def stages_of(record: dict[str, list]) -> list[tuple[str, list[float | None]]]:
        present = [name for name in chain if name in record]
        out = []
        for prev, name in itertools.pairwise(present):
            a, b = record[prev], record[name]
            out.append(
                (
                    name,
                    [
                        (y - x) / MS if x is not None and y is not None else None
                        for x, y in zip(a, b, strict=True)
                    ],
                )
            )
        return out

    per_stage: dict[str, list[list[float | None]]] = {name: [] for name in chain}
    totals: list[float] = []
    whole: list[list[float]] = []  # per turn: wall, own, loop, process from its first mark to "written"
    for record in records:
        for name, deltas in stages_of(record):
            per_stage[name].append(deltas)
        first = next(name for name in chain if name in record)
        whole.append([(record["written"][k] - record[first][k]) / MS for k in range(4)])
        totals.append(whole[-1][0])
    median_turn = median_whole = None
    if records:
        order = sorted(range(len(records)), key=lambda i: totals[i])
        middle = order[(len(order) - 1) // 2]
        median_turn, median_whole = dict(stages_of(records[middle])), whole[middle]
    rows = []
    for name in chain:
        values = per_stage[name]
        if not values:
            continue
        column = list(zip(*values, strict=True))  # wall, own, loop, proc

        def p(k: int, q: float, column: list = column) -> float | None:
            known = [v for v in column[k] if v is not None]
            return c.percentile(known, q)

        mt = (median_turn or {}).get(name)
        rows.append(
            {
                "mark": name,
                "stage": labels[name],
                "n": len(values),
                "wall_p50_ms": p(0, 50),
                "wall_p90_ms": p(0, 90),
                "cpu_p50_ms": p(1, 50),
                "loop_cpu_p50_ms": p(2, 50),
                "process_cpu_p50_ms": p(3, 50),
                "median_turn_wall_ms": mt[0] if mt else None,
                "median_turn_cpu_ms": mt[1] if mt else None,
            }
        )
    if whole:
        cols = list(zip(*whole, strict=True))
        rows.append(
            {
                "mark": "total",
                "stage": "TOTAL: arrival -> first delta written (server TTFT)",
                "n": len(whole),
                "wall_p50_ms": _median(list(cols[0])),
                "wall_p90_ms": c.percentile(list(cols[0]), 90),
                "cpu_p50_ms": _median(list(cols[1])),
                "loop_cpu_p50_ms": _median(list(cols[2])),
                "process_cpu_p50_ms": _median(list(cols[3])),
                "median_turn_wall_ms": median_whole[0],
                "median_turn_cpu_ms": median_whole[1],
            }
        )
    substages = []
    for start, end, label in served["substages"]:
        walls = [(r[end][0] - r[start][0]) / MS for r in records if start in r and end in r]
        if walls:
            substages.append(
                {"from": start, "to": end, "stage": label, "n": len(walls), "wall_p50_ms": _median(walls)}
            )
    groups = []
    for label, start, end in GROUPS:
        spans = [
            [(r[end][k] - r[start][k]) / MS for k in range(4)]
            for r in records
            if start in r and end in r and None not in r[start] and None not in r[end]
        ]
        if spans:
            cols = list(zip(*spans, strict=True))
            groups.append(
                {
                    "group": label,
                    "from": start,
                    "to": end,
                    "wall_p50_ms": _median(list(cols[0])),
                    "cpu_p50_ms": _median(list(cols[1])),
                }
            )
    notes = {
        note: _median([r[note][0] / MS for r in records if note in r and "arrived" in r])
        for note in served["notes"]
    }
    return {
        "records": len(records),
        "records_incomplete": len(served["records"]) - len(records),
        "coverage": coverage,
        "stages": rows,
        "substages": substages,
        "groups": groups,
        "server_ttft": c.summary(totals),
        "server_ttft_median_turn_ms": _median(totals),
        "sum_of_stage_p50s_ms": sum(r["wall_p50_ms"] or 0 for r in rows if r["mark"] != "total"),
        "notes_p50_ms": notes,
        "raw": served["records"][:2000],
    }


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_level(cell: dict[str, Any]) -> None:
    w = cell["waterfall"]
    conc = cell["concurrency"]
    rows = [
        [
            r["stage"],
            fmt(r["wall_p50_ms"]),
            fmt(r["wall_p90_ms"]),
            fmt(r["cpu_p50_ms"]),
            fmt(r["loop_cpu_p50_ms"]),
            fmt(r["process_cpu_p50_ms"]),
            fmt(r["median_turn_wall_ms"]),
            fmt(r["median_turn_cpu_ms"]),
        ]
        for r in w["stages"]
    ]
    at = next((i for i, r in enumerate(w["stages"]) if r["mark"] == "db_result"), len(rows) - 1) + 1
    rows[at:at] = [
        [f"  of which: {s['stage']}", fmt(s["wall_p50_ms"]), "", "", "", "", "", ""] for s in w["substages"]
    ]
    c.print_table(
        f"TTFT waterfall, {conc} concurrent: {w['records']} turns (ms; p50/p90 per stage across turns; "
        "cpu = the turn's own on the loop thread; loop = the loop thread, all turns; proc = the process, "
        "all threads; 'median turn' = the turn with the median server TTFT)",
        ["stage", "wall p50", "wall p90", "cpu p50", "loop p50", "proc p50", "median turn", "its cpu"],
        rows,
    )
    client = cell["client_ttft"]["p50"]
    server = w["server_ttft"]["p50"]
    print(
        f"  sum of stage p50s {fmt(w['sum_of_stage_p50s_ms'])} ms | server TTFT p50 {fmt(server)} ms "
        f"(arrival -> first delta written) | client TTFT p50 {c.fmt_ms(client)} ms | client - server "
        f"{fmt(client * 1000 - server if client is not None and server is not None else None)} ms "
        "(network, client, uvicorn reading the request)"
    )
    head = w["notes_p50_ms"].get("response_head")
    if head is not None:
        print(
            f"  (the response head and the started event went out at {fmt(head)} ms p50, off the critical path)"
        )
    for g in w["groups"]:
        print(
            f"  {g['group']:<52} wall p50 {fmt(g['wall_p50_ms']):>7} ms, cpu p50 {fmt(g['cpu_p50_ms']):>6} ms"
        )
    parts = [r for r in w["stages"] if r["mark"] != "total"]
    bound = max(parts, key=lambda r: r["wall_p50_ms"] or 0, default=None)
    if bound is not None:
        print(f"  largest stage: {bound['stage']} ({fmt(bound['wall_p50_ms'])} ms p50)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--levels", default="1,10", help="concurrency levels")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per level")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per reply")
    parser.add_argument(
        "--compare-off",
        action="store_true",
        help="then the same levels on a server without the clock: the client TTFT the clock costs",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    duration = args.duration
    if args.quick:
        levels, duration = [1, 4], 0.6
    c.apply_common(args)
    machine = c.machine_info()
    c.raise_nofile()
    loop_impl = c.install_fast_loop()
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    c.ensure_database()
    upstream = c.start_upstream(chunks=args.chunks)
    plain_env = list(args.env)
    args.env = [*plain_env, "TURN_TIMING=1"]
    server = c.start_server(args, upstream.url + "/v1")
    target = c.native_target(server.urls[0])
    run = c.run_id()
    t_start = time.monotonic()
    cells: list[dict[str, Any]] = []
    for level in levels:
        cell = asyncio.run(run_level(target, level, duration, f"wf{run}-{level}", server, timed=True))
        cell["waterfall"] = waterfall(cell.pop("_served"))
        cells.append(cell)
        print(
            f"  c={level:<3} turns={cell['turns']:<5} err={cell['errors']:<3} "
            f"client ttft p50={c.fmt_ms(cell['client_ttft']['p50'])} ms "
            f"server ttft p50={fmt(cell['waterfall']['server_ttft']['p50'])} ms",
            flush=True,
        )
    server_info = c.describe_server(server, args)
    server.stop()
    off_cells: list[dict[str, Any]] = []
    if args.compare_off:
        args.env = plain_env
        plain = c.start_server(args, upstream.url + "/v1", name="server-off")
        plain_target = c.native_target(plain.urls[0])
        for level in levels:
            cell = asyncio.run(
                run_level(plain_target, level, duration, f"wf{run}-off-{level}", plain, timed=False)
            )
            cell.pop("_served")
            off_cells.append(cell)
        plain.stop()
    for cell in cells:
        print_level(cell)
    if off_cells:
        rows = [
            [
                on["concurrency"],
                c.fmt_ms(on["client_ttft"]["p50"]),
                c.fmt_ms(off["client_ttft"]["p50"]),
                fmt(on["server_cpu_ms_per_turn"]),
                fmt(off["server_cpu_ms_per_turn"]),
            ]
            for on, off in zip(cells, off_cells, strict=True)
        ]
        c.print_table(
            "What the clock costs (client TTFT p50 and server CPU per whole turn, ms)",
            ["conc", "ttft, clock on", "ttft, clock off", "cpu/turn on", "cpu/turn off"],
            rows,
        )
    data = {
        "script": "waterfall",
        "quick": args.quick,
        "machine": machine,
        "server": server_info,
        "client_loop": loop_impl,
        "chunks": args.chunks,
        "duration_per_level_s": duration,
        "levels": levels,
        "cells": cells,
        "clock_off": off_cells,
        "elapsed_s": time.monotonic() - t_start,
    }
    c.write_json("waterfall", data, args.out)
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
