"""Seed 003 (Layercode voice agent), driven by a client written from its README and the platform's
webhook contract (signed requests), in process and against a live server on production settings."""

import json
import os
import threading
import time

import httpx
import pytest
import redis
from django.conf import settings

from conversations.dialects.layercode import DEFAULT_FALLBACK, DEFAULT_GREETING, DEFAULT_SYSTEM_PROMPT
from conversations.dialects.signature import SignatureError, sign, verify
from conversations.models import Conversation, Message
from conversations.turns.jobs import STOP_CHANNEL
from tests.factories import make_conversation, make_message
from tests.fake_upstream import expected_reply, split_reply
from tests.live_server import LiveServer, current_database_url
from tests.seeds.conftest import seed_client

BASE = "/compat/layercode"
SECRET = "whsec-test-layercode"
BODY = b'{"text":"hi","type":"message","session_id":"s","turn_id":"t"}'
NOW = 1_750_000_000


class Signed(httpx.Auth):
    """Signs each request as the Layercode platform does (``age`` seconds ago)."""

    requires_request_body = True

    def __init__(self, secret: str = SECRET, age: int = 0) -> None:
        self.secret, self.age = secret, age

    def auth_flow(self, request):
        request.headers["layercode-signature"] = sign(
            request.content, self.secret, int(time.time()) - self.age
        )
        yield request


def message(text, turn_id="turn-0001", session_id="sess-1234", kind="message"):
    return {"text": text, "type": kind, "session_id": session_id, "turn_id": turn_id}


def tts(content, turn_id="turn-0001") -> bytes:
    return (
        b"data: "
        + json.dumps(
            {"type": "response.tts", "content": content, "turn_id": turn_id}, separators=(",", ":")
        ).encode()
        + b"\n\n"
    )


def end(turn_id="turn-0001") -> bytes:
    return b'data: {"type":"response.end","turn_id":"' + turn_id.encode() + b'"}\n\n'


def agent(client, payload) -> bytes:
    with client.stream("POST", "/agent", json=payload) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read()


def spoken(raw: bytes) -> tuple[str, list[str]]:
    """What the platform reads: the ``response.tts`` contents joined, and the frame types in order."""
    frames = [
        json.loads(line[len("data: ") :]) for line in raw.decode().split("\n") if line.startswith("data: ")
    ]
    text = "".join(f["content"] for f in frames if f["type"] == "response.tts")
    return text, [f["type"] for f in frames]


# --- the signature, as a pure function ------------------------------------------------------------
def test_a_signature_of_the_exact_body_within_the_window_is_accepted():
    verify(sign(BODY, SECRET, NOW), BODY, SECRET, now=NOW + 10)


@pytest.mark.parametrize("skew", [-300, 300])
def test_the_window_is_300_seconds_either_way(skew):
    verify(sign(BODY, SECRET, NOW), BODY, SECRET, now=NOW + skew)


def test_any_one_of_several_v1_signatures_may_match():
    header = sign(BODY, SECRET, NOW) + ",v1=" + "0" * 64
    verify("v1=" + "f" * 64 + "," + header, BODY, SECRET, now=NOW)


def refusal(header, body=BODY, secret=SECRET, now=NOW) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(header, body, secret, now=now)
    return caught.value


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_signature_is_refused(header):
    assert refusal(header).code == "signature_missing"


@pytest.mark.parametrize(
    "header",
    [
        "v1=" + "a" * 64,
        f"t={NOW}",
        f"t=soon,v1={'a' * 64}",
        f"t=-{NOW},v1={'a' * 64}",
        f"t={NOW},v1=",
        "sha256=abcdef",
        "garbage",
    ],
)
def test_a_malformed_header_is_refused_saying_its_form(header):
    error = refusal(header)
    assert error.code == "signature_malformed"
    assert "t=<unix seconds>,v1=" in error.message


def test_a_wrong_mac_is_refused():
    error = refusal(f"t={NOW},v1={'0' * 64}")
    assert error.code == "signature_invalid"
    assert "LAYERCODE_WEBHOOK_SECRET" in error.message


