"""Shared plumbing of the bench scripts: processes, a raw asyncio HTTP/1.1 client, stats, output.

Everything listens on 127.0.0.1 only, every child process is started here and stopped here (by
its own pid), and every wait is bounded. Nothing in the application is changed: the server is
started with environment variables (and, for the pooling lever, ``bench.settings_pool``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
DEPS = BENCH / ".deps"  # uvloop / httptools / granian for the server, kept out of .venv
PY = sys.executable
DB_NAME = "chat_bench"


def _pg_base() -> tuple[str, str, int]:
    """``user[:password]``, host and port: from DATABASE_URL when it is PostgreSQL (CI may use a
    password), else postgres@127.0.0.1:5432 (trust)."""
    from urllib.parse import urlparse

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "pgsql://")):
        u = urlparse(url)
        auth = (u.username or "postgres") + (f":{u.password}" if u.password else "")
        return auth, u.hostname or "127.0.0.1", u.port or 5432
    return "postgres", "127.0.0.1", 5432


PG_AUTH, PG_HOST, PG_PORT = _pg_base()
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", f"postgresql://{PG_AUTH}@{PG_HOST}:{PG_PORT}/postgres")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

if DEPS.is_dir() and str(DEPS) not in sys.path:
    sys.path.append(str(DEPS))  # the client may use uvloop too (appended: .venv wins on conflicts)


# ---------------------------------------------------------------------------------------------
# CLI, output
# ---------------------------------------------------------------------------------------------
def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny configuration (a few seconds)")
    parser.add_argument(
        "--server", choices=("uvicorn", "daphne", "granian"), default="uvicorn", help="ASGI server"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--fast-http",
        choices=("auto", "on", "off"),
        default="auto",
        help="uvicorn: --loop uvloop --http httptools when importable (auto), always (on), never (off)",
    )
    parser.add_argument(
        "--settings",
        default="chatproject.settings",
        help="DJANGO_SETTINGS_MODULE for the server (bench.settings_pool tries Django's psycopg pool)",
    )
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra server env")
    parser.add_argument("--out", help="JSON output path (default bench/results/<script>.json)")
    parser.add_argument("--profile", action="store_true", help="py-spy record the server during the run")
    parser.add_argument(
        "--src",
        default="worktree",
        help="code to serve: worktree (default) or a git revision such as HEAD (exported read-only)",
    )


def apply_common(args: argparse.Namespace) -> None:
    resolve_source(args.src)


SOURCE: dict[str, Any] = {"path": ROOT, "db": DB_NAME, "label": "worktree"}


def resolve_source(src: str) -> None:
    """``worktree`` serves the checkout as it is; any git revision (``HEAD``, a sha) is exported
    with ``git archive`` (read-only) to bench/results/src-<sha> and served from there, with its own
    database ``chat_bench_<sha>``, so a tree that others are editing cannot break a run."""
    if src == "worktree":
        SOURCE.update(path=ROOT, db=DB_NAME, label="worktree")
        return
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=10", src], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = RESULTS / f"src-{sha}"
    if not (dest / "manage.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    SOURCE.update(path=dest, db=f"{DB_NAME}_{sha[:7]}", label=f"git {sha}")


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def write_json(script: str, data: dict[str, Any], out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{script}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    print(f"\nwrote {path}")
    return path


def machine_info() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "python": sys.version.split()[0],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "note": "shared 2-core machine: other work may run at the same time (see loadavg)",
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": (sum(values) / len(values)) if values else None,
    }


def raise_nofile(want: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def install_fast_loop() -> str:
    """uvloop for the client's own loop when importable (the client must not be the bottleneck)."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    except ImportError:
        return "asyncio"


# ---------------------------------------------------------------------------------------------
# /proc: CPU and RSS of a process tree
# ---------------------------------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of ``names`` (e.g. PostgreSQL's backends, Redis)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def services_cpu_seconds() -> float:
    """CPU of PostgreSQL and Redis on this machine (they share the cores with the server)."""
    return postgres_cpu_seconds() + redis_cpu_seconds()


def postgres_cpu_seconds() -> float:
    """CPU of PostgreSQL's processes (the postmaster, its backends and workers) on this machine."""
    return cpu_seconds(pids_named("postgres", "postmaster"))


