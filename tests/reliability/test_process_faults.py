"""Server processes killed or stopped mid-stream: answers end in one terminal state, nothing is lost."""

import json
import os
import signal
import time

import httpx
import pytest

from conversations.models import Message
from tests.fake_upstream import expected_reply
from tests.live_server import FAKE_UPSTREAM_PRICES, LiveServer, current_database_url
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server_env(django_db_blocker, fake_upstream_server):
    fake_upstream_server.reset()
    with django_db_blocker.unblock():
        database_url = current_database_url()
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_upstream_server.openai_base_url,
        "OPENAI_MODEL": "gpt-test",
        "PRICES": json.dumps(FAKE_UPSTREAM_PRICES),
        "LLM_RETRY_ATTEMPTS": "0",
        "TURN_HEARTBEAT_SECONDS": "0.2",
        "TURN_SWEEP_SECONDS": "0.4",
        "TURN_ORPHAN_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }


def read_deltas(chunks, parser: SSEParser, count: int) -> list[dict]:
    seen = []
    for chunk in chunks:
        seen.extend(f.json() for f in parser.feed(chunk))
        if sum(e["type"] == "delta" for e in seen) >= count:
            return seen
    return seen


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_answer_left_streaming_by_a_killed_server_is_recovered_as_interrupted(server_env):
    text = "survive [[chunks=40 delay=0.15]]"
    first = LiveServer(server_env, server="uvicorn").start()
    try:
        with (
            httpx.Client(timeout=20) as client,
            client.stream(
                "POST",
                f"{first.url}/api/sessions/kill/messages",
                json={"content": text},
                headers={"Accept": "text/event-stream"},
            ) as response,
        ):
            seen = read_deltas(response.iter_text(), SSEParser(), 3)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
    finally:
        first.stop()
    message_id = seen[0]["message_id"]
    assert Message.objects.get(pk=message_id).status == "streaming"
    received = "".join(e["text"] for e in seen if e["type"] == "delta")
    second = LiveServer(server_env, server="uvicorn").start()
    try:
        recovered = wait_for(lambda: Message.objects.filter(pk=message_id, status="interrupted").first())
    finally:
        second.stop()
    assert recovered is not None, "the orphaned answer was not recovered"
    assert recovered.error_code == "server_stopped"
    assert Message.objects.filter(parent_id=recovered.parent_id, role="assistant").count() == 1
    assert Message.objects.get(pk=recovered.parent_id).content == text  # the user's message is intact
    if server_env["REDIS_URL"]:  # the partial text came back from the replay buffer (it may lag the
        # socket by the batch in flight when the process died): a true prefix, never garbage
        assert recovered.content
        assert expected_reply(text).startswith(recovered.content)
        assert expected_reply(text).startswith(received)


def test_sigterm_refuses_new_turns_and_saves_in_flight_answers(server_env):
    env = {**server_env, "GRACEFUL_TIMEOUT": "2", "SHUTDOWN_GRACE_SECONDS": "1"}
    server = LiveServer(env, server="uvicorn").start()
    text = "long [[chunks=60 delay=0.2]]"
    try:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST",
                f"{server.url}/api/sessions/term/messages",
                json={"content": text},
                headers={"Accept": "text/event-stream"},
            ) as response,
        ):
            parser, chunks = SSEParser(), response.iter_text()
            seen = read_deltas(chunks, parser, 2)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(httpx.TransportError):
                httpx.post(f"{server.url}/api/sessions/term2/messages", json={"content": "new"}, timeout=5)
            try:
                for chunk in chunks:
                    seen.extend(f.json() for f in parser.feed(chunk))
            except httpx.TransportError:
                pass  # the server closed the stream at the end of its graceful period
        assert server.proc.wait(timeout=20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert time.monotonic() - started < 15
    finally:
        server.stop()
    answer = Message.objects.get(pk=seen[0]["message_id"])
    assert answer.status == "interrupted"
    assert answer.error_code in ("server_shutdown", "disconnected")
    assert answer.content.startswith("".join(e["text"] for e in seen if e["type"] == "delta"))
    assert not Message.objects.filter(status="streaming").exists()