def test_a_signature_with_another_secret_is_refused():
    assert refusal(sign(BODY, "another-secret", NOW)).code == "signature_invalid"


def test_a_changed_body_is_refused():
    assert refusal(sign(BODY, SECRET, NOW), body=BODY.replace(b"hi", b"ho")).code == "signature_invalid"


def test_a_changed_timestamp_is_refused():
    header = sign(BODY, SECRET, NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    assert refusal(header, now=NOW).code == "signature_invalid"


@pytest.mark.parametrize(("skew", "says"), [(301, "301 s old"), (-301, "301 s in the future")])
def test_a_stale_or_future_timestamp_is_refused(skew, says):
    error = refusal(sign(BODY, SECRET, NOW), now=NOW + skew)
    assert error.code == "signature_expired"
    assert says in error.message


def test_non_ascii_in_the_header_is_refused_not_an_error():
    assert refusal(f"t={NOW},v1=é" + "a" * 63).code == "signature_invalid"


# --- in process --------------------------------------------------------------------------------
@pytest.fixture
def signed(settings):
    settings.LAYERCODE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def client(asgi_server, gemini_upstream, signed):
    with seed_client(asgi_server, BASE) as http:
        http.auth = Signed()
        yield http


@pytest.mark.django_db(transaction=True)
def test_message_streams_tts_chunks_then_end_byte_for_byte(client):
    text = "Hello, how are you? [[chunks=3]]"
    raw = agent(client, message(text))
    pieces = split_reply(expected_reply(text), 3)
    assert raw == b"".join(tts(p) for p in pieces) + end()


@pytest.mark.django_db(transaction=True)
def test_every_turn_is_stored_under_its_session_without_an_owner(client):
    agent(client, message("hi [[chunks=2]]"))
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.content) == ("complete", expected_reply("hi [[chunks=2]]"))
    assert answer.conversation.session_key == "layercode:sess-1234"
    assert answer.conversation.owner_id is None


