"""History at scale (issue 21): the history API and the admin over N sessions x M messages.

Builds a dedicated PostgreSQL database ``chatscale_<size>`` (created and migrated here; kept, so
``--reuse`` measures it again without rebuilding) straight into the Django tables with
``INSERT ... SELECT ... FROM generate_series(...)``: one heavy user with ``--heavy-sessions``
sessions of ``--messages`` messages (~200 characters of words, each message of session *n* says
"topic *n*", user/assistant alternating with parent links, answers with tokens and cost, an
artifact on every 20th message), other users making up ``--total-messages`` in all, and one
session of ``--big-session`` messages to export and delete. Secondary indexes are dropped during
the load and rebuilt after it (foreign-key triggers are off for the load: the rows are consistent
by construction); then ``manage.py recount_sessions`` when the project has it, and
``VACUUM ANALYZE``.

Then it starts the server as the README's production command runs it (uvicorn, uvloop +
httptools, ``DATABASE_POOL=true``, ``DEBUG=false``) and measures over HTTP, as the heavy user (an
API key) and as a staff user (logged in through ``/admin/login/``), p50/p95 of: the session list
(first page, ``page_size=100``, a deep cursor page), search (hit, miss), filters, one session's
messages and export, the export and the delete of the big session (with the latency of other
requests made while the delete runs), and the admin changelists. Finally it runs the list, the
search, the filters and the admin changelists in-process (Django's test client against the bench
database, ``CaptureQueriesContext``) and prints the ``EXPLAIN (ANALYZE, BUFFERS)`` plan of the
slowest query of each.

    .venv/bin/python bench/history_scale.py --quick                      # ~7,000 rows, seconds
    .venv/bin/python bench/history_scale.py --total-messages 1000000     # heavy user alone: 1M
    .venv/bin/python bench/history_scale.py                              # 10M in all (1M heavy)
    .venv/bin/python bench/history_scale.py --total-messages 1000000 --reuse   # measure again
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

BUILD_VERSION = 1
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # session n of each owner starts at T0 + n * 30 minutes
SESSION_STEP = timedelta(minutes=30)
MESSAGE_STEP = timedelta(seconds=10)
PROVIDERS = [("openai", "gpt-4o-mini"), ("gemini", "gemini-2.5-flash"), ("zai", "glm-4.6"), ("demo", "demo")]
HEAVY, STAFF, OTHER = "scale-heavy", "scale-staff", "scale-user-{:03d}"
STAFF_PASSWORD = "history-scale-staff"  # local bench database only
BIG_KEY = "scale-big"
MISS_WORD = "quasar"  # in no message: WORDS must not contain it
VOCABULARY = (
    "the model answered with a short summary of the report and then listed three options for the "
    "migration plan including a rollback step database index query latency cache server request "
    "response token budget cost review deploy release branch feature test coverage refactor module "
    "function class method argument default value error message retry timeout connection pool "
    "worker thread process memory profile benchmark chart table column row schema field record "
    "history session conversation prompt context window system user assistant draft edit version "
    "please could you explain why this happens and how we might fix it without breaking anything "
    "else in production tomorrow morning before the meeting with the team about quarterly planning "
    "budget travel recipe garden weather football music guitar lesson practice schedule holiday "
    "invoice contract lawyer doctor appointment insurance mortgage rent apartment kitchen paint "
    "python javascript rust golang sql bash docker kubernetes terraform nginx postgres redis kafka"
)
WORDS = VOCABULARY.split()
ARTIFACT_LANGS = ("python", "sql", "bash")

TARGETS = {  # request -> (target shown, p50 bound in seconds used for "met")
    "list": ("<= 20 ms", 0.020),
    "list_100": ("<= 30 ms", 0.030),
    "list_deep": ("<= 20 ms", 0.020),
    "search_hit": ("<= 100 ms", 0.100),
    "search_miss": ("<= 100 ms", 0.100),
    "filters": ("<= 20 ms", 0.020),
    "messages": ("keep ~10 ms", 0.015),
    "export": ("keep ~10 ms", 0.015),
    "export_big": ("seconds", 5.0),
    "delete_big": ("seconds, not blocking", 5.0),
    "admin_conversation": ("< 1 s", 1.0),
    "admin_message": ("< 1 s", 1.0),
    "admin_artifact": ("< 1 s", 1.0),
}


# ---------------------------------------------------------------------------------------------
# The Django side (run in a subprocess with the served source on sys.path)
# ---------------------------------------------------------------------------------------------
def django_helper(argv: list[str]) -> int:
    """``history_scale.py _django users|capture ...``: what needs the project's own code (password
    hashing, API keys, the test client); prints JSON on stdout."""
    src, action, payload = argv[0], argv[1], json.loads(argv[2])
    sys.path.insert(0, src)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    User = get_user_model()
    if action == "users":
        from accounts.keys import api_key_create

        heavy, _ = User.objects.get_or_create(username=HEAVY)
        staff, created = User.objects.get_or_create(
            username=STAFF, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not staff.check_password(STAFF_PASSWORD):
            staff.set_password(STAFF_PASSWORD)
            staff.save()
        names = [OTHER.format(i) for i in range(payload["others"])]
        have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create([User(username=n) for n in names if n not in have])
        others = dict(User.objects.filter(username__in=names).values_list("username", "id"))
        _, secret = api_key_create(owner=heavy, name="bench history_scale")
        out = {"heavy": heavy.id, "staff": staff.id, "others": [others[n] for n in names], "key": secret}
    elif action == "capture":
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        clients = {}
        for who in (HEAVY, STAFF):
            clients[who] = Client(raise_request_exception=False)
            clients[who].force_login(User.objects.get(username=who))
        out = {}
        for label, who, path in payload["requests"]:
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                status = clients[who].get(path).status_code
                elapsed = time.perf_counter() - t0
            out[label] = {
                "path": path,
                "status": status,
                "seconds": elapsed,
                "queries": [(q["sql"], float(q["time"])) for q in ctx.captured_queries],
            }
    else:
        raise SystemExit(f"unknown helper action {action!r}")
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    return 0


def run_helper(action: str, payload: dict, env: dict[str, str], timeout: float = 3600) -> dict:
    argv = [
        c.PY,
        str(Path(__file__).resolve()),
        "_django",
        str(c.SOURCE["path"]),
        action,
        json.dumps(payload),
    ]
    out = subprocess.run(argv, cwd=c.SOURCE["path"], env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"helper {action} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def helper_env(args: argparse.Namespace) -> dict[str, str]:
    env = c.server_env("http://127.0.0.1:9/v1", args.env, args.settings)
    env.setdefault("DJANGO_SETTINGS_MODULE", args.settings)
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    env["LOG_LEVEL"] = "ERROR"
    return env


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
def size_label(n: int) -> str:
    for unit, div in (("m", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10) == 0:
            v = n / div
            return f"{v:g}".replace(".", "p") + unit
    return str(n)


def pg(db: str, autocommit: bool = True):
    import psycopg

    conn = psycopg.connect(c.database_url(db), autocommit=autocommit, connect_timeout=5)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def admin_conn():
    import psycopg

    return psycopg.connect(c.PG_ADMIN_DSN, autocommit=True, connect_timeout=5)


def migrate(args: argparse.Namespace, db: str) -> None:
    env = helper_env(args)
    out = subprocess.run(
        [c.PY, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=c.SOURCE["path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{out.stdout}\n{out.stderr}")


def stored_build(db: str) -> dict | None:
    with admin_conn() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
            return None
    with pg(db) as conn:
        exists = conn.execute("SELECT to_regclass('bench_scale_build')").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT info FROM bench_scale_build WHERE id = 1").fetchone()
        return row[0] if row else None


def fill_expressions(conn, table: str, known: dict[str, str]) -> dict[str, str]:
    """``known`` plus a neutral value for every other NOT NULL column without a database default
    (columns added later, e.g. per-session counters: recount_sessions sets them afterwards)."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO' "
        "AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    neutral = {
        "integer": "0",
        "bigint": "0",
        "smallint": "0",
        "numeric": "0",
        "double precision": "0",
        "real": "0",
        "boolean": "false",
        "jsonb": "'{}'::jsonb",
        "json": "'{}'::json",
        "uuid": "gen_random_uuid()",
        "timestamp with time zone": "now()",
        "date": "current_date",
    }
    out = dict(known)
    for name, dtype in rows:
        if name not in out:
            out[name] = neutral.get(dtype, "''")
    return out


