import httpx
import pytest
from channels.testing import HttpCommunicator

from chatproject.asgi import application
from tests.live_server import current_database_url, live_server

pytestmark = pytest.mark.django_db(transaction=True)


async def test_health_reports_ok_when_every_dependency_answers(async_client, settings):
    response = await async_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    if settings.REDIS_URL:
        assert body["redis"] == "ok"
    else:
        assert "redis" not in body


async def test_health_is_503_naming_redis_when_redis_is_unreachable(async_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = await async_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] == "unavailable"
    assert body["database"] == "ok"
    assert "redis" in body["error"]["message"]
    assert body["error"]["code"] == "dependency_unavailable"


def test_health_is_503_naming_the_database_when_it_is_unreachable():
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere", "REDIS_URL": ""}
    with live_server(env) as url:
        response = httpx.get(url + "/health", timeout=20)
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "unavailable"
    assert "DATABASE_URL" in body["error"]["message"]


async def test_http_request_through_the_real_asgi_application():
    communicator = HttpCommunicator(application, "GET", "/health", headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 200
    assert b'"database": "ok"' in response["body"]


def test_live_daphne_server_serves_health_and_admin_login():
    with live_server({"DATABASE_URL": current_database_url()}) as url:
        health = httpx.get(url + "/health", timeout=10)
        login = httpx.get(url + "/admin/login/", timeout=10)
    assert health.status_code == 200
    assert login.status_code == 200
    assert "Django administration" in login.text or "Log in" in login.text
