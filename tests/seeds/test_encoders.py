"""The dialects' encoders: pure functions of the turn's events, byte for byte."""

from datetime import UTC, datetime, timedelta, timezone

from conversations.dialects import chat_api, coding_agent, gemini_gateway, layercode, zai
from conversations.events import ArtifactReady, Completed, Delta, Failed, Started, UsageReported

MID = "5f0c6a3e-0000-4000-8000-000000000001"


def started(provider="gemini", model="gemini-2.5-flash"):
    return Started(1, MID, "k", "c", "u", provider, model)


def usage(seq):
    return UsageReported(seq, MID, 3, 4, 7, False)


def completed(seq, content):
    return Completed(seq, MID, content, "stop", "resp_1", "gemini", "gemini-2.5-flash")


def failed(seq, status="failed", code="rate_limited", message="rate limited (HTTP 429)", content=""):
    return Failed(seq, MID, status, code, message, content, 2.0)


def encode_all(encode, events):
    return b"".join(encode(event) for event in events)


# --- 000 gemini-gateway --------------------------------------------------------------------------
def test_gateway_text_is_raw_data_frames():
    events = [started(), Delta(2, MID, "Hel"), Delta(3, MID, "lo"), usage(4), completed(5, "Hello")]
    assert encode_all(gemini_gateway.encode_event, events) == b"data: Hel\n\ndata: lo\n\n"


def test_gateway_every_line_break_starts_a_data_line():
    frame = gemini_gateway.encode_event(Delta(2, MID, "a\r\nb\rc\n"))
    assert frame == b"data: a\ndata: b\ndata: c\ndata: \n\n"


def test_gateway_keeps_leading_spaces_and_utf8():
    assert gemini_gateway.text_frame(" déjà") == "data:  déjà\n\n".encode()


def test_gateway_failure_is_an_error_event():
    assert gemini_gateway.encode_event(failed(2)) == (
        b'event: error\ndata: {"code":"rate_limited","message":"rate limited (HTTP 429)"}\n\n'
    )


# --- 001 coding-agent ----------------------------------------------------------------------------
def test_coding_agent_tokens_then_complete_with_the_first_artifact():
    encoder = coding_agent.CodingAgentEncoder()
    events = [
        started(),
        Delta(2, MID, "Here ✓"),
        ArtifactReady(3, MID, 0, "html", "", "<p>1</p>\n"),
        ArtifactReady(4, MID, 1, "css", "", "p {}\n"),
        usage(5),
        completed(6, "Here ✓"),
    ]
    assert (
        encode_all(encoder.encode, events)
        == (
            '{"type":"token","content":"Here ✓"}\n'
            '{"type":"complete","content":"Here ✓","artifact":{"language":"html","code":"<p>1</p>\\n"}}\n'
        ).encode()
    )


def test_coding_agent_artifact_without_a_language_is_text_and_none_is_null():
    encoder = coding_agent.CodingAgentEncoder()
    encoder.encode(ArtifactReady(2, MID, 0, "", "", "x\n"))
    assert encoder.encode(completed(3, "x")) == (
        b'{"type":"complete","content":"x","artifact":{"language":"text","code":"x\\n"}}\n'
    )
    assert coding_agent.CodingAgentEncoder().encode(completed(2, "y")) == (
        b'{"type":"complete","content":"y","artifact":null}\n'
    )


def test_coding_agent_error_names_the_provider():
    encoder = coding_agent.CodingAgentEncoder()
    encoder.encode(started())
    assert encoder.encode(failed(2)) == b'{"type":"error","message":"gemini: rate limited (HTTP 429)"}\n'


# --- 002 zai -------------------------------------------------------------------------------------
def test_zai_chunks_use_json_dumps_spacing_and_end_with_done():
    encoder = zai.ZaiChunkEncoder(created=1234567890)
    events = [
        started("zai", "glm-4.6"),
        Delta(2, MID, "Hello"),
        Delta(3, MID, "!"),
        usage(4),
        completed(5, ""),
    ]
    assert encode_all(encoder.encode, events) == (
        b'data: {"choices": [{"delta": {"content": "Hello"}}], "model": "glm-4.6", "created": 1234567890}\n\n'
        b'data: {"choices": [{"delta": {"content": "!"}}], "model": "glm-4.6", "created": 1234567890}\n\n'
        b'data: {"data": "[DONE]"}\n\n'
    )


def test_zai_escapes_non_ascii_like_json_dumps():
    encoder = zai.ZaiChunkEncoder(created=1, model="glm-4.6")
    assert encoder.encode(Delta(2, MID, "é")) == (
        b'data: {"choices": [{"delta": {"content": "\\u00e9"}}], "model": "glm-4.6", "created": 1}\n\n'
    )


def test_zai_failure_is_an_error_frame_then_done():
    encoder = zai.ZaiChunkEncoder(created=1, model="glm-4.6")
    assert encoder.encode(failed(2)) == (
        b'data: {"error": {"code": "rate_limited", "message": "rate limited (HTTP 429)"}}\n\n'
        b'data: {"data": "[DONE]"}\n\n'
    )


def test_zai_health_timestamp_is_utc_with_milliseconds():
    assert (
        zai.health_timestamp(datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)) == "2024-01-01T12:00:00.123Z"
    )
    paris = timezone(timedelta(hours=1))
    assert zai.health_timestamp(datetime(2024, 1, 1, 13, 0, tzinfo=paris)) == "2024-01-01T12:00:00.000Z"


# --- 003 layercode -------------------------------------------------------------------------------
def test_layercode_tts_chunks_then_end():
    encoder = layercode.LayercodeEncoder("turn-0001", "Sorry.")
    events = [started(), Delta(2, MID, "Hi there!"), usage(3), completed(4, "Hi there!")]
    assert encode_all(encoder.encode, events) == (
        b'data: {"type":"response.tts","content":"Hi there!","turn_id":"turn-0001"}\n\n'
        b'data: {"type":"response.end","turn_id":"turn-0001"}\n\n'
    )


def test_layercode_failure_speaks_the_fallback_but_a_stop_just_ends():
    encoder = layercode.LayercodeEncoder("t", "Sorry.")
    assert encoder.encode(failed(2)) == (
        b'data: {"type":"response.tts","content":"Sorry.","turn_id":"t"}\n\n'
        b'data: {"type":"response.end","turn_id":"t"}\n\n'
    )
    assert encoder.encode(failed(2, status="interrupted", code="stopped")) == (
        b'data: {"type":"response.end","turn_id":"t"}\n\n'
    )


def test_layercode_without_turn_id_or_text():
    assert layercode.spoken_frames("", None) == [b'data: {"type":"response.end","turn_id":null}\n\n']


# --- 004 chat-api --------------------------------------------------------------------------------
def test_chat_api_delta_and_done_events():
    events = [started(), Delta(2, MID, "Hi"), usage(3), completed(4, "Hi")]
    assert encode_all(chat_api.encode_event, events) == (
        b'event: delta\ndata: {"delta":"Hi"}\n\n'
        b'event: done\ndata: {"response_id":"' + MID.encode() + b'"}\n\n'
    )


def test_chat_api_failure_is_an_error_event():
    assert chat_api.encode_event(failed(2)) == (
        b'event: error\ndata: {"code":"rate_limited","message":"rate limited (HTTP 429)"}\n\n'
    )
