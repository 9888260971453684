"""Scenario 4: PostgreSQL restarted under load (a PostgreSQL of the test's own, never the shared one).

What must hold: in-flight turns finish and persist, or end with a clear error event; no acknowledged
user message is lost (acknowledged = 2xx or the first frame of the turn); the server reconnects by
itself (same process, no restart); ``/health`` is 503 during the outage and 200 after, and the
first turns after a restart during which nothing ran do not meet stale pooled connections. Run over
both ways a turn's writes reach PostgreSQL (see ``PATHS``).

Figures: every turn sent counts as attempted; an acknowledged one counts as persisted when its user
message is stored, as lost otherwise. A turn sent *while PostgreSQL is down* may be refused with
``503 database_unavailable`` (JSON, ``Retry-After``) before anything is acknowledged or stored: it
counts as ``turns_refused`` (a documented, retryable refusal, as a 409 is) and not as
``server_5xx``. Any other 5xx (a 500, an HTML page, a 503 of another kind, a 503 once PostgreSQL is
back) counts as ``server_5xx`` and fails the test. A turn sent during the outage may also wait for
PostgreSQL instead (a psycopg pool waits up to its timeout for a connection) and then be answered
like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.fake_upstream import expected_reply
from tests.live_server import ROOT, LiveServer, free_port
from tests.turn_client import SSEParser


def _postgres_bin() -> Path | None:
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _postgres_user_missing() -> bool:
    """initdb refuses to run as root: then it runs as the ``postgres`` user, which must exist."""
    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return True
    return False


PG_BIN = _postgres_bin()

pytestmark = pytest.mark.skipif(
    PG_BIN is None or not (PG_BIN / "pg_ctl").exists() or _postgres_user_missing(),
    reason="needs PostgreSQL's initdb and pg_ctl (and a postgres user when run as root)",
)

IN_FLIGHT = 24  # streaming turns running when PostgreSQL goes away
DURING = 4  # new turns sent while it is down
OUTAGE_SECONDS = 1.5
QUIET_AFTER = 8  # turns sent at once after a restart during which nothing ran


class OwnPostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg-restart-"))
        self.data, self.sock, self.logfile = (
            self.root / "data",
            self.root / "sock",
            self.root / "postgres.log",
        )
        self.sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/chat"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["su", "postgres", "-c", shlex.join(cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> OwnPostgres:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE chat")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.logfile), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres():
    """Initialised, started and migrated once for the module; removed at the end."""
    pg = OwnPostgres()
    try:
        pg.init()
        env = {**os.environ, "DATABASE_URL": pg.url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield pg
    finally:
        pg.destroy()


def new_turn(session: str, content: str) -> dict:
    """A turn's record; ``answered`` is set at its first frame, or when it ends without one."""
    return {
        "session": session,
        "content": content,
        "events": [],
        "error": None,
        "exc": None,
        "answered": asyncio.Event(),
    }


async def stream_turn(client: httpx.AsyncClient, result: dict) -> dict:
    """One SSE turn, recorded in ``result`` as it goes: HTTP status, events, error body."""
    parser = SSEParser()
    try:
        async with client.stream(
            "POST",
            f"/api/sessions/{result['session']}/messages",
            json={"content": result["content"]},
            headers={"Accept": "text/event-stream"},
        ) as response:
            result["status"] = response.status_code
            result["content_type"] = response.headers.get("content-type", "")
            if response.status_code != 200:
                await response.aread()
                result["error"] = response.text
                return result
            async for text in response.aiter_text():
                result["events"].extend(frame.json() for frame in parser.feed(text))
                if result["events"]:
                    result["answered"].set()
    except httpx.HTTPError as exc:
        result["exc"] = repr(exc)
    finally:
        result["answered"].set()
    return result


def acknowledged(result: dict) -> bool:
    return 200 <= result.get("status", 0) < 300 or bool(result["events"])


def refused_while_down(result: dict) -> bool:
    return (
        result.get("status") == 503
        and "application/json" in result.get("content_type", "")
        and '"database_unavailable"' in (result["error"] or "")
    )


