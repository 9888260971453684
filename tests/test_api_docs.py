"""The API schema and docs: Swagger UI served from this server, and visible as ``API_DOCS`` says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from accounts.keys import api_key_create
from tests.live_server import ROOT

PATHS = ("/api/schema/", "/api/docs/", "/api/docs/?script=")
SIDECAR = "/static/drf_spectacular_sidecar/swagger-ui-dist/"


def test_the_docs_page_loads_swagger_ui_from_this_server_only(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert {f"{SIDECAR}swagger-ui-bundle.js", f"{SIDECAR}swagger-ui.css", "/api/docs/?script="} <= set(urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "cdn" not in html and "@latest" not in html


def test_the_docs_page_has_no_inline_script_or_style(client):
    html = client.get("/api/docs/").content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html and "style=" not in html


def test_the_docs_init_script_is_a_file_of_its_own_without_the_validator_badge(client):
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    body = script.content.decode()
    assert "SwaggerUIBundle(" in body and 'url: "/api/schema/"' in body
    assert '"validatorUrl": null' in body  # no request to validator.swagger.io


@pytest.mark.parametrize(
    "path",
    [f"{SIDECAR}swagger-ui-bundle.js", f"{SIDECAR}swagger-ui-standalone-preset.js", "/static/api/docs.css"],
)
async def test_swagger_ui_files_are_static_files_of_this_server(path):
    response = await AsyncClient().get(path)
    assert response.status_code == 200
    assert len(b"".join([chunk async for chunk in response.streaming_content])) > 10


@pytest.fixture
def callers(db, user):
    """A client per kind of caller: nobody, a user's session, a personal API key, a staff session."""
    staff = get_user_model().objects.create_user("root", password="pw-root-123", is_staff=True)
    as_user, as_staff = Client(), Client()
    as_user.force_login(user)
    as_staff.force_login(staff)
    _, secret = api_key_create(owner=user, name="docs")
    return {
        "anonymous": (Client(), {}),
        "user": (as_user, {}),
        "api_key": (Client(), {"HTTP_X_API_KEY": secret}),
        "staff": (as_staff, {}),
    }


EXPECTED = {  # API_DOCS -> caller -> status
    "public": {"anonymous": 200, "user": 200, "api_key": 200, "staff": 200},
    "authenticated": {"anonymous": 401, "user": 200, "api_key": 200, "staff": 200},
    "staff": {"anonymous": 401, "user": 403, "api_key": 403, "staff": 200},
    "off": {"anonymous": 404, "user": 404, "api_key": 404, "staff": 404},
}
CODES = {401: "authentication_required", 403: "forbidden", 404: "not_found"}


@pytest.mark.parametrize("visibility", list(EXPECTED))
@pytest.mark.parametrize("path", PATHS)
def test_the_schema_and_docs_obey_api_docs(settings, callers, visibility, path):
    settings.API_DOCS = visibility
    for caller, status in EXPECTED[visibility].items():
        client, headers = callers[caller]
        response = client.get(path, **headers)
        assert response.status_code == status, (caller, response.content[:200])
        if status != 200:
            assert response["Content-Type"] == "application/json", caller
            error = response.json()["error"]
            assert error["code"] == CODES[status], caller
            assert f"API_DOCS={visibility}" in error["message"], caller


def test_an_invalid_api_key_is_refused_even_when_the_docs_are_public(settings, client):
    settings.API_DOCS = "public"
    response = client.get("/api/schema/", HTTP_X_API_KEY="ck_nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def api_docs_setting(**env: str) -> subprocess.CompletedProcess[str]:
    """``settings.API_DOCS`` as the project's settings (not the suite's) compute it from ``env``."""
    child_env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "API_DOCS", "DEBUG")
    }
    child_env.update(
        {"DJANGO_SETTINGS_MODULE": "chatproject.settings", "SECRET_KEY": "x" * 50, "ENV_FILE": ""}
    )
    child_env.update(env)
    code = "import django; django.setup(); from django.conf import settings; print(settings.API_DOCS)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"DEBUG": "true"}, "public"), ({}, "authenticated"), ({"API_DOCS": "Staff"}, "staff")],
)
def test_api_docs_defaults_to_public_under_debug_and_authenticated_in_production(env, expected):
    result = api_docs_setting(**env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == expected


def test_an_unknown_api_docs_value_stops_start_up_naming_the_variable():
    result = api_docs_setting(API_DOCS="private")
    assert result.returncode != 0
    assert "API_DOCS" in result.stderr and "public or authenticated or staff or off" in result.stderr