@pytest.mark.django_db(transaction=True)
def test_a_valid_signature_needs_no_api_key_nor_anonymous_access(client, settings):
    settings.ALLOW_ANONYMOUS = False
    settings.API_KEY = "shared-key-not-sent"
    assert agent(client, message("signed only [[chunks=1]]")).endswith(end())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("auth", "code"),
    [
        (None, "signature_missing"),
        (Signed("wrong-secret"), "signature_invalid"),
        (Signed(age=600), "signature_expired"),
    ],
)
def test_an_unsigned_or_badly_signed_request_is_401_and_nothing_is_stored(client, upstream, auth, code):
    response = client.post("/agent", json=message("let me in"), auth=auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert upstream.requests == []
    assert not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_signature_covers_the_raw_bytes_not_the_parsed_json(client, upstream):
    body = json.dumps(message("spaced  out"), indent=2).encode()
    headers = {"content-type": "application/json", "layercode-signature": sign(body, SECRET)}
    assert client.post("/agent", content=body, headers=headers, auth=None).status_code == 200
    reformatted = json.dumps(message("spaced  out")).encode()
    headers["layercode-signature"] = sign(reformatted, SECRET)
    response = client.post("/agent", content=body, headers=headers, auth=None)
    assert response.json()["error"]["code"] == "signature_invalid"


@pytest.mark.django_db(transaction=True)
def test_without_a_secret_the_mount_is_closed_naming_the_variable(client, settings):
    settings.LAYERCODE_WEBHOOK_SECRET = ""
    response = client.post("/agent", json=message("anyone?"))
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "webhook_secret_not_set"
    assert "LAYERCODE_WEBHOOK_SECRET" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_with_debug_and_no_secret_unsigned_requests_are_accepted(client, settings):
    settings.DEBUG, settings.LAYERCODE_WEBHOOK_SECRET = True, ""
    client.auth = None
    raw = agent(client, message("local dev [[chunks=1]]", turn_id="t1"))
    assert raw == tts(expected_reply("local dev"), "t1") + end("t1")


@pytest.mark.django_db(transaction=True)
def test_with_a_secret_the_signature_is_required_even_with_debug(client, settings):
    settings.DEBUG = True
    assert client.post("/agent", json=message("hi"), auth=None).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_retried_turn_replays_the_stored_answer_without_calling_the_provider(client, upstream):
    payload = message("say it once [[chunks=4]]")
    reply = expected_reply(payload["text"])
    assert agent(client, payload) == b"".join(tts(p) for p in split_reply(reply, 4)) + end()
    assert agent(client, payload) == tts(reply) + end()  # the stored answer, in one piece
    assert len(upstream.requests) == 1
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_turn_ids_are_scoped_to_their_session(client, upstream):
    agent(client, message("one", session_id="a"))
    agent(client, message("two", session_id="b"))
    assert len(upstream.requests) == 2


@pytest.mark.django_db(transaction=True)
def test_a_turn_retried_while_still_being_answered_joins_it(asgi_server, client, upstream):
    payload = message("slowly now [[chunks=5 delay=0.15]]")
    with seed_client(asgi_server, BASE) as other, client.stream("POST", "/agent", json=payload) as first:
        stream = first.iter_bytes()
        received = next(stream)
        other.auth = Signed()
        retried = agent(other, payload)
        received += b"".join(stream)
    expected = b"".join(tts(p) for p in split_reply(expected_reply(payload["text"]), 5)) + end()
    assert received == expected
    assert retried == expected
    assert len(upstream.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_turn_retried_while_another_process_answers_it_waits_for_that_answer(client, upstream):
    """The answer is streaming with no job in this process: the retry must not stop it (barge-in)."""
    conversation = make_conversation(owner=None, session_key="layercode:sess-1234")
    asked = make_message(conversation, content="still thinking", client_message_id="turn-0001")
    answer = make_message(
        conversation, role="assistant", status="streaming", content="", parent=asked, provider="gemini"
    )

    def finish_elsewhere():
        time.sleep(1.5)  # after the retry met the answer streaming
        Message.objects.filter(pk=answer.pk).update(status="complete", content="Done over there.")

    stops = redis.Redis.from_url(settings.REDIS_URL).pubsub() if settings.REDIS_URL else None
    if stops is not None:  # a stop for another process travels over Redis: listen for one
        stops.subscribe(STOP_CHANNEL)
    other_process = threading.Thread(target=finish_elsewhere)
    other_process.start()
    try:
        retried = agent(client, message("still thinking"))
    finally:
        other_process.join()
    assert retried == tts("Done over there.") + end()
    assert upstream.requests == []
    if stops is not None:
        sent = []
        while (note := stops.get_message(timeout=0.2)) is not None:
            sent.append(note["data"])
        stops.close()
        assert str(answer.pk).encode() not in sent, "the retry stopped its own answer"


@pytest.mark.django_db(transaction=True)
def test_session_start_greets_with_layercodes_words_without_calling_the_provider(client, upstream):
    raw = agent(client, message("", kind="session.start", turn_id="turn-0000"))
    assert DEFAULT_GREETING == "Welcome to Layercode. How can I help you today?"
    assert raw == tts(DEFAULT_GREETING, "turn-0000") + end("turn-0000")
    assert upstream.requests == []


@pytest.mark.django_db(transaction=True)
def test_the_greeting_is_in_the_history_the_model_sees(client, upstream):
    agent(client, message("", kind="session.start", turn_id="t0"))
    agent(client, message("", kind="session.start", turn_id="t0"))  # a retried start: stored once
    agent(client, message("what can you do", turn_id="t1"))
    contents = upstream.requests[-1].json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("model", DEFAULT_GREETING),
        ("user", "what can you do"),
    ]
    greeting = Message.objects.get(role="assistant", content=DEFAULT_GREETING)
    assert (greeting.status, greeting.conversation.session_key) == ("complete", "layercode:sess-1234")


@pytest.mark.django_db(transaction=True)
def test_greeting_is_configurable(client, settings):
    settings.LAYERCODE_GREETING = "Welcome to the help line."
    raw = agent(client, message("", kind="session.start"))
    assert raw == tts("Welcome to the help line.") + end()


@pytest.mark.django_db(transaction=True)
def test_an_empty_greeting_says_nothing_and_stores_nothing(client, settings):
    settings.LAYERCODE_GREETING = ""
    assert agent(client, message("", kind="session.start")) == end()
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_replies_are_asked_to_be_speech_friendly(client, upstream, settings):
    agent(client, message("hi"))
    assert upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == DEFAULT_SYSTEM_PROMPT
    settings.LAYERCODE_SYSTEM_PROMPT = "Speak like a pirate."
    agent(client, message("again", turn_id="turn-0002"))
    assert upstream.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "Speak like a pirate."


@pytest.mark.django_db(transaction=True)
def test_history_is_kept_per_session(client, upstream):
    agent(client, message("one", turn_id="t1"))
    agent(client, message("two", turn_id="t2"))
    contents = upstream.requests[-1].json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "one"),
        ("model", expected_reply("one")),
        ("user", "two"),
    ]
    agent(client, message("elsewhere", session_id="sess-other"))
    assert len(upstream.requests[-1].json["contents"]) == 1