async def run_scenario(base_url: str, pg: OwnPostgres, prefix: str) -> dict:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        # Streams of 0.6 s to 3.4 s: some end while PostgreSQL is down, some after it is back.
        turns = [
            new_turn(f"{prefix}-flight-{i}", f"restart {i} [[chunks=12 delay={0.05 + 0.01 * i:.2f}]]")
            for i in range(IN_FLIGHT)
        ]
        in_flight = [asyncio.create_task(stream_turn(client, turn)) for turn in turns]
        # Restart once every stream has its first frame (or has ended): every turn is acknowledged.
        await asyncio.wait_for(asyncio.gather(*(t["answered"].wait() for t in turns)), 15)
        await asyncio.to_thread(pg.stop, "immediate")
        down_at = time.monotonic()

        # PostgreSQL down: /health says so; new turns are sent (answered below).
        during = [
            asyncio.create_task(
                stream_turn(client, new_turn(f"{prefix}-down-{i}", f"during outage {i} [[chunks=3]]"))
            )
            for i in range(DURING)
        ]
        health_during: list[tuple[int, dict]] = []
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            response = await client.get("/health", timeout=10)
            health_during.append((response.status_code, response.json()))
            await asyncio.sleep(0.1)
        await asyncio.to_thread(pg.start)
        back_at = time.monotonic()

        # Back: the same server process reconnects by itself.
        health_after = None
        while time.monotonic() - back_at < 15:
            health_after = await client.get("/health", timeout=10)
            if health_after.status_code == 200:
                break
            await asyncio.sleep(0.2)
        healthy_after = time.monotonic() - back_at
        during_results = await asyncio.wait_for(asyncio.gather(*during), 20)
        in_flight_results = await asyncio.wait_for(asyncio.gather(*in_flight), 30)
        fresh = await stream_turn(client, new_turn(f"{prefix}-after", "after the restart [[chunks=4]]"))

        # A restart while nothing runs: pooled connections go stale unnoticed. Once /health is 200
        # again, the next turns must not be the ones that find out.
        await asyncio.to_thread(pg.stop, "immediate")
        await asyncio.to_thread(pg.start)
        quiet_back_at = time.monotonic()
        while time.monotonic() - quiet_back_at < 15:
            if (await client.get("/health", timeout=10)).status_code == 200:
                break
            await asyncio.sleep(0.2)
        quiet = await asyncio.gather(
            *(
                stream_turn(
                    client, new_turn(f"{prefix}-quiet-{i}", f"after a quiet restart {i} [[chunks=3]]")
                )
                for i in range(QUIET_AFTER)
            )
        )
    return {
        "in_flight": in_flight_results,
        "during": during_results,
        "fresh": fresh,
        "quiet": quiet,
        "health_during": health_during,
        "health_after": health_after,
        "healthy_after": healthy_after,
    }


def wait_until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


# The two ways a turn's writes reach PostgreSQL: the ORM on a fresh connection per hop (the
# reference path, also SQLite's), and production's: psycopg natively with its own pool for the
# turn writes, Django's pool (DATABASE_POOL) for the rest.
PATHS = {
    "orm": {"TURN_DB_ASYNC": "false", "DATABASE_POOL": "false"},
    "native-pooled": {"TURN_DB_ASYNC": "true", "DATABASE_POOL": "true"},
}


