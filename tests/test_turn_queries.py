"""PostgreSQL round trips per turn, counted on the wire (a proxy in front of PostgreSQL), for both write paths."""

import json
import os
import time

import httpx
import pytest
from django.db import connection

from tests.live_server import FAKE_UPSTREAM_PRICES, current_database_url, live_server
from tests.pg_wire_proxy import PgWireProxy
from tests.turn_client import sse_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL wire traffic"),
]


def turn_round_trips(base_url: str, proxy: PgWireProxy, session: str, content: str) -> tuple[int, list[dict]]:
    time.sleep(0.2)  # the closing write of the previous turn is done
    proxy.count.reset()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        _, events = sse_events(client, f"/api/sessions/{session}/messages", {"content": content})
    time.sleep(0.2)  # ... and this turn's
    return proxy.count.round_trips, events


@pytest.mark.parametrize(("native", "bound"), [("true", 2), ("false", 16)], ids=["native", "orm"])
def test_database_round_trips_per_turn_are_few_and_do_not_grow_with_the_reply_length(
    native, bound, django_db_blocker, fake_upstream_server
):
    with django_db_blocker.unblock():
        database_url = current_database_url()
    proxy = PgWireProxy(
        connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432)
    )
    port = proxy.start()
    host_port = (
        f"{connection.settings_dict['HOST'] or '127.0.0.1'}:{connection.settings_dict['PORT'] or 5432}"
    )
    env = {
        "DATABASE_URL": database_url.replace(host_port, f"127.0.0.1:{port}"),
        "DATABASE_POOL": "true",
        "TURN_DB_ASYNC": native,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_upstream_server.openai_base_url,
        "OPENAI_MODEL": "gpt-test",
        "PRICES": json.dumps(FAKE_UPSTREAM_PRICES),
        "LOG_LEVEL": "WARNING",
    }
    with live_server(env, server="uvicorn") as url:
        # warm up: the first turn of a session creates it, and the pools open their connections
        turn_round_trips(url, proxy, "q-short", "warm [[chunks=2]]")
        turn_round_trips(url, proxy, "q-long", "warm [[chunks=2]]")
        short, short_events = turn_round_trips(url, proxy, "q-short", "five [[chunks=5]]")
        long, long_events = turn_round_trips(url, proxy, "q-long", "many [[chunks=500]]")
        new, _ = turn_round_trips(url, proxy, "q-new", "a new session [[chunks=5]]")
    assert sum(e["type"] == "delta" for e in short_events) == 5
    assert sum(e["type"] == "delta" for e in long_events) == 500
    assert long_events[-1]["type"] == "completed"
    assert short == long, (short, long, proxy.count.statements)
    print(f"round trips per turn ({native=}): {short}, new session: {new}")
    assert short <= bound, proxy.count.statements
    assert new <= bound + (0 if native == "true" else 6)
