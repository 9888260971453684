"""Scenario 7 (part): a captured Layercode webhook replayed within its window, against two server
processes — while its answer streams and after — makes one provider call, and every replay hears
the same answer."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conversations.dialects.signature import sign
from conversations.models import Message
from tests.fake_upstream import expected_reply
from tests.live_server import LiveServer
from tests.reliability.conftest import SOAK

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "reliability-webhook-secret"


@pytest.fixture
def servers(reliability_env):
    env = {**reliability_env, "LAYERCODE_WEBHOOK_SECRET": SECRET}
    started = [LiveServer(env, server="uvicorn") for _ in range(2)]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


def spoken(raw: str) -> str:
    frames = [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: ")]
    return "".join(f["content"] for f in frames if f["type"] == "response.tts")


def test_a_replayed_webhook_is_answered_once_across_processes(servers, fake_upstream_server, ledger):
    if not servers[0].env.get("REDIS_URL"):
        pytest.skip("two processes remember requests through Redis")
    text = f"replay me {time.time_ns()} [[chunks=6 delay=0.2]]"
    body = json.dumps({"text": text, "type": "message", "session_id": f"replayed-{time.time_ns()}"}).encode()
    headers = {"content-type": "application/json", "layercode-signature": sign(body, SECRET)}

    def deliver(n: int) -> httpx.Response:
        url = servers[n % 2].url + "/compat/layercode/agent"
        return httpx.post(url, content=body, headers=headers, timeout=30)

    replays = 10 * SOAK
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(deliver, 0)
        time.sleep(0.3)  # the answer is streaming: half the replays meet it there
        during = list(pool.map(deliver, range(1, replays // 2 + 1)))
        first.result()
    after = [deliver(n) for n in range(replays // 2)]
    answers = [first.result(), *during, *after]
    ledger.add("hostile_inputs", replays)
    ledger.add("server_5xx", sum(r.status_code >= 500 for r in answers))
    assert [r.status_code for r in answers] == [200] * len(answers)
    assert {spoken(r.text) for r in answers} == {expected_reply(text)}
    assert len(fake_upstream_server.requests) == 1
    assert Message.objects.filter(role="assistant").count() == 1
