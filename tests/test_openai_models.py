"""GET /v1/models through the official openai SDK, against the real server."""

import openai
import pytest
from openai import OpenAI

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sdk_lists_every_model_a_request_may_name(sdk, settings):
    ids = {model.id: model.owned_by for model in sdk.models.list()}
    for model_id in ("openai:gpt-test", "openai:fast", "openai:smart", "gpt-test", "fast", "smart"):
        assert ids[model_id] == "openai"
    assert "openai-responses:gpt-test" in ids  # the same key serves the Responses API
    assert not any(model_id.startswith("gemini:") for model_id in ids)  # no key: not listed
    assert all(model.object == "model" for model in sdk.models.list())


def test_with_an_allowlist_only_allowed_models_and_the_aliases_to_them_are_listed(sdk, settings):
    settings.OPENAI_MODELS = ["gpt-test", "gpt-other"]
    settings.LLM_MODEL_ALIASES = {"openai": {"quick": "gpt-other"}}
    ids = {model.id for model in sdk.models.list()}
    assert {"openai:gpt-test", "openai:gpt-other", "openai:quick", "gpt-other", "quick"} <= ids
    assert "openai:fast" not in ids and "smart" not in ids  # their models are not allowed here


def test_every_listed_id_is_one_chat_completions_accepts(sdk, settings):
    settings.LLM_MODEL_ALIASES = {"openai": {"quick": "gpt-other"}}
    listed = [model.id for model in sdk.models.list()]
    assert len(listed) > 6
    for model_id in listed:
        reply = sdk.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": f"as {model_id} [[chunks=1]]"}]
        )
        assert reply.choices[0].message.content, model_id


def test_retrieve_one_and_an_unknown_one_is_the_sdks_not_found(sdk):
    assert sdk.models.retrieve("openai:gpt-test").owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("openai:no-such-model")
    assert "GET /v1/models" in caught.value.message


def test_the_demo_is_listed_only_where_it_may_answer(asgi_server, settings):
    settings.LLM_PROVIDER = "demo"
    with OpenAI(api_key="unused", base_url=asgi_server.url + "/v1", max_retries=0) as client:
        settings.DEMO_PROVIDER_ALLOWED = True
        assert "demo:demo" in {model.id for model in client.models.list()}
        settings.DEMO_PROVIDER_ALLOWED = False
        assert "demo:demo" not in {model.id for model in client.models.list()}


def test_without_credentials_it_is_the_sdks_authentication_error(asgi_server, settings):
    settings.ALLOW_ANONYMOUS = False
    with (
        OpenAI(api_key="not-a-key", base_url=asgi_server.url + "/v1", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


def test_the_openapi_schema_describes_them(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "get" in paths["/v1/models"] and "404" in paths["/v1/models/{model_id}"]["get"]["responses"]


def test_the_providers_endpoint_names_the_models_each_serves_as_v1_models_lists_them(sdk, asgi_server):
    import httpx

    providers = {p["name"]: p for p in httpx.get(f"{asgi_server.url}/api/providers").json()["providers"]}
    openai_served = providers["openai"]
    assert {"gpt-test", "gpt-4o-mini", "gpt-4.1"} <= set(openai_served["models"])
    assert openai_served["any_model"] is False
    listed = {model.id for model in sdk.models.list()}
    assert {f"openai:{name}" for name in openai_served["models"]} <= listed


def test_every_listed_id_is_one_the_native_api_accepts(sdk, asgi_server, settings):
    import httpx

    settings.LLM_MODEL_ALIASES = {"openai": {"quick": "gpt-other"}}
    listed = [model.id for model in sdk.models.list()]
    with httpx.Client(base_url=asgi_server.url, timeout=20) as http:
        for n, model_id in enumerate(listed):
            reply = http.post(
                f"/api/sessions/native-ids-{n}/messages",
                json={"content": f"as {model_id} [[chunks=1]]", "model": model_id},
                headers={"Accept": "application/json"},
            )
            assert reply.status_code == 200, (model_id, reply.text)
        refused = http.post("/api/sessions/native-ids-x/messages", json={"content": "hi", "model": "gpt-9"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "model_not_found"


def test_the_openapi_schema_lists_the_served_models_for_a_native_turn(client, settings):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/sessions/{session_key}/messages"]["post"]["requestBody"]
    model = body["content"]["application/json"]["schema"]["oneOf"][0]["properties"]["model"]  # a user message
    assert "demo" in model["enum"] or "demo:demo" in model["enum"]
    settings.DEMO_MODELS = ["*"]  # a provider open to any name: the pattern instead
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/sessions/{session_key}/messages"]["post"]["requestBody"]
    for variant in body["content"]["application/json"]["schema"]["oneOf"]:  # a user or a tool message
        assert "pattern" in variant["properties"]["model"]