@pytest.mark.parametrize("path", PATHS)
def test_turns_survive_a_postgres_restart_and_the_server_reconnects_by_itself(
    own_postgres, reliability_env, ledger, path
):
    pg = own_postgres
    prefix = path
    env = {
        **reliability_env,
        "DATABASE_URL": pg.url,
        **PATHS[path],
        "TURN_SWEEP_SECONDS": "1",
        "TURN_ORPHAN_SECONDS": "3",
    }
    server = LiveServer(env, server="uvicorn").start()
    try:
        pid = server.proc.pid
        outcome = asyncio.run(run_scenario(server.url, pg, prefix))
        ledger.fault("postgres_restart", 2)
        everything = [*outcome["in_flight"], *outcome["during"], outcome["fresh"], *outcome["quiet"]]
        refused = [r for r in outcome["during"] if refused_while_down(r)]
        unexpected_5xx = [r for r in everything if r.get("status", 0) >= 500 and r not in refused]
        ledger.add("turns_attempted", len(everything))
        ledger.add("turns_refused", len(refused))
        ledger.add("server_5xx", len(unexpected_5xx))
        assert server.proc.poll() is None and server.proc.pid == pid, "the server process did not survive"

        # /health: 503 naming the database while it is down, 200 again soon after it is back.
        assert any(
            status == 503 and body["database"] == "unavailable" for status, body in outcome["health_during"]
        ), outcome["health_during"]
        assert outcome["health_after"].status_code == 200, outcome["health_after"].text
        assert outcome["healthy_after"] < 10, outcome["healthy_after"]

        assert not unexpected_5xx, unexpected_5xx
        assert all(r["exc"] is None for r in everything), [r for r in everything if r["exc"]]

        # Turns sent during the outage: a clear JSON 503 (nothing stored), or answered like any other.
        assert all(r in refused or r["status"] == 200 for r in outcome["during"]), outcome["during"]

        # Every in-flight client got the whole reply or an error event (never a silent end);
        # the fresh turn after the restart works end to end.
        accepted = [r for r in everything if acknowledged(r)]
        for result in [*outcome["in_flight"], outcome["fresh"], *outcome["quiet"]]:
            assert result in accepted, result
        for result in accepted:
            terminal = result["events"][-1]
            assert terminal["type"] in ("completed", "failed"), result
            if terminal["type"] == "completed":
                assert terminal["content"] == expected_reply(result["content"])
                deltas = "".join(e["text"] for e in result["events"] if e["type"] == "delta")
                assert deltas == expected_reply(result["content"])
            else:
                assert terminal["code"] and terminal["message"], terminal
        for result in [outcome["fresh"], *outcome["quiet"]]:
            assert result["events"][-1]["type"] == "completed", result

        # What is stored: every acknowledged user message, every answer in the terminal state its
        # client saw; nothing left streaming; nothing of a refused turn.
        with pg.connect() as conn:
            left_streaming = wait_until(
                lambda: (
                    not conn.execute(
                        "SELECT count(*) FROM conversations_message WHERE status = 'streaming'"
                    ).fetchone()[0]
                ),
                timeout=10,
            )
            assert left_streaming, "answers left streaming after the restart"
            persisted = 0
            for result in accepted:
                started, terminal = result["events"][0], result["events"][-1]
                assert started["type"] == "started", result
                user = conn.execute(
                    "SELECT role, content FROM conversations_message WHERE id = %s",
                    (started["user_message_id"],),
                ).fetchone()
                persisted += user == ("user", result["content"])
                answer = conn.execute(
                    "SELECT status, content, error_code, parent_id::text FROM conversations_message "
                    "WHERE id = %s",
                    (started["message_id"],),
                ).fetchone()
                assert answer is not None, result
                assert answer[3] == started["user_message_id"]
                if terminal["type"] == "completed":
                    assert answer[:2] == ("complete", terminal["content"]), (answer, terminal)
                else:
                    assert (answer[0], answer[2]) == (terminal["status"], terminal["code"]), (
                        answer,
                        terminal,
                    )
            refused_stored = conn.execute(
                "SELECT count(*) FROM conversations_conversation WHERE session_key = ANY(%s)",
                ([r["session"] for r in refused],),
            ).fetchone()[0]
        ledger.add("turns_persisted", persisted)
        ledger.add("turns_lost", len(accepted) - persisted)
        assert persisted == len(accepted)
        assert len(accepted) + len(refused) == len(everything)
        assert refused_stored == 0
    except BaseException:
        print(server.output()[-8000:])  # shown by pytest when the test fails
        raise
    finally:
        server.stop()
