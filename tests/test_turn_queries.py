import httpx
import pytest

from tests.query_counter import count_queries
from tests.turn_client import sse_events

pytestmark = pytest.mark.django_db(transaction=True)


def turn_queries(base_url: str, session: str, content: str) -> tuple[int, list[dict]]:
    with httpx.Client(base_url=base_url, timeout=30) as client, count_queries() as counter:
        _, events = sse_events(client, f"/api/sessions/{session}/messages", {"content": content})
    return counter.count, events


def test_database_round_trips_per_turn_do_not_grow_with_the_reply_length(asgi_server, openai_upstream):
    # warm up: the first turn of a session creates it; compare like with like
    turn_queries(asgi_server.url, "q-short", "warm [[chunks=2]]")
    turn_queries(asgi_server.url, "q-long", "warm [[chunks=2]]")
    short, short_events = turn_queries(asgi_server.url, "q-short", "five [[chunks=5]]")
    long, long_events = turn_queries(asgi_server.url, "q-long", "many [[chunks=500]]")
    assert sum(e["type"] == "delta" for e in short_events) == 5
    assert sum(e["type"] == "delta" for e in long_events) == 500
    assert long_events[-1]["type"] == "completed"
    assert short == long, (short, long)
    print("queries per turn:", short)
    assert short <= 16, short