def insert_sql(conn, table: str, known: dict[str, str], source: str) -> tuple[str, list[str]]:
    exprs = fill_expressions(conn, table, known)
    extra = [k for k in exprs if k not in known]
    cols = ", ".join(f'"{k}"' for k in exprs)
    return f"INSERT INTO {table} ({cols}) SELECT {', '.join(exprs.values())} {source}", extra


PROVIDER_ARRAY = "(ARRAY[" + ",".join(f"'{p}'" for p, _ in PROVIDERS) + "])"
MODEL_ARRAY = "(ARRAY[" + ",".join(f"'{m}'" for _, m in PROVIDERS) + "])"


def conversation_known(prefix: str) -> dict[str, str]:
    """Columns of session n (``n`` in the FROM) of owner %(o)s::int; %(m)s::int messages."""
    return {
        "id": f"md5('{prefix}' || %(o)s::int || '.' || n)::uuid",
        "owner_id": "%(o)s::int",
        "session_key": "%(key_prefix)s || lpad(n::text, 8, '0')" if prefix == "c" else "%(key_prefix)s",
        "title": "'Notes on ' || (SELECT text FROM scale_words WHERE id = (n * 7) %% %(nw)s::int) || ' ' || n",
        "provider": f"{PROVIDER_ARRAY}[1 + n %% {len(PROVIDERS)}]",
        "model": f"{MODEL_ARRAY}[1 + n %% {len(PROVIDERS)}]",
        "system_prompt": "''",
        "metadata": "'{}'::jsonb",
        "last_response_id": "''",
        "created_at": "%(t0)s + n * %(sstep)s",
        "updated_at": "%(t0)s + n * %(sstep)s + %(m)s::int * %(mstep)s",
    }


