"""What the deployment files themselves must say (the image, compose, the README's command).

There is no Docker daemon here: these read the files, and run the image's health probe against a
live server the way the container runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jsonschema_rs
import pytest
import yaml

from tests.live_server import ROOT, LiveServer, current_database_url, free_port

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def production_commands() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    command = readme.split("## Running in production", 1)[1].split("```", 2)[1]
    return {"README": command, "Dockerfile": DOCKERFILE.split("\nCMD ", 1)[1]}


@pytest.mark.parametrize("where", ["README", "Dockerfile"])
def test_uvicorn_believes_no_forwarded_header_the_app_decides_the_client_address(where):
    assert "--no-proxy-headers" in production_commands()[where]
    assert "--forwarded-allow-ips" not in production_commands()[where]


def test_compose_publishes_only_the_proxy_and_the_app_trusts_its_one_hop():
    services = COMPOSE["services"]
    assert "ports" not in services["web"]
    assert services["proxy"]["ports"] == ["8000:80"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["proxy"]["volumes"]
    assert services["web"]["environment"]["TRUSTED_PROXIES"] == "1"
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_compose_refuses_to_start_without_a_secret_key():
    secret = COMPOSE["services"]["web"]["environment"]["SECRET_KEY"]
    assert secret.startswith("${SECRET_KEY:?"), "a missing SECRET_KEY must stop compose, naming it"


def test_the_image_and_compose_probe_the_apps_health():
    assert "HEALTHCHECK" in DOCKERFILE and "deploy/healthcheck.py" in DOCKERFILE
    assert COMPOSE["services"]["web"]["healthcheck"]["test"] == ["CMD", "python", "deploy/healthcheck.py"]


@pytest.mark.django_db(transaction=True)
def test_the_health_probe_passes_on_a_healthy_server_and_fails_without_one():
    port = free_port()
    env = {**os.environ, "PORT": str(port), "ALLOWED_HOSTS": ".example.com,localhost"}
    probe = [sys.executable, str(ROOT / "deploy" / "healthcheck.py")]
    app_env = {"DATABASE_URL": current_database_url(), "ALLOWED_HOSTS": ".example.com,localhost"}
    server = LiveServer(app_env, server="uvicorn", port=port).start()
    try:
        assert subprocess.run(probe, env=env, capture_output=True).returncode == 0
    finally:
        server.stop()
    down = subprocess.run(probe, env=env, capture_output=True, text=True)
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_the_image_leaves_out_local_state_and_secrets():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".env", ".venv", "*.sqlite3", "**/node_modules", "bench/results"):
        assert entry in ignored, f".dockerignore should leave out {entry}"
    assert "!.env.example" in ignored


def test_the_docs_name_the_compose_service_that_exists():
    for page in ("README.md", *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))):
        text = (ROOT / page).read_text()
        for service in re.findall(r"docker compose (?:run --rm|exec) (\w+)", text):
            assert service in COMPOSE["services"], f"{page} names a compose service {service!r}"


def test_the_compose_file_validates_against_the_compose_specification():
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema_rs.validator_for(schema)
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert not errors, "\n".join(errors)
    broken = {
        **COMPOSE,
        "services": {**COMPOSE["services"], "web": {**COMPOSE["services"]["web"], "ports": 8000}},
    }
    assert not validator.is_valid(broken)  # the schema does check what it is given


def test_attachments_on_the_filesystem_storage_are_kept_in_a_volume_the_app_can_write():
    web = COMPOSE["services"]["web"]
    assert "media:/app/media" in web["volumes"]
    assert "media" in COMPOSE["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENV MEDIA_ROOT=/app/media" in dockerfile
    assert "chown app /app/media" in dockerfile
