"""The dialects' encoders: pure functions of the turn's events, byte for byte."""

from datetime import UTC, datetime, timedelta, timezone

from conversations.codecs import chat_api, coding_agent, gemini_gateway, layercode, zai
from conversations.dialects.zai import health_timestamp
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
            '{"type":"complete","content":"Here ✓","artifact":{"language":"html","code":"<p>1</p>"}}\n'
        ).encode()
    )


def test_coding_agent_artifact_code_is_stripped_of_surrounding_whitespace():
    encoder = coding_agent.CodingAgentEncoder()
    encoder.encode(ArtifactReady(2, MID, 0, "python", "", "\n  def f():\n    pass\n\n"))
    assert encoder.encode(completed(3, "x")) == (
        b'{"type":"complete","content":"x","artifact":{"language":"python","code":"def f():\\n    pass"}}\n'
    )


def test_coding_agent_artifact_without_a_language_has_a_null_language_and_none_is_null():
    encoder = coding_agent.CodingAgentEncoder()
    encoder.encode(ArtifactReady(2, MID, 0, "", "", "x\n"))
    assert encoder.encode(completed(3, "x")) == (
        b'{"type":"complete","content":"x","artifact":{"language":null,"code":"x"}}\n'
    )
    assert coding_agent.CodingAgentEncoder().encode(completed(2, "y")) == (
        b'{"type":"complete","content":"y","artifact":null}\n'
    )


def test_coding_agent_error_carries_the_reason_in_error_and_message():
    encoder = coding_agent.CodingAgentEncoder()
    encoder.encode(started())
    assert encoder.encode(failed(2)) == (
        b'{"type":"error","error":"gemini: rate limited (HTTP 429)","message":"gemini: rate limited (HTTP 429)"}\n'
    )


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
    assert health_timestamp(datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)) == "2024-01-01T12:00:00.123Z"
    paris = timezone(timedelta(hours=1))
    assert health_timestamp(datetime(2024, 1, 1, 13, 0, tzinfo=paris)) == "2024-01-01T12:00:00.000Z"


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
def chat_api_frames(*texts, end=None):
    encoder = chat_api.ChatApiEncoder()
    events = [started(), *(Delta(n, MID, text) for n, text in enumerate(texts, 2))]
    return encode_all(encoder.encode, [*events, end or completed(len(texts) + 2, "")])


def delta(text):
    return b"event: delta\ndata: " + text.encode() + b"\n\n"


DONE = b"event: done\ndata: " + MID.encode() + b"\n\n"


def test_chat_api_deltas_are_raw_text_and_done_is_the_response_id():
    assert chat_api_frames("Hel", "lo ✓") == delta("Hel") + delta("lo ✓") + DONE


def test_chat_api_trailing_whitespace_moves_to_the_start_of_the_next_delta():
    assert (
        chat_api_frames("Hello ", "big\t", "world")
        == delta("Hello") + delta(" big") + delta("\tworld") + DONE
    )


def test_chat_api_whitespace_only_deltas_are_held_not_sent():
    assert chat_api_frames("Hello", " ", "  ", "world ") == delta("Hello") + delta("   world") + DONE


def test_chat_api_leading_whitespace_is_kept():
    assert chat_api_frames(" Hi") == delta(" Hi") + DONE


def test_chat_api_one_delta_per_line_and_a_line_break_becomes_a_space():
    assert chat_api_frames("one\ntwo\r\nthree\rfour") == (
        delta("one") + delta(" two") + delta(" three") + delta(" four") + DONE
    )


def test_chat_api_line_break_at_the_end_of_a_delta_separates_it_from_the_next():
    assert chat_api_frames("first\n", "second") == delta("first") + delta(" second") + DONE


def test_chat_api_line_breaks_and_spaces_together_make_no_extra_space():
    assert (
        chat_api_frames("a\n\n\nb", "c \n", "d") == delta("a") + delta(" b") + delta("c") + delta(" d") + DONE
    )


def test_chat_api_crlf_cut_between_deltas_is_one_space():
    assert chat_api_frames("a\r", "\nb") == delta("a") + delta(" b") + DONE


def test_chat_api_line_breaks_before_any_text_are_dropped():
    assert chat_api_frames("\n", "\r\nHi") == delta("Hi") + DONE


def test_chat_api_whitespace_at_the_end_of_the_answer_is_dropped():
    assert chat_api_frames("Bye \n", "\n") == delta("Bye") + DONE


def test_chat_api_failure_is_an_error_event_with_a_one_line_message():
    assert chat_api_frames("Hi ", end=failed(3, message="rate limited\n (HTTP 429) ")) == (
        delta("Hi") + b"event: error\ndata: rate limited (HTTP 429)\n\n"
    )


def test_chat_api_error_without_a_message_names_its_code():
    assert chat_api.ChatApiEncoder().encode(failed(2, message="")) == b"event: error\ndata: rate_limited\n\n"
