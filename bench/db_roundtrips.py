"""PostgreSQL round trips per turn for 5-, 50- and 500-chunk replies.

How it counts (real wire traffic, nothing in the app is changed): the server's DATABASE_URL points
at a small TCP proxy in this script that forwards to PostgreSQL and parses the frontend side of the
protocol. Every client message that makes the client wait for the server is one round trip:
a simple ``Query`` ('Q': BEGIN, COMMIT, SET, un-parameterized SQL), a ``Sync`` ('S': the end of an
extended-protocol Parse/Bind/Execute batch, how psycopg sends parameterized SQL), and each
connection start-up (SSLRequest and StartupMessage, each answered before the client goes on).
Connections opened are counted too (a login is several ms). ``pg_stat_database`` deltas for the
bench database (xact_commit, tup_inserted/updated/returned) are printed as a cross-check.
pg_stat_statements is not used: it needs shared_preload_libraries and a server restart.

    .venv/bin/python bench/db_roundtrips.py           # 5/50/500 chunks, 10 turns each (~30 s)
    .venv/bin/python bench/db_roundtrips.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.startup_rtts = 0
        self.types: collections.Counter[str] = collections.Counter()
        self.simple: collections.Counter[str] = collections.Counter()
        self.statements: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        rtt = self.types["Q"] + self.types["S"] + self.startup_rtts
        return {
            "round_trips": rtt,
            "connections": self.connections,
            "startup_round_trips": self.startup_rtts,
            "simple_queries": self.types["Q"],
            "extended_syncs": self.types["S"],
            "parse": self.types["P"],
            "execute": self.types["E"],
            "simple_by_kind": dict(self.simple),
        }


COUNT = Counter()


def _kind(sql: str) -> str:
    word = sql.strip().split(None, 1)[0].upper() if sql.strip() else "?"
    return (
        word if word in ("BEGIN", "COMMIT", "ROLLBACK", "SET", "SELECT", "SAVEPOINT", "RELEASE") else "other"
    )


async def _pump_frontend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Client -> PostgreSQL: forward everything, counting messages."""
    started = False
    while True:
        if not started:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            writer.write(head + rest)
            if code in (SSL_REQUEST, GSS_REQUEST):
                COUNT.startup_rtts += 1
                continue
            if code == CANCEL_REQUEST:
                continue
            COUNT.connections += 1
            COUNT.startup_rtts += 1
            started = True
            continue
        head = await reader.readexactly(5)
        kind = chr(head[0])
        (length,) = struct.unpack("!i", head[1:])
        body = await reader.readexactly(length - 4)
        writer.write(head + body)
        COUNT.types[kind] += 1
        if kind == "Q":
            sql = body[:-1].decode("utf-8", "replace")
            COUNT.simple[_kind(sql)] += 1
            COUNT.statements.append("Q " + sql[:160])
        elif kind == "P":
            name_end = body.index(b"\0")
            sql_end = body.index(b"\0", name_end + 1)
            COUNT.statements.append("P " + body[name_end + 1 : sql_end].decode("utf-8", "replace")[:160])
        elif kind == "S":
            COUNT.statements.append("S")


async def _pump_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _handle(client_r, client_w, pg_host: str, pg_port: int) -> None:
    try:
        pg_r, pg_w = await asyncio.open_connection(pg_host, pg_port)
    except OSError:
        client_w.close()
        return
    tasks = [
        asyncio.create_task(_pump_frontend(client_r, pg_w)),
        asyncio.create_task(_pump_backend(pg_r, client_w)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, pg_w):
            w.close()


def start_proxy(pg_host: str = c.PG_HOST, pg_port: int = c.PG_PORT) -> int:
    """Run the counting proxy in a background thread; returns its port."""
    ready = threading.Event()
    box: dict[str, int] = {}

    def run() -> None:
        async def serve() -> None:
            server = await asyncio.start_server(lambda r, w: _handle(r, w, pg_host, pg_port), "127.0.0.1", 0)
            box["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        asyncio.run(serve())

    threading.Thread(target=run, daemon=True, name="pg-counting-proxy").start()
    ready.wait(10)
    return box["port"]


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
    proxy_port = start_proxy()
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