def message_known(prefix: str, cprefix: str) -> dict[str, str]:
    """Columns of message j of session n (both in the FROM) of owner %(o)s::int."""
    ans = "j %% 2 = 0"
    tokens_in, tokens_out = "(60 + j * 45)", "(40 + (n * 7 + j * 13) %% 300)"
    return {
        "id": f"md5('{prefix}' || %(o)s::int || '.' || n || '.' || j)::uuid",
        "conversation_id": f"md5('{cprefix}' || %(o)s::int || '.' || n)::uuid",
        "role": f"CASE WHEN {ans} THEN 'assistant' ELSE 'user' END",
        "content": "p1.text || ' about topic ' || n || '. ' || p2.text",
        "status": "'complete'",
        "provider": f"CASE WHEN {ans} THEN {PROVIDER_ARRAY}[1 + n %% {len(PROVIDERS)}] ELSE '' END",
        "model": f"CASE WHEN {ans} THEN {MODEL_ARRAY}[1 + n %% {len(PROVIDERS)}] ELSE '' END",
        "input_tokens": f"CASE WHEN {ans} THEN {tokens_in} END",
        "output_tokens": f"CASE WHEN {ans} THEN {tokens_out} END",
        "usage_estimated": "false",
        "cost": f"CASE WHEN {ans} THEN round(({tokens_in} * 0.15 + {tokens_out} * 0.6) / 1000000.0, 8) END",
        "reserved_cost": "0",
        "budget_ids": "'[]'::jsonb",
        "finish_reason": f"CASE WHEN {ans} THEN 'stop' ELSE '' END",
        "response_id": f"CASE WHEN {ans} THEN 'resp_' || n || '_' || j ELSE '' END",
        "error_code": "''",
        "error_message": "''",
        "parent_id": f"CASE WHEN j > 1 THEN md5('{prefix}' || %(o)s::int || '.' || n || '.' || (j - 1))::uuid END",
        "created_at": "%(t0)s + n * %(sstep)s + j * %(mstep)s",
        "completed_at": f"CASE WHEN {ans} THEN %(t0)s + n * %(sstep)s + j * %(mstep)s + interval '2 seconds' END",
    }


def artifact_known(prefix: str, cprefix: str) -> dict[str, str]:
    return {
        "message_id": f"md5('{prefix}' || %(o)s::int || '.' || n || '.' || j)::uuid",
        "conversation_id": f"md5('{cprefix}' || %(o)s::int || '.' || n)::uuid",
        "language": f"(ARRAY['python','sql','bash'])[1 + (n + j) %% {len(ARTIFACT_LANGS)}]",
        "filename": "''",
        "content": "'# topic ' || n || E'\\nprint(\"step ' || j || E'\")\\n'",
        "position": "0",
        "created_at": "%(t0)s + n * %(sstep)s + j * %(mstep)s",
    }


MESSAGES_FROM = (
    "FROM generate_series(%(a)s::int, %(b)s::int) n CROSS JOIN generate_series(1, %(m)s::int) j "
    "JOIN scale_phrases p1 ON p1.id = (n * 31 + j * 17) %% 1000 "
    "JOIN scale_phrases p2 ON p2.id = (n * 13 + j * 7 + 500) %% 1000"
)
ARTIFACTS_FROM = (
    "FROM generate_series(%(a)s::int, %(b)s::int) n CROSS JOIN generate_series(2, %(m)s::int, 20) j"
)


def prepare_words(conn) -> None:
    """Temporary tables of this connection: the words, and 1,000 phrases of 14-18 of them."""
    if conn.execute("SELECT to_regclass('pg_temp.scale_phrases')").fetchone()[0]:
        return
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS scale_words (id int PRIMARY KEY, text text)")
    conn.execute("TRUNCATE scale_words")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO scale_words VALUES (%s, %s)", list(enumerate(WORDS)))
    conn.execute("SELECT setseed(0.21)")
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS scale_phrases AS "
        "SELECT i AS id, (SELECT string_agg(w.text, ' ') FROM generate_series(1, 14 + i % 5) g "
        f"JOIN scale_words w ON w.id = floor(random() * {len(WORDS)} + g * 0)::int) AS text "
        "FROM generate_series(0, 999) i"
    )
    conn.execute("ALTER TABLE scale_phrases ADD PRIMARY KEY (id)")
    conn.execute("ANALYZE scale_words; ANALYZE scale_phrases")


