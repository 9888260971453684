"""Time to first token and total turn time at 1, 10 and 100 concurrent clients, in one run.

Targets (same fake upstream, 20-chunk replies, OpenAI chat-completions wire):
  direct         the fake upstream itself (POST /v1/chat/completions, stream)
  native-sse     the project: POST /api/sessions/{key}/messages, Accept: text/event-stream
  openai-compat  the project: POST /v1/chat/completions, stream
  litellm        LiteLLM proxy (one process) on the same upstream, installed by this script into
                 bench/.litellm-venv (skipped with the reason printed when it cannot be)

Closed loop: each client sends a turn, reads it to the end, sends the next (keep-alive), for
``--duration`` seconds per cell after one warm-up turn. TTFT = request written -> first byte of the
first content token read. Each client has its own session (the project allows one answer at a
time per session), so every turn of the project is persisted to PostgreSQL.

    .venv/bin/python bench/ttft.py            # full (~2 min, plus LiteLLM's first install)
    .venv/bin/python bench/ttft.py --quick    # a few seconds, no LiteLLM
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

LITELLM_VENV = c.BENCH / ".litellm-venv"
MASTER_KEY = "sk-bench-" + os.urandom(16).hex()  # LiteLLM refuses to start without one


# --- LiteLLM ----------------------------------------------------------------------------------
def ensure_litellm(mode: str, quick: bool) -> tuple[Path | None, str]:
    exe = LITELLM_VENV / "bin" / "litellm"
    py = LITELLM_VENV / "bin" / "python"
    if mode == "skip":
        return None, "skipped (--litellm skip)"
    if quick and mode == "auto":
        return None, "skipped in --quick (LiteLLM takes ~15 s to start; --litellm require to include it)"
    if (
        exe.exists()
        and subprocess.run(
            [str(py), "-c", "import litellm.proxy.proxy_server"], capture_output=True, timeout=120
        ).returncode
        == 0
    ):
        return exe, "installed"
    print("installing LiteLLM proxy into bench/.litellm-venv (pip, a few minutes) ...", flush=True)
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, timeout=120)
        out = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "litellm[proxy]"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode != 0:
            tail = "\n".join(line for line in out.stderr.splitlines() if "ignored" not in line)[-800:]
            return None, f"pip install litellm[proxy] failed: {tail}"
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not install LiteLLM: {exc!r}"
    return (exe, "installed now") if exe.exists() else (None, "litellm executable missing after install")


def start_litellm(exe: Path, upstream: c.Upstream) -> tuple[c.Child, str]:
    port = c.free_port()
    cfg = c.RESULTS / "litellm-config.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream.url}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  num_retries: 0\n"
    )
    env = dict(os.environ)
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
            "LITELLM_MASTER_KEY": MASTER_KEY,
        }
    )
    for key in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
        env.pop(key, None)
    argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    child = c.Child("litellm", argv, env)
    url = f"http://127.0.0.1:{port}"
    c.wait_http(url + "/health/liveliness", 180, child.proc)
    return child, url


# --- measuring --------------------------------------------------------------------------------
async def run_cell(
    target: c.Target, concurrency: int, duration: float, tag: str, content: str, decompose: bool = False
):
    """Warm every client (one turn each), then measure all of them for ``duration`` seconds.

    With ``decompose`` each turn's message is unique and its wall-clock send and first-token times
    are kept, so they can be matched with the upstream's ``received_at`` (see ``split_ttft``)."""
    host, port = target.hostport
    conns = [c.HttpConn(host, port) for _ in range(concurrency)]
    keys = [f"{tag}-{i}" for i in range(concurrency)]
    warm = await asyncio.gather(*(c.run_turn(conns[i], target, keys[i], content) for i in range(concurrency)))
    warm_errors = [w.error for w in warm if not w.ok]
    ttfts: list[float] = []
    totals: list[float] = []
    tokens: list[int] = []
    errors: list[str] = []
    marks: list[tuple[str, float, float]] = []  # (message, wall send, wall first token)
    deadline = time.perf_counter() + duration

    async def user(i: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            text = f"{content} {keys[i]}-{n}" if decompose else content
            sent = time.time()
            res = await c.run_turn(conns[i], target, keys[i], text)
            if res.ok and res.ttft is not None:
                if decompose:
                    marks.append((text, sent, sent + res.ttft))
                ttfts.append(res.ttft)
                totals.append(res.total)
                tokens.append(res.tokens)
            else:
                errors.append(res.error or "no token")
                await asyncio.sleep(0.05)

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(user(i) for i in range(concurrency))), duration + 120)
    elapsed = time.perf_counter() - t0
    for conn in conns:
        conn.close()
    return {
        "target": target.name,
        "concurrency": concurrency,
        "turns": len(ttfts),
        "errors": len(errors) + len(warm_errors),
        "error_samples": (warm_errors + errors)[:3],
        "turns_per_s": len(ttfts) / elapsed,
        "ttft": c.summary(ttfts),
        "total": c.summary(totals),
        "tokens_per_turn": (sum(tokens) / len(tokens)) if tokens else None,
        "warmup_ttft_max": max((w.ttft for w in warm if w.ok and w.ttft is not None), default=None),
        "_marks": marks,
    }


