"""Many concurrent slow streams in one server process: errors, per-chunk delay, RSS.

N clients (default 2000) each start one turn whose upstream reply is 30 chunks, one per second
(``[[chunks=30 delay=1]]`` in the message), over:
  direct  the fake upstream itself (baseline: the upstream's own lateness under this load)
  sse     POST /api/sessions/{key}/messages, Accept: text/event-stream
  ws      ws/chat/{key}/ (sessions created beforehand directly in the database with the ORM)
Streams are started over ``--ramp`` seconds (default N/200) and then all run at once.

Delay of chunk i behind the upstream = client receive time of the i-th content event minus the
time the upstream sent it, where the send time is the upstream's own record of when the request
arrived (``GET /_control/requests`` -> ``received_at``, matched by a stream id in the message) plus
i x interval: the fake upstream sends chunk 0 right after its headers and chunk i after i pauses.
Both clocks are this machine's ``time.time()``. The upstream's pauses drift under load; the
``direct`` row measures that drift, so compare the rows. Also reported: time to the first chunk
(request written -> first content event), server RSS (peak, /proc) and PostgreSQL connections
held by the bench database (peak, pg_stat_activity).

    .venv/bin/python bench/open_streams.py                      # 2000 x 30 s, direct + sse + ws
    .venv/bin/python bench/open_streams.py --streams 500 --chunks 10 --transports sse
    .venv/bin/python bench/open_streams.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c


def create_sessions(keys: list[str]) -> None:
    """Anonymous conversations with these session keys, through the ORM (one bulk insert)."""
    code = (
        "import django, json, sys; django.setup()\n"
        "from conversations.models import Conversation\n"
        "keys = json.load(sys.stdin)\n"
        "Conversation.objects.bulk_create([Conversation(session_key=k, title='bench', owner=None) "
        "for k in keys], batch_size=1000)\n"
    )
    env = c.server_env("http://127.0.0.1:9/v1")
    env["DJANGO_SETTINGS_MODULE"] = "chatproject.settings"
    env["PYTHONPATH"] = str(c.SOURCE["path"])
    out = subprocess.run(
        [c.PY, "-c", code],
        input=json.dumps(keys),
        text=True,
        capture_output=True,
        env=env,
        cwd=c.SOURCE["path"],
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"creating sessions failed: {out.stderr[-2000:]}")


class Sampler:
    """Peak RSS of the server tree and peak PostgreSQL connections to the bench database."""

    def __init__(self, server: c.Server | None, db: str) -> None:
        self.server, self.db = server, db
        self.peak_rss = 0
        self.peak_pg = 0
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        conn = None
        with __import__("contextlib").suppress(Exception):
            conn = psycopg.connect(c.PG_ADMIN_DSN, autocommit=True)
        t0 = time.monotonic()
        while not self._stop.is_set():
            rss = self.server.rss() if self.server else 0
            pg = 0
            if conn is not None:
                with __import__("contextlib").suppress(Exception):
                    pg = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.db,)
                    ).fetchone()[0]
            self.peak_rss, self.peak_pg = max(self.peak_rss, rss), max(self.peak_pg, pg)
            self.samples.append((round(time.monotonic() - t0, 1), round(rss / 2**20, 1), pg))
            self._stop.wait(1.0)
        if conn is not None:
            conn.close()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def sse_stream(target: c.Target, key: str, content: str, limit: float) -> dict[str, Any]:
    host, port = target.hostport
    conn = c.HttpConn(host, port)
    t_sent = time.time()
    try:
        res = await asyncio.wait_for(
            c.run_turn(conn, target, key, content, keep_times=True, wall_times=True), limit
        )
    except TimeoutError:
        conn.close()
        return {"key": key, "ok": False, "error": "timeout", "sent": t_sent, "times": []}
    conn.close()
    return {
        "key": key,
        "ok": res.ok,
        "error": res.error[:200],
        "sent": t_sent,
        "times": res.chunk_times or [],
    }


async def ws_stream(url: str, key: str, content: str, limit: float) -> dict[str, Any]:
    import websockets

    times: list[float] = []
    t_sent = time.time()
    origin = url.replace("ws://", "http://").split("/ws/", 1)[0]
    try:
        async with asyncio.timeout(limit):
            async with websockets.connect(
                url,
                origin=origin,
                open_timeout=limit,
                ping_interval=None,
                max_queue=None,
                compression=None,
            ) as ws:
                t_sent = time.time()
                await ws.send(json.dumps({"type": "message", "content": content}))
                while True:
                    frame = json.loads(await ws.recv())
                    kind = frame.get("type")
                    if kind == "delta":
                        times.append(time.time())
                    elif kind == "done":
                        return {"key": key, "ok": True, "error": "", "sent": t_sent, "times": times}
                    elif kind == "error":
                        return {
                            "key": key,
                            "ok": False,
                            "error": str(frame)[:200],
                            "sent": t_sent,
                            "times": times,
                        }
    except TimeoutError:
        return {"key": key, "ok": False, "error": "timeout", "sent": t_sent, "times": times}
    except Exception as exc:
        return {"key": key, "ok": False, "error": repr(exc)[:200], "sent": t_sent, "times": times}


async def run_phase(
    transport: str,
    n: int,
    chunks: int,
    interval: float,
    ramp: float,
    run: str,
    upstream: c.Upstream,
    server: c.Server | None,
) -> list[dict[str, Any]]:
    timeout = chunks * interval + ramp + 180  # opening 2000 turns can take a minute or more
    tasks = []
    t0 = time.monotonic()
    for i in range(n):
        key = f"os{run}-{transport}-{i}"
        content = f"stream {key} [[chunks={chunks} delay={interval}]]"
        if transport == "direct":
            coro = sse_stream(c.direct_target(upstream), key, content, timeout)
        elif transport == "sse":
            coro = sse_stream(c.native_target(server.urls[i % len(server.urls)]), key, content, timeout)
        else:
            base = server.urls[i % len(server.urls)].replace("http://", "ws://")
            coro = ws_stream(f"{base}/ws/chat/{key}/", key, content, timeout)
        tasks.append(asyncio.create_task(coro))
        if ramp > 0:
            wait = t0 + ramp * (i + 1) / n - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
    return await asyncio.gather(*tasks)


def analyse(results: list[dict[str, Any]], received: dict[str, float], chunks: int, interval: float) -> dict:
    delays: list[float] = []
    first: list[float] = []
    to_upstream: list[float] = []
    unmatched = 0
    errors = [r["error"] for r in results if not r["ok"]]
    short = 0
    for r in results:
        times = r["times"]
        if r["ok"] and len(times) < chunks:
            short += 1
        if times:
            first.append(times[0] - r["sent"])
        start = received.get(r["key"])
        if start is None:
            unmatched += 1
            continue
        to_upstream.append(start - r["sent"])
        for i, t in enumerate(times):
            delays.append(t - (start + i * interval))
    return {
        "streams": len(results),
        "ok": sum(1 for r in results if r["ok"]),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "short_streams": short,
        "unmatched_streams": unmatched,
        "chunk_delay": c.summary(delays),
        "first_chunk_after_request": c.summary(first),
        "request_to_upstream": c.summary(to_upstream),  # turn opening + waiting for an SDK connection
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between upstream chunks")
    parser.add_argument("--ramp", type=float, help="seconds over which streams start (default streams/200)")
    parser.add_argument("--transports", default="direct,sse,ws")
    args = parser.parse_args()
    c.apply_common(args)
    if args.quick:
        args.streams, args.chunks, args.interval = 20, 3, 0.2
    ramp = args.ramp if args.ramp is not None else args.streams / 200
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    nofile = c.raise_nofile(max(65536, args.streams * 4 + 1000))
    loop_impl = c.install_fast_loop()
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    c.ensure_database()
    upstream = c.start_upstream(chunks=5)
    server = c.start_server(args, upstream.url + "/v1") if {"sse", "ws"} & set(transports) else None
    run = c.run_id()
    phases = []
    for transport in transports:
        if transport == "ws":
            create_sessions([f"os{run}-ws-{i}" for i in range(args.streams)])
        upstream.reset()
        cpu0 = server.cpu() if server else 0.0
        profilers: list[c.Child] = []
        if args.profile and server is not None and transport != "direct":
            # steady state: after every stream has started, for most of the streams' remaining life
            span = max(5.0, args.chunks * args.interval - 10)
            threading.Timer(
                ramp + 5,
                lambda t=transport, d=span, out=profilers: out.extend(
                    c.start_profile(server, d, f"profile-open-{t}")
                ),
            ).start()
        with Sampler(server if transport != "direct" else None, c.SOURCE["db"]) as sampler:
            t0 = time.monotonic()
            results = asyncio.run(
                run_phase(transport, args.streams, args.chunks, args.interval, ramp, run, upstream, server)
            )
            wall = time.monotonic() - t0
        for child in profilers:
            child.proc.wait(timeout=120)
            child.stop()
        received = {}
        for req in upstream.requests():
            body = req.get("json") or {}
            for m in body.get("messages", []):
                text = m.get("content") if isinstance(m.get("content"), str) else ""
                if text.startswith("stream os"):
                    received[text.split()[1]] = req["received_at"]
        phase = {
            "transport": transport,
            "wall_s": wall,
            **analyse(results, received, args.chunks, args.interval),
            "server_peak_rss_mb": sampler.peak_rss / 2**20 if transport != "direct" else None,
            "pg_connections_peak": sampler.peak_pg if transport != "direct" else None,
            "server_cpu_s": (server.cpu() - cpu0) if server and transport != "direct" else None,
            "timeline_s_rssmb_pgconns": sampler.samples if transport != "direct" else None,
        }
        phases.append(phase)
        d = phase["chunk_delay"]
        print(
            f"  {transport:>6}: ok {phase['ok']}/{phase['streams']} err {phase['errors']} "
            f"delay p50 {c.fmt_ms(d['p50'])} p99 {c.fmt_ms(d['p99'])} max {c.fmt_ms(d['max'])} ms "
            f"rss {phase['server_peak_rss_mb'] or 0:.0f} MB",
            flush=True,
        )
    rows = []
    for p in phases:
        d, f = p["chunk_delay"], p["first_chunk_after_request"]
        rows.append(
            [
                p["transport"],
                p["streams"],
                p["ok"],
                p["errors"],
                p["short_streams"],
                c.fmt_ms(d["p50"]),
                c.fmt_ms(d["p99"]),
                c.fmt_ms(d["max"]),
                c.fmt_ms(f["p50"]),
                c.fmt_ms(f["p99"]),
                "-" if p["server_peak_rss_mb"] is None else f"{p['server_peak_rss_mb']:.0f}",
                "-" if p["pg_connections_peak"] is None else p["pg_connections_peak"],
                "-" if p["server_cpu_s"] is None else f"{p['server_cpu_s']:.1f}",
            ]
        )
    c.print_table(
        f"{args.streams} concurrent streams x {args.chunks} chunks, {args.interval}s apart (ramp {ramp:.1f}s; "
        f"server {args.server} x{args.workers}; client loop {loop_impl}; ms)",
        [
            "transport",
            "streams",
            "ok",
            "err",
            "short",
            "delay p50",
            "delay p99",
            "delay max",
            "1st chunk p50",
            "1st chunk p99",
            "peak RSS MB",
            "peak PG conns",
            "srv CPU s",
        ],
        rows,
    )
    for p in phases:
        if p["error_samples"]:
            print(f"  {p['transport']} errors: {p['error_samples']}")
    data = {
        "script": "open_streams",
        "quick": args.quick,
        "machine": c.machine_info(),
        "server": c.describe_server(server, args) if server else None,
        "streams": args.streams,
        "chunks": args.chunks,
        "interval_s": args.interval,
        "ramp_s": ramp,
        "nofile": nofile,
        "client_loop": loop_impl,
        "phases": phases,
    }
    c.write_json("open_streams", data, args.out)
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
