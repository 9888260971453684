"""``manage.py check --deploy`` sees the protections really installed (inline-async subclasses)."""

from chatproject.checks import check_installed_security_middleware


def ids() -> list[str]:
    return [message.id for message in check_installed_security_middleware()]


def test_the_installed_middleware_passes_with_production_values(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = True
    settings.CSRF_COOKIE_SECURE = True
    assert ids() == []


def test_the_checks_that_depend_on_the_middleware_run(settings):
    """Django skips HSTS, SSL-redirect and CSRF-cookie checks when it thinks the middleware is missing."""
    settings.SECURE_HSTS_SECONDS = 0
    settings.SECURE_SSL_REDIRECT = False
    settings.CSRF_COOKIE_SECURE = False
    assert {"security.W004", "security.W008", "security.W016"} <= set(ids())


def test_removing_a_protection_still_fails_the_checklist(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("CsrfViewMiddleware")]
    assert "chatproject.security.W003" in ids()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith(".SecurityMiddleware")]
    assert "chatproject.security.W001" in ids()


def test_removing_the_login_throttle_fails_the_checklist(settings):
    assert "chatproject.axes.W002" not in ids()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("LoginThrottleMiddleware")]
    assert "chatproject.axes.W002" in ids()


def test_the_turn_stage_clock_is_flagged_by_the_deploy_checklist(monkeypatch):
    from chatproject.checks import check_turn_timing_off
    from conversations.telemetry import stages

    assert check_turn_timing_off() == []  # off unless TURN_TIMING=1 (only bench/waterfall.py sets it)
    monkeypatch.setattr(stages, "on", True)
    assert [message.id for message in check_turn_timing_off()] == ["chatproject.W010"]