@pytest.mark.django_db(transaction=True)
def test_provider_error_gets_a_friendly_fallback_then_end(client, upstream):
    upstream.push_fault("500")
    raw = agent(client, message("are you there"))
    assert raw == tts(DEFAULT_FALLBACK) + end()
    assert Message.objects.get(role="assistant").status == "failed"


@pytest.mark.django_db(transaction=True)
def test_error_after_some_speech_still_ends_with_the_fallback(client, settings):
    settings.LAYERCODE_FALLBACK = "Let me try that again."
    text = "long story [[chunks=5 fault=drop:2]]"
    raw = agent(client, message(text))
    pieces = split_reply(expected_reply(text), 5)[:2]
    assert raw == b"".join(tts(p) for p in pieces) + tts("Let me try that again.") + end()


@pytest.mark.django_db(transaction=True)
def test_a_turn_that_cannot_start_gets_the_fallback_too(client, settings):
    settings.GEMINI_API_KEY = ""
    raw = agent(client, message("no provider"))
    assert raw == tts(DEFAULT_FALLBACK) + end()


@pytest.mark.django_db(transaction=True)
def test_a_new_message_stops_the_answer_still_being_spoken(asgi_server, client, upstream):
    """Barge-in: the caller spoke over the answer; it is kept interrupted, the new one answered."""
    first_text = "tell me everything [[chunks=6 fault=stall:1]]"
    with (
        seed_client(asgi_server, BASE) as other,
        client.stream("POST", "/agent", json=message(first_text, turn_id="t1")) as first,
    ):
        other.auth = Signed()
        stream = first.iter_bytes()
        received = next(stream)
        while not received.endswith(b"\n\n"):
            received += next(stream)
        second = other.post("/agent", json=message("stop, what time is it", turn_id="t2"))
        received += b"".join(stream)
    assert received == tts(split_reply(expected_reply(first_text), 6)[0], "t1") + end("t1")
    assert second.status_code == 200
    assert second.content.endswith(end("t2"))
    answers = Message.objects.filter(role="assistant").order_by("created_at")
    assert [(a.status, a.error_code) for a in answers] == [("interrupted", "stopped"), ("complete", "")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "session.end", "session_id": "s"}, "type"),
        ({"text": 5}, "text"),
        ({"text": "hi", "turn_id": "t" * 129}, "turn_id"),
    ],
)
def test_malformed_requests_are_json_errors(client, payload, field):
    response = client.post("/agent", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_served_at_the_root_when_it_is_the_root_dialect(asgi_server, gemini_upstream, signed, root_mount):
    root_mount("layercode")
    with seed_client(asgi_server, "") as root:
        root.auth = Signed()
        raw = agent(root, message("at the root [[chunks=1]]"))
        health = root.get("/health")
    assert raw == tts(expected_reply("at the root")) + end()
    assert "database" in health.json()  # layercode has no /health: the project's stays


# --- a live server on production settings -------------------------------------------------------
def production_env(database_url: str, upstream, **overrides: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        "DEBUG": "false",
        "SECRET_KEY": "live-layercode-test-" + "k" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOW_ANONYMOUS": "false",
        "API_KEY": "",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "RATE_LIMIT_TURNS": "",
        "LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "",
        "GOOGLE_API_KEY": "",
        "GOOGLE_GENERATIVE_AI_API_KEY": "gemini-live-test-key",
        "GEMINI_BASE_URL": upstream.gemini_base_url,
        "LLM_RETRY_ATTEMPTS": "0",
        "LOG_LEVEL": "WARNING",
        "LAYERCODE_WEBHOOK_SECRET": SECRET,
        **overrides,
    }


@pytest.fixture(scope="module")
def live_servers(django_db_setup, django_db_blocker, fake_upstream_server):
    """Two servers on production settings: with the webhook secret, and without one."""
    with django_db_blocker.unblock():
        database_url = current_database_url()
    servers = [
        LiveServer(production_env(database_url, fake_upstream_server), server="uvicorn"),
        LiveServer(
            production_env(database_url, fake_upstream_server, LAYERCODE_WEBHOOK_SECRET=""), server="uvicorn"
        ),
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def live(live_servers):
    with httpx.Client(base_url=live_servers[0].url + BASE, timeout=20, auth=Signed()) as http:
        yield http


@pytest.mark.django_db(transaction=True)
def test_live_a_signed_webhook_is_answered_as_the_platform_reads_it(live, upstream):
    raw = agent(live, message("hello from the phone [[chunks=3]]", session_id="live-1"))
    text, types = spoken(raw)
    assert text == expected_reply("hello from the phone")
    assert types == ["response.tts"] * 3 + ["response.end"]
    assert upstream.requests[-1].headers.get("x-goog-api-key") == "gemini-live-test-key"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("auth", "code"),
    [
        (None, "signature_missing"),
        (Signed("not-the-secret"), "signature_invalid"),
        (Signed(age=3600), "signature_expired"),
    ],
)
def test_live_unsigned_badly_signed_and_stale_webhooks_are_401(live, upstream, auth, code):
    response = live.post("/agent", json=message("let me in", session_id="live-2"), auth=auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert upstream.requests == []


@pytest.mark.django_db(transaction=True)
def test_live_a_replayed_webhook_gets_the_same_answer_from_one_provider_call(live, upstream):
    payload = message("only once please [[chunks=4]]", session_id="live-3", turn_id="turn-9")
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "layercode-signature": sign(body, SECRET)}
    first = live.post("/agent", content=body, headers=headers, auth=None)
    replayed = live.post("/agent", content=body, headers=headers, auth=None)
    assert first.status_code == replayed.status_code == 200
    reply = expected_reply(payload["text"])
    assert spoken(first.content) == (reply, ["response.tts"] * 4 + ["response.end"])
    assert spoken(replayed.content) == (reply, ["response.tts", "response.end"])
    assert len(upstream.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_live_the_greeting_is_layercodes_and_the_model_sees_it(live, upstream):
    greeting = agent(live, message("", kind="session.start", session_id="live-4", turn_id="t0"))
    assert spoken(greeting) == (DEFAULT_GREETING, ["response.tts", "response.end"])
    agent(live, message("and you are?", session_id="live-4", turn_id="t1"))
    contents = upstream.requests[-1].json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("model", DEFAULT_GREETING),
        ("user", "and you are?"),
    ]


@pytest.mark.django_db(transaction=True)
def test_live_without_a_secret_the_mount_refuses_naming_the_variable(live_servers, upstream):
    with httpx.Client(base_url=live_servers[1].url + BASE, timeout=20, auth=Signed()) as http:
        response = http.post("/agent", json=message("hello?", session_id="live-5"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_secret_not_set"
    assert "LAYERCODE_WEBHOOK_SECRET" in response.json()["error"]["message"]
    assert upstream.requests == []
