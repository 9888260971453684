"""Scenario 1: upstream faults under load, over several providers at once."""

import asyncio
import itertools
import json

import httpx
import pytest

from conversations.models import Message
from tests.reliability.conftest import SOAK

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDERS = ("openai", "gemini", "zai", "openai-responses")
FAULTS = {  # directive -> (terminal event, error code)
    "": ("completed", None),
    "fault=429 retry_after=1": ("failed", "rate_limited"),
    "fault=500": ("failed", "provider_unavailable"),
    "fault=401": ("failed", "provider_auth_failed"),
    "fault=drop:2": ("failed", "provider_unavailable"),
    "first_byte=4": ("failed", "provider_timeout"),
    "fault=stall:2": ("failed", "provider_timeout"),
}


async def one_turn(client: httpx.AsyncClient, index: int, provider: str, directive: str) -> dict:
    content = f"load {index} [[chunks=6 delay=0.02 {directive}]]"
    events: list[dict] = []
    async with client.stream(
        "POST",
        f"/api/sessions/load-{index}/messages",
        json={"content": content, "provider": provider},
        headers={"Accept": "application/x-ndjson"},
    ) as response:
        status = response.status_code
        async for line in response.aiter_lines():
            if line:
                events.append(json.loads(line))
    return {
        "content": content,
        "status": status,
        "events": events,
        "directive": directive,
        "provider": provider,
    }


async def run_load(base_url: str, n: int) -> list[dict]:
    plan = list(zip(range(n), itertools.cycle(PROVIDERS), itertools.cycle(FAULTS), strict=False))
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        return await asyncio.gather(*(one_turn(client, i, p, d) for i, p, d in plan))


def test_fifty_concurrent_turns_with_upstream_faults_each_end_in_one_right_state(live, ledger):
    n = 50 * SOAK
    results = asyncio.run(run_load(live.url, n))
    ledger.add("turns_attempted", n)
    for kind in (r["directive"] or "none" for r in results):
        if kind != "none":
            ledger.fault(kind.split()[0].replace("fault=", ""))
    ledger.add("server_5xx", sum(r["status"] >= 500 for r in results))
    persisted = 0
    for result in results:
        expected_type, expected_code = FAULTS[result["directive"]]
        assert result["status"] == 200, result
        terminal = result["events"][-1]
        assert terminal["type"] == expected_type, (result["provider"], result["directive"], terminal)
        assert terminal.get("code") == expected_code, (result["provider"], result["directive"], terminal)
        user = Message.objects.filter(role="user", content=result["content"]).first()
        persisted += user is not None
        answer = Message.objects.get(pk=terminal["message_id"])
        assert answer.parent_id == user.pk
        assert answer.status == ("complete" if expected_type == "completed" else "failed")
        assert answer.error_code == (expected_code or "")
    ledger.add("turns_persisted", persisted)
    ledger.add("turns_lost", n - persisted)
    assert persisted == n
    assert not Message.objects.filter(status="streaming").exists()
    assert httpx.get(live.url + "/health", timeout=10).status_code == 200
