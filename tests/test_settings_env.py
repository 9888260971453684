import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatproject.env import parse_origins
from tests.live_server import ROOT


def test_allowed_origins_accepts_a_json_array():
    raw = '["http://localhost:5173", "https://example.com"]'
    assert parse_origins("ALLOWED_ORIGINS", raw) == ["http://localhost:5173", "https://example.com"]


def test_allowed_origins_accepts_a_comma_separated_list():
    raw = "http://localhost:5173, https://example.com/"
    assert parse_origins("ALLOWED_ORIGINS", raw) == ["http://localhost:5173", "https://example.com"]


@pytest.mark.parametrize(
    "raw",
    [
        '["http://ok.example", 3]',
        '["http://unclosed.example"',
        "ftp://files.example",
        "example.com",
        "http://x.y/path",
    ],
)
def test_malformed_allowed_origins_is_rejected_with_the_variable_named(raw):
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_ORIGINS"):
        parse_origins("ALLOWED_ORIGINS", raw)


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    child_env.update({"DJANGO_SETTINGS_MODULE": "chatproject.settings", "SECRET_KEY": "x" * 50, **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ALLOWED_ORIGINS", "ftp://nope", "scheme, host, optional port"),
        ("MAX_HISTORY_MESSAGES", "ten", "a whole number"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("DATABASE_URL", "nosuchdb://x", "postgres://"),
        ("REDIS_URL", "http://localhost:6379", "redis://"),
        ("DEBUG", "maybe", "true or false"),
        ("RATE_LIMIT_TURNS", "lots", "a rate such as"),
        ("COMPAT_CHAT_API_RATE_LIMIT", "20 per fortnight", "a rate such as"),
        ("COMPAT_ZAI_ACCESS", "open", "closed, anonymous, api_key or signature"),
        ("COMPAT_ZAI_ACCESS", "signature", "signature is layercode's"),
        ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES"),
        ("LLM_HTTP_TRANSPORT", "curl", "asyncio or httpx"),
    ],
)
def test_invalid_value_stops_start_up_naming_the_variable(name, value, expected):
    result = run_check(**{name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert expected in result.stderr


def test_missing_secret_key_stops_start_up_unless_debug():
    result = run_check(SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert run_check(SECRET_KEY="", DEBUG="true").returncode == 0


def test_the_gemini_key_may_be_given_as_the_seeds_google_generative_ai_api_key():
    providers = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "LLM_PROVIDER", "OPENAI_API_KEY", "ZAI_API_KEY")
    child_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", *providers)}
    child_env.update(
        DJANGO_SETTINGS_MODULE="chatproject.settings",
        SECRET_KEY="x" * 50,
        GOOGLE_GENERATIVE_AI_API_KEY="seed-key",
        OPENAI_COMPATIBLE_BASE_URL="",
    )
    show = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.GEMINI_API_KEY, s.LLM_PROVIDER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", show], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["seed-key", "gemini"], result.stderr


def test_a_dot_env_file_fills_in_what_the_environment_leaves_unset(tmp_path):
    dot_env = tmp_path / ".env"
    dot_env.write_text("MAX_HISTORY_MESSAGES=7\nLOG_LEVEL=WARNING\n")
    code = "from django.conf import settings; print(settings.MAX_HISTORY_MESSAGES, settings.LOG_LEVEL)"
    child_env = {k: v for k, v in os.environ.items() if k not in ("MAX_HISTORY_MESSAGES", "LOG_LEVEL")}
    child_env.update(
        {"DJANGO_SETTINGS_MODULE": "chatproject.settings", "SECRET_KEY": "x" * 50, "ENV_FILE": str(dot_env)}
    )

    def read(**env: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); " + code],
            cwd=ROOT,
            env={**child_env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.split()

    assert read() == ["7", "WARNING"]
    assert read(LOG_LEVEL="ERROR") == ["7", "ERROR"]  # the environment wins
    assert read(ENV_FILE="") == ["10", "INFO"]  # no file: the defaults


def test_the_test_settings_never_read_a_dot_env():
    from django.conf import settings

    assert settings.ENV_FILE == ""


def test_a_setting_to_fix_is_one_line_from_manage_py_and_the_asgi_server():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update({"SECRET_KEY": "", "ENV_FILE": ""})
    command = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode != 0
    assert command.stderr.strip().splitlines() == [
        "manage.py: SECRET_KEY is not set: set SECRET_KEY to a long random string "
        "(or DEBUG=true for local development, which uses an insecure development key)."
    ]
    server = subprocess.run(
        [sys.executable, "-c", "import chatproject.asgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert server.returncode != 0
    assert "Traceback" not in server.stderr
    assert server.stderr.strip().startswith("chatproject.asgi: SECRET_KEY is not set")
