"""docs/seeds.md "Deploying for the seed clients", followed line by line on production settings.

The per-mount lines are read from the page itself, so the test follows the recipe as written:
a server started with them (``DEBUG=false``, PostgreSQL or the embedded database, Redis when
there is one, a provider key) must answer each seed's client — 004 with its ``X-API-Key``, which
``API_KEY=...`` alone requires (the seed: "if set, ``X-API-Key`` is required").
"""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest

from conversations.dialects.access import mount_access
from conversations.dialects.signature import sign
from tests.live_server import ROOT, LiveServer, current_database_url, provider_env

pytestmark = pytest.mark.django_db(transaction=True)

SHARED_KEY = "recipe-004-shared-key"
WEBHOOK_SECRET = "recipe-layercode-secret"
FILLED_IN = {"API_KEY": SHARED_KEY, "LAYERCODE_WEBHOOK_SECRET": WEBHOOK_SECRET}


def recipe_lines() -> dict[str, str]:
    """Step 3's ``.env`` lines (comments dropped, ``...`` filled in with this test's secrets)."""
    page = (ROOT / "docs" / "seeds.md").read_text()
    section = page.split("## Deploying for the seed clients", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the recipe's .env block is gone from docs/seeds.md"
    lines = {}
    for line in block.group(1).splitlines():
        assignment = line.split("#", 1)[0].strip()
        if assignment:
            name, _, value = assignment.partition("=")
            lines[name] = FILLED_IN.get(name, value) if value == "..." else value
    return lines


def test_the_recipe_opens_004_with_api_key_alone():
    lines = recipe_lines()
    assert lines["API_KEY"] == SHARED_KEY
    assert not any(name.startswith("COMPAT_CHAT_API_") for name in lines)  # no access line for 004


@pytest.fixture(scope="module")
def deployed(django_db_setup, django_db_blocker, fake_upstream_server):
    """A server on ``chatproject.settings`` with steps 1-3 of the recipe and nothing else set."""
    with django_db_blocker.unblock():
        database_url = current_database_url()
    unset = {  # what tests/settings.py put in this process's environment, back to the defaults
        **{f"COMPAT_{mount}_ACCESS": "" for mount in ("GEMINI_GATEWAY", "CODING_AGENT", "ZAI", "CHAT_API")},
        "ALLOW_ANONYMOUS": "",
        "SECURE_COOKIES": "",
        "RATE_LIMIT_TURNS": "60/minute",
    }
    env = {
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        "ENV_FILE": "",  # no .env of this checkout: only the recipe's settings
        **unset,
        # 1. production settings (plain HTTP on localhost, as the compose file of step 4 serves)
        "DEBUG": "false",
        "SECRET_KEY": "recipe-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # 2. a provider key (every provider on the fake upstream)
        **provider_env(fake_upstream_server),
        "LOG_LEVEL": "WARNING",
        # 3. one line per mount
        **recipe_lines(),
    }
    server = LiveServer(env, server="uvicorn").start()
    yield server.url
    server.stop()


def test_004_answers_its_clients_x_api_key_and_refuses_without_it(deployed, upstream):
    url = deployed + "/compat/chat-api/api/chat/stream"
    body = {"message": "Hello from the recipe [[chunks=2]]"}
    with httpx.stream("POST", url, json=body, headers={"X-API-Key": SHARED_KEY}, timeout=20) as answer:
        assert answer.status_code == 200, answer.read()
        text = answer.read().decode()
    assert "event: delta" in text and "event: done" in text
    refused = httpx.post(url, json=body, timeout=20)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_required"
    assert httpx.get(deployed + "/compat/chat-api/health", timeout=20).json() == {"status": "ok"}


def test_every_other_mount_of_the_recipe_is_open_too(deployed, upstream):
    calls = {
        "gemini-gateway": ("/api/chat", {"message": "hi [[chunks=1]]"}, {}),
        "coding-agent": (
            "/api/chat/stream",
            {"messages": [{"role": "user", "content": "hi [[chunks=1]]"}]},
            {},
        ),
        "zai": ("/api/chat", {"messages": [{"role": "user", "content": "hi [[chunks=1]]"}]}, {}),
    }
    for mount, (path, body, headers) in calls.items():
        response = httpx.post(f"{deployed}/compat/{mount}{path}", json=body, headers=headers, timeout=20)
        assert response.status_code == 200, (mount, response.text)
    raw = json.dumps({"text": "hi [[chunks=1]]", "type": "message", "session_id": "recipe-call"}).encode()
    signed = {"content-type": "application/json", "layercode-signature": sign(raw, WEBHOOK_SECRET)}
    voice = httpx.post(f"{deployed}/compat/layercode/agent", content=raw, headers=signed, timeout=20)
    assert voice.status_code == 200
    assert '"type":"response.end"' in voice.text


# --- the rule itself, in process -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("api_key", "access", "debug", "rule"),
    [
        (SHARED_KEY, "", False, "api_key"),  # the recipe: API_KEY alone
        (SHARED_KEY, "anonymous", False, "api_key"),
        (SHARED_KEY, "", True, "api_key"),
        (SHARED_KEY, "closed", False, "closed"),  # an explicit closed still closes it
        ("", "", False, "closed"),
        ("", "", True, "anonymous"),
        ("", "anonymous", False, "anonymous"),
    ],
)
def test_004_follows_its_seed_api_key_set_means_the_key_is_required(settings, api_key, access, debug, rule):
    settings.API_KEY, settings.COMPAT_CHAT_API_ACCESS, settings.DEBUG = api_key, access, debug
    assert mount_access("chat-api") == rule