def redis_cpu_seconds() -> float:
    return cpu_seconds(pids_named("redis-server"))


def process_tree(pid: int) -> list[int]:
    children = _children_map()
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime (seconds) summed over ``pids`` (from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError):
            continue
    return total / CLK_TCK


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError):
            continue
    return total


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post_json(url: str, payload: Any, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode} (see {LOGS})")
        try:
            status, _ = http_get(url, timeout=1.0)
            if status in ok:
                return
            last = status
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s (last: {last!r})")


class Child:
    """A child process in its own process group, logging to bench/results/logs/<name>.log."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd or ROOT,
            env=env or dict(os.environ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        _children.append(self)

    def tree(self) -> list[int]:
        return process_tree(self.pid)

    def stop(self, timeout: float = 8.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)  # our own group: the child and its workers only
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        with contextlib.suppress(ValueError):
            _children.remove(self)


_children: list[Child] = []


def stop_all_children() -> None:
    for child in list(reversed(_children)):
        with contextlib.suppress(Exception):
            child.stop()


def _on_signal(signum, frame):  # stop children on Ctrl-C / SIGTERM too
    stop_all_children()
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


@dataclass
class Upstream:
    child: Child
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def reset(self) -> None:
        http_post_json(self.url + "/_control/reset", {})

    def requests(self) -> list[dict[str, Any]]:
        _, body = http_get(self.url + "/_control/requests", timeout=30)
        return json.loads(body)


def start_upstream(chunks: int = 20, delay: float = 0.0, name: str = "upstream") -> Upstream:
    """The fake upstream (``python -m tests.fake_upstream``, the tests' own) as a subprocess."""
    port = free_port()
    argv = [
        PY,
        "-m",
        "tests.fake_upstream",
        "--port",
        str(port),
        "--chunks",
        str(chunks),
        "--delay",
        str(delay),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([str(DEPS)] if DEPS.is_dir() else [])])
    child = Child(name, argv, env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_control/health", 20, child.proc)
    return Upstream(child, url)


def database_url(name: str | None = None, host: str | None = None, port: int | None = None) -> str:
    return f"postgres://{PG_AUTH}@{host or PG_HOST}:{port or PG_PORT}/{name or SOURCE['db']}"


def ensure_database(name: str | None = None) -> None:
    """Create the bench database if missing and migrate it (``manage.py migrate``)."""
    import psycopg

    name = name or SOURCE["db"]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = server_env("http://127.0.0.1:9/v1")
    env["DATABASE_URL"] = database_url(name)
    out = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=SOURCE["path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if out.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{out.stdout}\n{out.stderr}")


def server_env(upstream_openai_base: str, extra: Iterable[str] = (), settings: str | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "REDIS_URL": "redis://127.0.0.1:6379/3",
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": upstream_openai_base,
            "SECRET_KEY": "bench",
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOW_ANONYMOUS": "true",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "RATE_LIMIT_TURNS": "",  # the per-IP turn limit (60/minute by default) would cap the bench
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    for item in extra:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _importable(module: str, env: dict[str, str]) -> bool:
    code = f"import importlib.util,sys;sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([PY, "-c", code], env=env, cwd=SOURCE["path"], timeout=30).returncode == 0


@dataclass
class Server:
    kind: str
    children: list[Child]
    urls: list[str]
    flags: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [p for c in self.children for p in c.tree()]

    def worker_pids(self) -> list[int]:
        """The processes that serve requests (uvicorn/granian workers; the supervisor is excluded)."""
        pids = self.pids()
        if len(pids) > len(self.children):
            roots = {c.pid for c in self.children}
            return [p for p in pids if p not in roots] or pids
        return pids

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def stop(self) -> None:
        for child in self.children:
            child.stop()


def start_server(args: argparse.Namespace, upstream_openai_base: str, name: str = "server") -> Server:
    """Start ``args.server`` with ``args.workers`` processes on free ports; wait for /health."""
    env = server_env(upstream_openai_base, args.env, args.settings)
    flags: list[str] = []
    src = SOURCE["path"]
    env["PYTHONPATH"] = os.pathsep.join([str(src), *([str(DEPS)] if DEPS.is_dir() else [])])
    if args.settings.startswith("bench."):
        env["PYTHONPATH"] += os.pathsep + str(ROOT)  # bench.settings_pool lives here
    app = "chatproject.asgi:application"
    children: list[Child] = []
    urls: list[str] = []
    if args.server == "uvicorn":
        port = free_port()
        argv = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning", "--backlog", "4096"]
        if args.workers > 1:
            argv += ["--workers", str(args.workers)]
        fast = args.fast_http == "on" or (
            args.fast_http == "auto" and _importable("uvloop", env) and _importable("httptools", env)
        )
        if fast:
            flags = ["--loop", "uvloop", "--http", "httptools"]
        else:
            flags = ["--loop", "asyncio", "--http", "h11"]
        children.append(Child(name, argv + flags, env, src))
        urls.append(f"http://127.0.0.1:{port}")
    elif args.server == "granian":
        port = free_port()
        argv = [PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(args.workers), "--log-level", "warning", "--no-log"]
        argv += ["--backlog", "8192", "--backpressure", "8192"]
        flags = ["--loop", "uvloop"] if args.fast_http != "off" and _importable("uvloop", env) else []
        children.append(Child(name, [*argv, *flags, app], env, src))
        urls.append(f"http://127.0.0.1:{port}")
    else:  # daphne has no worker processes: N independent daphnes, the client spreads over them
        for i in range(args.workers):
            port = free_port()
            argv = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
            children.append(Child(f"{name}-{i}", argv, env, src))
            urls.append(f"http://127.0.0.1:{port}")
    server = Server(args.server, children, urls, flags)
    try:
        for url, child in zip(urls, children, strict=True):
            wait_http(url + "/health", 60, child.proc)
        if args.server in ("uvicorn", "granian") and args.workers > 1:
            _wait_workers(server, args.workers)
    except Exception:
        server.stop()
        raise
    return server


def _wait_workers(server: Server, workers: int, timeout: float = 60) -> None:
    """Multi-process servers answer /health before every worker has imported Django: wait for all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.worker_pids()) >= workers:
            # each worker imports the app; give the last one time to finish
            for _ in range(workers * 4):
                http_get(server.urls[0] + "/health", timeout=5)
            return
        time.sleep(0.2)


def describe_server(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": server.kind,
        "workers": args.workers,
        "flags": server.flags,
        "settings": args.settings,
        "extra_env": args.env,
        "source": SOURCE["label"],
        "database": SOURCE["db"],
    }


# ---------------------------------------------------------------------------------------------
# py-spy
# ---------------------------------------------------------------------------------------------
def pyspy_path() -> str | None:
    cand = Path(PY).parent / "py-spy"
    return str(cand) if cand.exists() else shutil.which("py-spy")


def start_profile(server: Server, duration: float, stem: str, rate: int = 100) -> list[Child]:
    """py-spy record every worker for ``duration`` s: an SVG flame graph and raw collapsed stacks.

    ``--gil``: only samples of the thread holding the GIL, i.e. Python CPU time (threads blocked on
    PostgreSQL or a socket would otherwise dominate the picture)."""
    spy = pyspy_path()
    if spy is None:
        print("py-spy not found (pip install py-spy): no profile")
        return []
    out: list[Child] = []
    for i, pid in enumerate(server.worker_pids()):
        for fmt, ext in (("raw", "txt"), ("flamegraph", "svg")):
            path = RESULTS / f"{stem}-{i}.{ext}"
            argv = [spy, "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", str(rate)]
            argv += ["--format", fmt, "--output", str(path), "--nonblocking", "--gil"]
            out.append(Child(f"pyspy-{stem}-{i}-{fmt}", argv))
    return out


# ---------------------------------------------------------------------------------------------
# A raw asyncio HTTP/1.1 client: keep-alive, streaming, first-token time
# ---------------------------------------------------------------------------------------------
OPENAI_CONTENT = re.compile(rb'"content":\s?"(?!")')  # a delta with non-empty content
NATIVE_DELTA = b"event: delta"


@dataclass(slots=True)
class StreamResult:
    ok: bool
    status: int
    ttft: float | None  # seconds from the request written to the first content token read
    total: float
    tokens: int  # content events seen
    error: str = ""
    chunk_times: list[float] | None = None  # monotonic receive time per content event (if asked)


class HttpConn:
    """One keep-alive HTTP/1.1 connection. ``stream()`` sends a request and reads the whole response."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def stream(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        openai_format: bool,
        done_marker: bytes,
        keep_times: bool = False,
        wall_times: bool = False,
    ) -> StreamResult:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        clock = time.time if wall_times else time.perf_counter
        t0 = time.perf_counter()
        self.writer.write(head.encode() + body)
        reader = self.reader
        try:
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.close()
            return StreamResult(False, 0, None, time.perf_counter() - t0, 0, f"no response: {exc!r}")
        lines = raw_head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            if b":" in line:
                k, _, v = line.partition(b":")
                hdrs[k.strip().lower()] = v.strip().lower()
        chunked = hdrs.get(b"transfer-encoding") == b"chunked"
        length = int(hdrs[b"content-length"]) if b"content-length" in hdrs else None
        close_after = hdrs.get(b"connection") == b"close"
        buf = bytearray()
        ttft: float | None = None
        times: list[float] | None = [] if keep_times else None
        seen = 0
        try:
            while True:
                if length is not None:
                    if len(buf) >= length:
                        break
                    data = await reader.read(min(65536, length - len(buf)))
                else:
                    data = await reader.read(65536)
                if not data:
                    if chunked or length is not None:
                        raise ConnectionError("connection closed mid-response")
                    break
                now = clock()
                start = max(0, len(buf) - 32)
                buf += data
                if ttft is None or times is not None:
                    window = bytes(buf[start:])
                    n = len(OPENAI_CONTENT.findall(window)) if openai_format else window.count(NATIVE_DELTA)
                    if n:
                        if ttft is None:
                            ttft = time.perf_counter() - t0
                        if times is not None:
                            times.extend([now] * n)
                if (
                    chunked
                    and buf.endswith(b"0\r\n\r\n")
                    and (len(buf) == 5 or buf.endswith(b"\r\n0\r\n\r\n"))
                ):
                    break
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            return StreamResult(False, status, ttft, time.perf_counter() - t0, seen, f"read: {exc!r}")
        total = time.perf_counter() - t0
        if close_after or (length is None and not chunked):
            self.close()
        tokens = (
            len(times)
            if times is not None
            else (len(OPENAI_CONTENT.findall(buf)) if openai_format else buf.count(NATIVE_DELTA))
        )
        ok = status == 200 and done_marker in buf[-4096:]
        error = "" if ok else f"status {status}: {bytes(buf[:300])!r}"
        return StreamResult(ok, status, ttft, total, tokens, error, times)


@dataclass(frozen=True)
class Target:
    """An endpoint a turn can be sent to."""

    name: str
    url: str  # base http://127.0.0.1:port
    path: str
    openai_format: bool
    done_marker: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def hostport(self) -> tuple[str, int]:
        hostport = self.url.split("//", 1)[1]
        host, _, port = hostport.partition(":")
        return host, int(port)

    def request(self, user: str, content: str, model: str = "gpt-4o-mini") -> tuple[bytes, dict[str, str]]:
        if self.openai_format:
            body = {
                "model": model,
                "messages": [{"role": "user", "content": content}],
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            headers = {
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
                "X-Session-Id": user,
            }
            headers.update(self.extra_headers)
            return json.dumps(body).encode(), headers
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        return json.dumps({"content": content}).encode(), headers


def direct_target(upstream: Upstream) -> Target:
    return Target("direct", upstream.url, "/v1/chat/completions", True, b"data: [DONE]")


def native_target(base: str) -> Target:
    return Target("native-sse", base, "/api/sessions/{user}/messages", False, b"event: completed")


def openai_target(base: str) -> Target:
    return Target("openai-compat", base, "/v1/chat/completions", True, b"data: [DONE]")


async def run_turn(conn: HttpConn, target: Target, user: str, content: str, **kw: Any) -> StreamResult:
    body, headers = target.request(user, content)
    path = target.path.replace("{user}", user)
    try:
        return await conn.stream(
            path, body, headers, openai_format=target.openai_format, done_marker=target.done_marker, **kw
        )
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        conn.close()
        return StreamResult(False, 0, None, 0.0, 0, f"client: {exc!r}")


def run_id() -> str:
    return f"{int(time.time()) % 1_000_000:06d}{os.getpid() % 1000:03d}"


def main_wrapper(main) -> None:
    """Run ``main()``; whatever happens, stop every child process started here."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    finally:
        stop_all_children()
    sys.exit(code or 0)