def target_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    """The issue's targets against this run: measured, target, met or not (``-`` when not measured)."""
    by = {(r["target"], r["concurrency"]): r for r in cells}

    def cell(target: str, conc: int, key: str) -> Any:
        return (by.get((target, conc)) or {}).get(key)

    rows: list[list[str]] = []

    def row(what: str, value: float | None, target: str, met: bool | None, unit: str = "") -> None:
        shown = "-" if value is None else f"{value:.1f}{unit}"
        rows.append(
            [what, shown, target, "-" if met is None or value is None else ("met" if met else "NOT met")]
        )

    for name in ("native-sse", "openai-compat"):
        for conc, bound in ((1, 2.0), (10, 10.0)):
            added = cell(name, conc, "added_ttft_p50_ms")
            row(
                f"{name} added TTFT p50, {conc} conc",
                added,
                f"<= +{bound:g} ms",
                added is not None and added <= bound,
                " ms",
            )
    conc = max((r["concurrency"] for r in cells), default=0)
    lite = cell("litellm", conc, "turns_per_s")
    direct = cell("direct", conc, "turns_per_s")
    row(f"direct upstream turns/s, {conc} conc (the ceiling)", direct, "-", None)
    row(f"LiteLLM turns/s, {conc} conc", lite, "-", None)
    for name in ("native-sse", "openai-compat"):
        rate = cell(name, conc, "turns_per_s")
        need = max(300.0, 6 * lite) if lite else 300.0
        row(
            f"{name} turns/s, {conc} conc",
            rate,
            f">= {need:.0f} (300, 6x LiteLLM)",
            rate is not None and rate >= need,
        )
        cpus = [
            r["server_cpu_ms_per_turn"]
            for r in cells
            if r["target"] == name and r.get("server_cpu_ms_per_turn")
        ]
        row(
            f"{name} server CPU per turn (best cell)",
            min(cpus, default=None),
            "<= 3 ms",
            bool(cpus) and min(cpus) <= 3.0,
            " ms",
        )
    first, tenth = cell("native-sse", 1, "warmup_ttft_max"), cell("native-sse", 1, "ttft")
    if first is not None and tenth:
        p50 = tenth["p50"] * 1000
        row(
            "native-sse first turn after start (TTFT)",
            first * 1000,
            f"~ p50 ({p50:.1f} ms)",
            first * 1000 <= 2 * p50 + 5,
            " ms",
        )
    return rows


