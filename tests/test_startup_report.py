"""The start-up report: what the server will do, in its first log lines (chatproject/startup_report.py)."""

from __future__ import annotations

import logging

import pytest

from chatproject.startup_report import report
from tests.live_server import LiveServer, current_database_url


def lines(caplog) -> dict[str, logging.LogRecord]:
    return {r.getMessage().split(":", 1)[0]: r for r in caplog.records if r.name == "chatproject.startup"}


def test_it_names_the_database_layer_providers_https_and_proxy_trust(settings, caplog):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.TRUSTED_PROXIES = 1
    with caplog.at_level(logging.INFO, logger="chatproject.startup"):
        report()
    said = lines(caplog)
    assert set(said) == {"mode", "database", "channel layer", "attachments", "providers", "https", "proxies"}
    assert "the filesystem at" in said["attachments"].getMessage()
    assert "redirected to HTTPS" in said["https"].getMessage()
    assert "redirect loops" in said["https"].getMessage()  # the proxy's scheme is not believed
    assert "TRUSTED_PROXIES=1" in said["proxies"].getMessage()


def test_production_without_a_provider_key_says_no_turn_can_be_answered(settings, caplog):
    from providers.registry import reset_registry

    settings.LLM_PROVIDER = "demo"
    settings.DEMO_PROVIDER_ALLOWED = False
    reset_registry()
    try:
        with caplog.at_level(logging.INFO, logger="chatproject.startup"):
            report()
    finally:
        reset_registry()
    providers = lines(caplog)["providers"]
    assert providers.levelno == logging.WARNING
    assert "no provider key is set" in providers.getMessage()


def test_plain_http_served_as_is_is_said_too(settings, caplog):
    settings.SECURE_SSL_REDIRECT = False
    with caplog.at_level(logging.INFO, logger="chatproject.startup"):
        report()
    assert "SECURE_SSL_REDIRECT=false" in lines(caplog)["https"].getMessage()


@pytest.mark.django_db(transaction=True)
def test_the_production_server_logs_it_at_start_up():
    server = LiveServer({"DATABASE_URL": current_database_url(), "LOG_LEVEL": "INFO"}, server="uvicorn")
    server.start()
    server.stop()
    out = server.output()
    for name in ("mode", "database", "channel layer", "providers", "https", "proxies"):
        assert f'"chatproject.startup", "request_id": "-", "message": "{name}: ' in out, out[-2000:]
