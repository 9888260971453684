"""PostgreSQL round trips per turn for 5-, 50- and 500-chunk replies.

How it counts (real wire traffic, nothing in the app is changed): the server's DATABASE_URL points
at a small TCP proxy in this script that forwards to PostgreSQL and parses the frontend side of the
protocol (``tests/pg_wire_proxy.py``). Every client message that makes the client wait for the
server is one round trip: a simple ``Query`` ('Q': BEGIN, COMMIT, SET, un-parameterized SQL), a
``Sync`` ('S': the end of an extended-protocol or pipelined batch), and each connection start-up.
Connections opened are counted too (a login is several ms). ``pg_stat_database`` deltas for the
bench database (xact_commit, tup_inserted/updated/returned) are printed as a cross-check.
pg_stat_statements is not used: it needs shared_preload_libraries and a server restart.

    .venv/bin/python bench/db_roundtrips.py           # 5/50/500 chunks, 10 turns each (~30 s)
    .venv/bin/python bench/db_roundtrips.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

sys.path.insert(0, str(c.ROOT))
from tests.pg_wire_proxy import PgWireProxy

PROXY = PgWireProxy(c.PG_HOST, c.PG_PORT)
COUNT = PROXY.count


def pg_stats(db: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(c.PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated "
            "FROM pg_stat_database WHERE datname = %s",
            (db,),
        ).fetchone()
    keys = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated")
    return dict(zip(keys, row or (0,) * 6, strict=True))


async def turns(target: c.Target, key: str, content: str, n: int) -> list[c.StreamResult]:
    host, port = target.hostport
    conn = c.HttpConn(host, port)
    out = []
    for _ in range(n):
        out.append(await c.run_turn(conn, target, key, content))
    conn.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--lengths", default="5,50,500", help="reply lengths in chunks")
    parser.add_argument("--turns", type=int, default=10, help="measured turns per length and mode")
    args = parser.parse_args()
    c.apply_common(args)
    lengths = [int(x) for x in args.lengths.split(",") if x]
    n = args.turns
    if args.quick:
        n = 2
    c.raise_nofile()
    c.install_fast_loop()
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    c.ensure_database()
    upstream = c.start_upstream(chunks=5)
    proxy_port = PROXY.start()
    args.env = [*args.env, f"DATABASE_URL={c.database_url(host='127.0.0.1', port=proxy_port)}"]
    server = c.start_server(args, upstream.url + "/v1")
    run = c.run_id()
    target = c.native_target(server.urls[0])
    results = []
    first_turn_statements: list[str] = []
    for mode in ("existing-session", "new-session"):
        for length in lengths:
            content = f"count round trips [[chunks={length}]]"
            key = f"rt{run}-{length}"
            if mode == "existing-session":
                warm = asyncio.run(turns(target, key, content, 1))  # creates the session
                if not warm[0].ok:
                    print(f"warm-up turn failed: {warm[0].error}")
                    return 1
            time.sleep(0.3)  # closing writes of earlier turns are done
            COUNT.reset()
            before = pg_stats(c.SOURCE["db"])
            if mode == "existing-session":
                res = asyncio.run(turns(target, key, content, n))
            else:
                res = []
                for i in range(n):
                    res += asyncio.run(turns(target, f"{key}-new-{i}", content, 1))
            time.sleep(0.3)
            after = pg_stats(c.SOURCE["db"])
            ok = [r for r in res if r.ok]
            snap = COUNT.snapshot()
            if not first_turn_statements and mode == "existing-session" and n:
                per = len(COUNT.statements) // n
                first_turn_statements = COUNT.statements[:per]
            row = {
                "mode": mode,
                "chunks": length,
                "turns": len(ok),
                "errors": len(res) - len(ok),
                "tokens_per_turn": (sum(r.tokens for r in ok) / len(ok)) if ok else None,
                **{f"{k}_per_turn": (v / n) for k, v in snap.items() if isinstance(v, int)},
                "simple_by_kind_per_turn": {k: v / n for k, v in snap["simple_by_kind"].items()},
                "pg_stat_database_per_turn": {k: (after[k] - before[k]) / n for k in after},
            }
            results.append(row)
    rows = [
        [
            r["mode"],
            r["chunks"],
            r["turns"],
            r["errors"],
            f"{r['tokens_per_turn']:.0f}" if r["tokens_per_turn"] else "-",
            f"{r['round_trips_per_turn']:.1f}",
            f"{r['connections_per_turn']:.1f}",
            f"{r['simple_queries_per_turn']:.1f}",
            f"{r['extended_syncs_per_turn']:.1f}",
            f"{r['pg_stat_database_per_turn']['xact_commit']:.1f}",
            f"{r['pg_stat_database_per_turn']['tup_inserted']:.1f}",
            f"{r['pg_stat_database_per_turn']['tup_updated']:.1f}",
        ]
        for r in results
    ]
    c.print_table(
        "PostgreSQL round trips per turn (counted on the wire by a proxy; native SSE endpoint)",
        [
            "mode",
            "chunks",
            "turns",
            "err",
            "deltas",
            "round trips",
            "connects",
            "simple Q",
            "ext. syncs",
            "commits*",
            "ins*",
            "upd*",
        ],
        rows,
    )
    print("  * pg_stat_database deltas per turn for the bench database (cross-check)")
    lens = {r["chunks"]: r["round_trips_per_turn"] for r in results if r["mode"] == "existing-session"}
    constant = len(set(round(v, 1) for v in lens.values())) == 1
    print(f"  round trips constant in reply length: {'yes' if constant else 'NO'} {lens}")
    print("\nstatements of one turn (existing session), in order (Q = simple query, P = parse, S = sync):")
    for stmt in first_turn_statements:
        print("   ", stmt)
    data = {
        "script": "db_roundtrips",
        "quick": args.quick,
        "machine": c.machine_info(),
        "server": c.describe_server(server, args),
        "method": "TCP proxy counting PostgreSQL frontend messages: round trips = Query + Sync + start-up",
        "turns_per_cell": n,
        "results": results,
        "constant_in_reply_length": constant,
        "one_turn_statements": first_turn_statements,
    }
    c.write_json("db_roundtrips", data, args.out)
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