def split_ttft(marks: list[tuple[str, float, float]], upstream: c.Upstream) -> dict[str, Any] | None:
    """TTFT = before the upstream (client send -> upstream received the request: HTTP handler, turn
    opening, SDK request) + after (upstream received -> first token at the client: upstream, SDK
    parsing, relay, encoding). ``received_at`` is the fake upstream's own wall-clock record."""
    if not marks:
        return None
    received: dict[str, float] = {}
    for req in upstream.requests():
        msgs = (req.get("json") or {}).get("messages") or []
        if msgs and isinstance(msgs[-1].get("content"), str):
            received[msgs[-1]["content"]] = req["received_at"]
    before, after = [], []
    for text, sent, first in marks:
        if text in received:
            before.append(received[text] - sent)
            after.append(first - received[text])
    return {"before_upstream": c.summary(before), "after_upstream": c.summary(after)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--levels", default="1,10,100", help="concurrency levels")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per cell")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per reply")
    parser.add_argument("--targets", default="direct,native-sse,openai-compat,litellm")
    parser.add_argument("--litellm", choices=("auto", "skip", "require"), default="auto")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    duration = args.duration
    if args.quick:
        levels, duration = [1, 4], 0.6
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]

    c.apply_common(args)
    c.raise_nofile()
    loop_impl = c.install_fast_loop()
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    c.ensure_database()
    upstream = c.start_upstream(chunks=args.chunks)
    server = c.start_server(args, upstream.url + "/v1")
    litellm_note = "not requested"
    litellm_child: c.Child | None = None
    targets: list[c.Target] = []
    if "direct" in wanted:
        targets.append(c.direct_target(upstream))
    if "native-sse" in wanted:
        targets.append(c.native_target(server.urls[0]))
    if "openai-compat" in wanted:
        targets.append(c.openai_target(server.urls[0]))
    if "litellm" in wanted:
        exe, litellm_note = ensure_litellm(args.litellm, args.quick)
        if exe is not None:
            try:
                litellm_child, url = start_litellm(exe, upstream)
                targets.append(
                    c.Target(
                        "litellm",
                        url,
                        "/v1/chat/completions",
                        True,
                        b"data: [DONE]",
                        (("Authorization", f"Bearer {MASTER_KEY}"),),
                    )
                )
            except Exception as exc:
                litellm_note = f"did not start: {exc}"
        if exe is None or not any(t.name == "litellm" for t in targets):
            print(f"LiteLLM: {litellm_note}")
            if args.litellm == "require":
                return 2
    run = c.run_id()
    cells: list[dict[str, Any]] = []
    t_start = time.monotonic()
    for level in levels:
        for target in targets:
            upstream.reset()
            if target.name == "litellm" and litellm_child is not None:
                cpu_of = lambda: c.cpu_seconds(litellm_child.tree())  # noqa: E731
            elif target.name in ("native-sse", "openai-compat"):
                cpu_of = server.cpu
            else:
                cpu_of = None
            cpu0 = cpu_of() if cpu_of else None
            decompose = level <= 10 and target.name != "direct"
            result = asyncio.run(
                run_cell(target, level, duration, f"tt{run}-{target.name}-{level}", "bench turn", decompose)
            )
            result["ttft_split"] = split_ttft(result.pop("_marks"), upstream) if decompose else None
            if cpu0 is not None and result["turns"]:
                result["server_cpu_ms_per_turn"] = (cpu_of() - cpu0) * 1000 / result["turns"]
            cells.append(result)
            print(
                f"  {target.name:>13} c={level:<4} turns={result['turns']:<5} err={result['errors']:<3} "
                f"ttft p50={c.fmt_ms(result['ttft']['p50'])} ms",
                flush=True,
            )
    # ratios against direct
    by = {(r["target"], r["concurrency"]): r for r in cells}
    rows = []
    for r in cells:
        d = by.get(("direct", r["concurrency"]))
        p50, dp50 = r["ttft"]["p50"], (d["ttft"]["p50"] if d else None)
        r["added_ttft_p50_ms"] = (p50 - dp50) * 1000 if (p50 is not None and dp50 is not None) else None
        r["ttft_ratio_p50"] = (p50 / dp50) if (p50 and dp50) else None
        tp50, dtp50 = r["total"]["p50"], (d["total"]["p50"] if d else None)
        r["total_ratio_p50"] = (tp50 / dtp50) if (tp50 and dtp50) else None
        rows.append(
            [
                r["concurrency"],
                r["target"],
                r["turns"],
                r["errors"],
                f"{r['turns_per_s']:.0f}",
                c.fmt_ms(r["ttft"]["p50"]),
                c.fmt_ms(r["ttft"]["p99"]),
                "-" if r["added_ttft_p50_ms"] is None else f"{r['added_ttft_p50_ms']:+.1f}",
                "-" if r["ttft_ratio_p50"] is None else f"{r['ttft_ratio_p50']:.2f}x",
                c.fmt_ms(r["total"]["p50"]),
                c.fmt_ms(r["total"]["p99"]),
                "-" if r["total_ratio_p50"] is None else f"{r['total_ratio_p50']:.2f}x",
                "-" if r.get("server_cpu_ms_per_turn") is None else f"{r['server_cpu_ms_per_turn']:.2f}",
            ]
        )
    c.print_table(
        f"TTFT and total turn time ({args.chunks}-chunk replies; ms; server {server.kind} x{args.workers} "
        f"{' '.join(server.flags)}; client loop {loop_impl})",
        [
            "conc",
            "target",
            "turns",
            "err",
            "turns/s",
            "ttft p50",
            "ttft p99",
            "+ttft p50",
            "ttft x",
            "total p50",
            "total p99",
            "total x",
            "srv cpu ms/turn",
        ],
        rows,
    )
    split_rows = [
        [
            r["concurrency"],
            r["target"],
            c.fmt_ms(r["ttft"]["p50"]),
            c.fmt_ms(r["ttft_split"]["before_upstream"]["p50"]),
            c.fmt_ms(r["ttft_split"]["after_upstream"]["p50"]),
            c.fmt_ms(r["ttft_split"]["before_upstream"]["p99"]),
            c.fmt_ms(r["ttft_split"]["after_upstream"]["p99"]),
        ]
        for r in cells
        if r.get("ttft_split") and r["ttft_split"]["before_upstream"]["n"]
    ]
    if split_rows:
        c.print_table(
            "Where the TTFT goes (ms): client send -> upstream got the request | upstream got it -> first "
            "token at the client",
            ["conc", "target", "ttft p50", "before p50", "after p50", "before p99", "after p99"],
            split_rows,
        )
    c.print_table("Targets (issue 18)", ["what", "measured", "target", ""], target_rows(cells))
    data = {
        "script": "ttft",
        "quick": args.quick,
        "machine": c.machine_info(),
        "server": c.describe_server(server, args),
        "client_loop": loop_impl,
        "chunks": args.chunks,
        "duration_per_cell_s": duration,
        "levels": levels,
        "litellm": litellm_note,
        "cells": cells,
        "elapsed_s": time.monotonic() - t_start,
    }
    c.write_json("ttft", data, args.out)
    return 0


if __name__ == "__main__":
    c.main_wrapper(main)