def insert_owner(conn, owner: int, sessions: int, messages: int, key_prefix: str, log) -> dict[str, float]:
    """Sessions 1..sessions of ``owner``, ``messages`` each, in statements of ~100k rows."""
    params_base = {
        "o": owner,
        "m": messages,
        "t0": T0,
        "sstep": SESSION_STEP,
        "mstep": MESSAGE_STEP,
        "nw": len(WORDS),
        "key_prefix": key_prefix,
    }
    conv_sql, _ = insert_sql(
        conn,
        "conversations_conversation",
        conversation_known("c"),
        "FROM generate_series(%(a)s::int, %(b)s::int) n",
    )
    msg_sql, _ = insert_sql(conn, "conversations_message", message_known("m", "c"), MESSAGES_FROM)
    art_sql, _ = insert_sql(conn, "conversations_artifact", artifact_known("m", "c"), ARTIFACTS_FROM)
    step = max(1, 100_000 // max(messages, 1))
    spent = {"conversations": 0.0, "messages": 0.0, "artifacts": 0.0}
    for a in range(1, sessions + 1, step):
        b = min(sessions, a + step - 1)
        params = {**params_base, "a": a, "b": b}
        for name, sql in (("conversations", conv_sql), ("messages", msg_sql), ("artifacts", art_sql)):
            t = time.perf_counter()
            conn.execute(sql, params)
            spent[name] += time.perf_counter() - t
        log(owner, b, sessions)
    return spent


def insert_big_session(conn, owner: int, messages: int) -> float:
    """One session of ``messages`` messages, older than every other session of the owner."""
    t = time.perf_counter()
    params = {
        "o": owner,
        "m": messages,
        "t0": T0 - timedelta(days=60),
        "sstep": SESSION_STEP,
        "mstep": timedelta(seconds=1),
        "nw": len(WORDS),
        "key_prefix": BIG_KEY,
        "a": 0,
        "b": 0,
    }
    prepare_words(conn)
    conv_sql, _ = insert_sql(
        conn,
        "conversations_conversation",
        conversation_known("b"),
        "FROM generate_series(%(a)s::int, %(b)s::int) n",
    )
    msg_sql, _ = insert_sql(conn, "conversations_message", message_known("bm", "b"), MESSAGES_FROM)
    art_sql, _ = insert_sql(conn, "conversations_artifact", artifact_known("bm", "b"), ARTIFACTS_FROM)
    with conn.transaction():
        conn.execute(conv_sql, params)
        conn.execute(msg_sql, params)
        conn.execute(art_sql, params)
    conn.execute("ANALYZE conversations_conversation")
    return time.perf_counter() - t


def secondary_indexes(conn, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Indexes that back no constraint (primary keys and unique constraints stay)."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "WHERE t.relname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
        "ORDER BY i.relname",
        (list(tables),),
    ).fetchall()


def nice_backend(conn) -> None:
    """The load runs in the PostgreSQL backend: lower its priority (the machine is shared)."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, 10)


def build(args: argparse.Namespace, db: str, plan: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    t = time.perf_counter()
    migrate(args, db)
    timings["migrate"] = time.perf_counter() - t
    users = run_helper("users", {"others": plan["other_users"]}, helper_env(args))
    notes: list[str] = []
    with pg(db) as conn:
        nice_backend(conn)
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET synchronous_commit = off")
        try:
            conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        except Exception as exc:  # not a superuser: the checks run, only slower
            notes.append(f"foreign-key triggers stay on during the load ({exc.__class__.__name__})")
        prepare_words(conn)
        tables = ("conversations_conversation", "conversations_message", "conversations_artifact")
        indexes = secondary_indexes(conn, tables)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        extra = {
            t: [k for k in fill_expressions(conn, t, {}) if k not in known]
            for t, known in (
                ("conversations_conversation", conversation_known("c")),
                ("conversations_message", message_known("m", "c")),
                ("conversations_artifact", artifact_known("m", "c")),
            )
        }
        spent = {"conversations": 0.0, "messages": 0.0, "artifacts": 0.0}
        t_load = time.perf_counter()

        def log(owner: int, b: int, total: int) -> None:
            if args.quick:
                return
            elapsed = time.perf_counter() - t_load
            print(f"  owner {owner}: {b:,}/{total:,} sessions ({elapsed:.0f} s)", flush=True)

        owners = [(users["heavy"], args.heavy_sessions)]
        left = plan["other_sessions"]
        for uid in users["others"]:
            owners.append((uid, min(left, args.other_sessions_per_user)))
            left -= owners[-1][1]
        for uid, sessions in owners:
            for k, v in insert_owner(conn, uid, sessions, args.messages, "scale-", log).items():
                spent[k] += v
        timings.update({f"insert_{k}": v for k, v in spent.items()})
        timings["insert_big_session"] = insert_big_session(conn, users["heavy"], args.big_session)
        conn.execute("SET session_replication_role = DEFAULT")
        t = time.perf_counter()
        for name, definition in indexes:
            if not args.quick:
                print(f"  index {name} ...", flush=True)
            conn.execute(definition)
        timings["indexes"] = time.perf_counter() - t
    recount = run_recount(args)
    timings["recount_sessions"] = recount["seconds"]
    t = time.perf_counter()
    with pg(db) as conn:
        nice_backend(conn)
        conn.execute("VACUUM ANALYZE")
        counts = table_counts(conn)
        conn.execute("CREATE TABLE IF NOT EXISTS bench_scale_build (id int PRIMARY KEY, info jsonb)")
        info = {
            "version": BUILD_VERSION,
            "params": build_params(args),
            "plan": plan,
            "users": {k: v for k, v in users.items() if k != "key"},
            "timings_s": timings,
            "recount": recount,
            "extra_columns_filled": extra,
            "notes": notes,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        timings["vacuum_analyze"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_all
        info["counts"] = counts
        conn.execute(
            "INSERT INTO bench_scale_build VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET info = EXCLUDED.info",
            (json.dumps(info),),
        )
    return info, users


def run_recount(args: argparse.Namespace) -> dict[str, Any]:
    env = helper_env(args)
    probe = subprocess.run(
        [c.PY, "manage.py", "help", "recount_sessions"],
        cwd=c.SOURCE["path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        return {
            "ran": False,
            "seconds": 0.0,
            "note": "manage.py recount_sessions does not exist here: skipped",
        }
    t = time.perf_counter()
    out = subprocess.run(
        ["nice", "-n", "10", c.PY, "manage.py", "recount_sessions"],
        cwd=c.SOURCE["path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=24 * 3600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"recount_sessions failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return {"ran": True, "seconds": time.perf_counter() - t, "output": out.stdout.strip()[-300:]}


def table_counts(conn) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in (
            "auth_user",
            "conversations_conversation",
            "conversations_message",
            "conversations_artifact",
        )
    }


def build_params(args: argparse.Namespace) -> dict[str, int]:
    return {
        "heavy_sessions": args.heavy_sessions,
        "messages": args.messages,
        "total_messages": args.total_messages,
        "other_sessions_per_user": args.other_sessions_per_user,
        "big_session": args.big_session,
    }


def build_plan(args: argparse.Namespace) -> dict[str, int]:
    heavy = args.heavy_sessions * args.messages
    other_messages = max(0, args.total_messages - heavy)
    other_sessions = math.ceil(other_messages / args.messages) if args.messages else 0
    return {
        "heavy_messages": heavy,
        "other_sessions": other_sessions,
        "other_users": math.ceil(other_sessions / args.other_sessions_per_user) if other_sessions else 0,
    }


# ---------------------------------------------------------------------------------------------
# Measure
# ---------------------------------------------------------------------------------------------
def session_key(n: int) -> str:
    return f"scale-{n:08d}"


def admin_login(httpx, base: str) -> str:
    """Log the staff user in through /admin/login/; returns the Cookie header. (The cookies are
    ``Secure`` with DEBUG=false, which a client only sends over HTTPS: carried by hand here.)"""
    jar: dict[str, str] = {}

    def keep(resp) -> None:
        for raw in resp.headers.get_list("set-cookie"):
            cookie = SimpleCookie()
            cookie.load(raw)
            for k, morsel in cookie.items():
                jar[k] = morsel.value

    def header() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        resp = client.get("/admin/login/?next=/admin/")
        keep(resp)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', resp.text)
        if not match:
            raise RuntimeError(f"no CSRF token on /admin/login/ ({resp.status_code})")
        form = {
            "csrfmiddlewaretoken": match.group(1),
            "username": STAFF,
            "password": STAFF_PASSWORD,
            "next": "/admin/",
        }
        resp = client.post("/admin/login/?next=/admin/", data=form, headers={"Cookie": header()})
        keep(resp)
        if resp.status_code != 302 or "sessionid" not in jar:
            raise RuntimeError(f"admin login failed: {resp.status_code} {resp.text[:300]}")
    return header()


class Measure:
    def __init__(self, httpx, base: str, api_key: str, admin_cookie: str, reps: int, budget: float) -> None:
        self.api = httpx.Client(base_url=base, timeout=3600, headers={"X-API-Key": api_key})
        self.admin = httpx.Client(base_url=base, timeout=3600, headers={"Cookie": admin_cookie})
        self.reps, self.budget = reps, budget
        self.rows: list[dict[str, Any]] = []

    def close(self) -> None:
        self.api.close()
        self.admin.close()

    def timed(self, client, method: str, path: str) -> tuple[float, int, bytes]:
        t = time.perf_counter()
        resp = client.request(method, path)
        body = resp.content
        return time.perf_counter() - t, resp.status_code, body

    def row(
        self, name: str, label: str, path: str, *, admin: bool = False, reps: int | None = None, check=None
    ):
        """Warm-up once, then up to ``reps`` timed requests (fewer past ``budget`` s, at least 3 —
        or 1 when the warm-up alone took over a fifth of the budget)."""
        client = self.admin if admin else self.api
        reps = reps or self.reps
        first, status, body = self.timed(client, "GET", path)
        minimum = 1 if first > self.budget / 5 else min(3, reps)
        times, statuses, started = [], [status], time.perf_counter()
        while len(times) < reps and (len(times) < minimum or time.perf_counter() - started < self.budget):
            elapsed, status, body = self.timed(client, "GET", path)
            times.append(elapsed)
            statuses.append(status)
        ok = all(200 <= s < 300 for s in statuses)
        checked = check(body) if (ok and check) else None
        target, bound = TARGETS[name]
        p50, p95 = c.percentile(times, 50), c.percentile(times, 95)
        row = {
            "name": name,
            "request": label,
            "path": path,
            "n": len(times),
            "first_s": first,
            "p50_s": p50,
            "p95_s": p95,
            "max_s": max(times),
            "statuses": sorted(set(statuses)),
            "errors": sum(not (200 <= s < 300) for s in statuses),
            "bytes": len(body),
            "check": checked,
            "target": target,
            "met": (p50 is not None and p50 <= bound and ok),
        }
        self.rows.append(row)
        print(
            f"  {label:<48} p50 {c.fmt_ms(p50):>9} ms  p95 {c.fmt_ms(p95):>9} ms  n={len(times)}", flush=True
        )
        return row

    def delete_with_probe(self, httpx, base: str, api_key: str, key: str, probe_path: str) -> dict:
        """DELETE the big session; meanwhile another client requests ``probe_path`` in a loop."""
        done = threading.Event()
        probe: list[float] = []
        probe_status: list[int] = []

        def loop() -> None:
            with httpx.Client(base_url=base, timeout=600, headers={"X-API-Key": api_key}) as client:
                while not done.is_set():
                    t = time.perf_counter()
                    status = client.get(probe_path).status_code
                    probe.append(time.perf_counter() - t)
                    probe_status.append(status)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        time.sleep(0.3)  # the probe is running before the delete starts
        before = len(probe)
        elapsed, status, body = self.timed(self.api, "DELETE", f"/api/sessions/{key}")
        during = probe[before:]
        done.set()
        thread.join(timeout=600)
        target, bound = TARGETS["delete_big"]
        row = {
            "name": "delete_big",
            "request": "DELETE /api/sessions/{key} (big session)",
            "path": f"/api/sessions/{key}",
            "n": 1,
            "first_s": elapsed,
            "p50_s": elapsed,
            "p95_s": elapsed,
            "max_s": elapsed,
            "statuses": [status],
            "errors": int(not (200 <= status < 300)),
            "bytes": len(body),
            "check": None,
            "target": target,
            "met": 200 <= status < 300 and elapsed <= bound,
            "probe": {
                "path": probe_path,
                "n_during_delete": len(during),
                "p50_s": c.percentile(during, 50),
                "p95_s": c.percentile(during, 95),
                "max_s": max(during) if during else None,
                "errors": sum(not (200 <= s < 300) for s in probe_status),
            },
        }
        self.rows.append(row)
        pr = row["probe"]
        print(
            f"  {row['request']:<48} {c.fmt_ms(elapsed):>9} ms  status {status}; meanwhile {pr['n_during_delete']} "
            f"requests: p50 {c.fmt_ms(pr['p50_s'])} ms, max {c.fmt_ms(pr['max_s'])} ms",
            flush=True,
        )
        return row


def deep_cursor(conn, owner: int, rank: int) -> tuple[str, str | None]:
    """DRF's cursor for the page after the ``rank``-th session (``-updated_at, -id``): the base64
    of ``p=<updated_at of that session>``; and the key of the first session expected on it."""
    rows = conn.execute(
        "SELECT updated_at, session_key FROM conversations_conversation WHERE owner_id = %s "
        "ORDER BY updated_at DESC, id DESC OFFSET %s LIMIT 2",
        (owner, rank - 1),
    ).fetchall()
    position = str(rows[0][0])
    cursor = base64.b64encode(urlencode({"p": position}).encode("ascii")).decode("ascii")
    return cursor, (rows[1][1] if len(rows) > 1 else None)


def first_key(body: bytes) -> str | None:
    try:
        results = json.loads(body).get("results") or []
    except ValueError:
        return None
    return results[0]["session_key"] if results else None


def result_count(body: bytes) -> int | None:
    try:
        return len(json.loads(body).get("results") or [])
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# EXPLAIN
# ---------------------------------------------------------------------------------------------
def explain(conn, sql: str) -> tuple[float | None, list[str]]:
    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
    lines = [r[0] for r in rows]
    total = None
    for line in lines:
        m = re.match(r"\s*Execution Time: ([\d.]+) ms", line)
        if m:
            total = float(m.group(1)) / 1000
    return total, lines


def plans(args: argparse.Namespace, db: str, requests: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    captured = run_helper("capture", {"requests": requests}, helper_env(args))
    out = []
    with pg(db) as conn:
        conn.execute("SET statement_timeout = '30min'")
        for label, _, path in requests:
            entry = captured[label]
            best = None
            for sql, _secs in entry["queries"]:
                head = sql.lstrip().upper()
                if not head.startswith("SELECT") or "CONVERSATIONS_" not in head:
                    continue
                seconds, lines = explain(conn, sql)
                if best is None or (seconds or 0) > (best["execution_s"] or 0):
                    best = {"execution_s": seconds, "sql": sql, "plan": lines}
            out.append(
                {
                    "request": label,
                    "path": path,
                    "status": entry["status"],
                    "in_process_s": entry["seconds"],
                    "queries": len(entry["queries"]),
                    "slowest": best,
                }
            )
    return out


def print_plans(found: list[dict[str, Any]]) -> None:
    for item in found:
        best = item["slowest"]
        print(
            f"\n=== {item['request']}: GET {item['path']} — status {item['status']}, {item['queries']} queries, "
            f"{item['in_process_s'] * 1000:.0f} ms in-process"
        )
        if not best:
            print("  (no SELECT on the conversation tables)")
            continue
        sql = best["sql"]
        print(
            f"slowest query ({c.fmt_ms(best['execution_s'])} ms): {sql[:1500]}{' …' if len(sql) > 1500 else ''}"
        )
        for line in best["plan"]:
            print("  " + line)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    c.common_args(parser)
    parser.add_argument("--heavy-sessions", type=int, default=10_000, help="sessions of the heavy user")
    parser.add_argument("--messages", type=int, default=100, help="messages per session")
    parser.add_argument(
        "--total-messages",
        type=int,
        default=10_000_000,
        help="messages in all (other users make up the rest)",
    )
    parser.add_argument("--other-sessions-per-user", type=int, default=1_000, help="sessions per other user")
    parser.add_argument("--big-session", type=int, default=100_000, help="messages of the session deleted")
    parser.add_argument("--reps", type=int, default=20, help="timed requests per row")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per row before fewer reps")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the database built before, if it matches"
    )
    parser.add_argument("--db", help="database name (default chatscale_<total>[_<revision>])")
    parser.add_argument("--no-explain", action="store_true", help="skip the EXPLAIN plans")
    args = parser.parse_args()
    if args.quick:
        args.heavy_sessions, args.messages, args.total_messages = 40, 50, 6_000
        args.other_sessions_per_user, args.big_session, args.reps, args.budget = 40, 1_000, 3, 5.0
    c.apply_common(args)
    if args.profile:
        print("--profile is not supported by this script: ignored")
    import httpx

    suffix = "" if c.SOURCE["label"] == "worktree" else "_" + c.SOURCE["db"].rsplit("_", 1)[-1]
    db = args.db or (
        "chatscale_quick" if args.quick else f"chatscale_{size_label(args.total_messages)}{suffix}"
    )
    c.SOURCE["db"] = db
    args.env = ["DATABASE_POOL=true", "REDIS_URL=redis://127.0.0.1:6379/9", *args.env]
    c.RESULTS.mkdir(parents=True, exist_ok=True)
    machine = c.machine_info()  # loadavg before the build and the measurements
    plan = build_plan(args)
    print(
        f"database {db}: heavy user {args.heavy_sessions:,} sessions x {args.messages} messages "
        f"= {plan['heavy_messages']:,}; {plan['other_users']} other users, {plan['other_sessions']:,} sessions; "
        f"{args.total_messages:,} messages in all (+ a {args.big_session:,}-message session); source {c.SOURCE['label']}"
    )

    info = stored_build(db) if args.reuse else None
    if info and (info.get("version") != BUILD_VERSION or info.get("params") != build_params(args)):
        print(f"  --reuse: {db} was built with {info.get('params')}: rebuilding")
        info = None
    reused = info is not None
    if info:
        print(f"  reusing the build of {info['built_at']} ({info['timings_s']['total']:.0f} s then)")
        migrate(args, db)  # new migrations of the tree under test (none when nothing changed)
        users = run_helper("users", {"others": 0}, helper_env(args))
    else:
        t = time.perf_counter()
        print("  building ..." if not args.quick else "  building", flush=True)
        info, users = build(args, db, plan)
        print(
            f"  built in {time.perf_counter() - t:.1f} s: {info['counts']}  timings {_round(info['timings_s'])}"
        )
        print(f"  recount_sessions: {info['recount'].get('note') or info['recount'].get('output')}")
    heavy = info["users"]["heavy"]
    with pg(db) as conn:
        big_rebuilt = None
        if not conn.execute(
            "SELECT 1 FROM conversations_conversation WHERE owner_id = %s AND session_key = %s",
            (heavy, BIG_KEY),
        ).fetchone():
            big_rebuilt = insert_big_session(conn, heavy, args.big_session)
            print(f"  big session rebuilt ({big_rebuilt:.1f} s; its counters, if any, are not recounted)")
        deep_rank = min(5_000, max(1, args.heavy_sessions // 2))
        cursor, deep_first = deep_cursor(conn, heavy, deep_rank)
        counts = table_counts(conn)

    server = c.start_server(args, "http://127.0.0.1:9/v1")
    base = server.urls[0]
    admin_cookie = admin_login(httpx, base)
    m = Measure(httpx, base, users["key"], admin_cookie, args.reps, args.budget)
    hit_n = max(1, args.heavy_sessions // 2)
    hit_key = session_key(hit_n)
    created_after = (T0 + SESSION_STEP * int(args.heavy_sessions * 0.9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    filters = f"/api/sessions?provider={PROVIDERS[0][0]}&created_after={created_after}"
    print(f"\nmeasuring on {base} ({' '.join(server.flags)}), {args.reps} reps per row:")
    try:
        m.row("list", "GET /api/sessions", "/api/sessions", check=first_key)
        m.row(
            "list_100", "GET /api/sessions?page_size=100", "/api/sessions?page_size=100", check=result_count
        )
        m.row(
            "list_deep",
            f"GET /api/sessions?cursor=<after #{deep_rank:,}>",
            f"/api/sessions?cursor={cursor}",
            check=lambda body: first_key(body) == deep_first,
        )
        m.row(
            "search_hit",
            f"GET /api/sessions?q=topic {hit_n}",
            f"/api/sessions?q=topic%20{hit_n}",
            check=lambda body: hit_key in body.decode(),
        )
        m.row(
            "search_miss",
            f"GET /api/sessions?q={MISS_WORD}",
            f"/api/sessions?q={MISS_WORD}",
            check=result_count,
        )
        m.row("filters", "GET /api/sessions?provider=…&created_after=…", filters, check=result_count)
        m.row(
            "messages",
            "GET /api/sessions/{key}/messages",
            f"/api/sessions/{hit_key}/messages",
            check=result_count,
        )
        m.row("export", "GET /api/sessions/{key}/export", f"/api/sessions/{hit_key}/export")
        m.row(
            "export_big",
            f"GET /api/sessions/{{key}}/export ({args.big_session:,} msgs)",
            f"/api/sessions/{BIG_KEY}/export",
            reps=min(3, args.reps),
        )
        m.row(
            "admin_conversation",
            "admin: conversation changelist",
            "/admin/conversations/conversation/",
            admin=True,
        )
        m.row("admin_message", "admin: message changelist", "/admin/conversations/message/", admin=True)
        m.row("admin_artifact", "admin: artifact changelist", "/admin/conversations/artifact/", admin=True)
        m.delete_with_probe(httpx, base, users["key"], BIG_KEY, f"/api/sessions/{hit_key}/messages")
    finally:
        m.close()
        server.stop()

    found: list[dict[str, Any]] = []
    if not args.no_explain:
        requests = [
            ("list", HEAVY, "/api/sessions"),
            ("search_hit", HEAVY, f"/api/sessions?q=topic%20{hit_n}"),
            ("filters", HEAVY, filters),
            ("admin_conversation", STAFF, "/admin/conversations/conversation/"),
            ("admin_message", STAFF, "/admin/conversations/message/"),
        ]
        print("\ncapturing the queries in-process and running EXPLAIN (ANALYZE, BUFFERS) ...", flush=True)
        found = plans(args, db, requests)
        print_plans(found)

    size = f"{counts['conversations_message']:,} messages, {counts['conversations_conversation']:,} sessions"
    c.print_table(
        f"History at scale ({size}; heavy user {plan['heavy_messages']:,} messages in "
        f"{args.heavy_sessions:,} sessions; ms)",
        ["request", "n", "p50", "p95", "target", "met", "err"],
        [
            [
                r["request"],
                r["n"],
                c.fmt_ms(r["p50_s"]),
                c.fmt_ms(r["p95_s"]),
                r["target"],
                "yes" if r["met"] else "NO",
                r["errors"],
            ]
            for r in m.rows
        ],
    )
    delete = m.rows[-1]
    probe = delete["probe"]
    baseline = next(r for r in m.rows if r["name"] == "messages")
    print(
        f"  during the delete ({c.fmt_ms(delete['p50_s'])} ms): {probe['n_during_delete']} requests to "
        f"{probe['path']}, p50 {c.fmt_ms(probe['p50_s'])} / p95 {c.fmt_ms(probe['p95_s'])} / max "
        f"{c.fmt_ms(probe['max_s'])} ms (alone: p50 {c.fmt_ms(baseline['p50_s'])} ms)"
    )
    checks = {r["name"]: r["check"] for r in m.rows if r["check"] is not None}
    print(f"  checks (first key, result counts, hit found): {checks}")
    data = {
        "script": "history_scale",
        "quick": args.quick,
        "machine": machine,
        "server": c.describe_server(server, args),
        "database": db,
        "reused": reused,
        "build": info,
        "counts": counts,
        "big_session_rebuilt_s": big_rebuilt,
        "recount": info.get("recount"),
        "rows": m.rows,
        "plans": found,
    }
    c.write_json("history_scale", data, args.out)
    return 0


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in d.items()}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_django":
        sys.exit(django_helper(sys.argv[2:]))
    c.main_wrapper(main)
