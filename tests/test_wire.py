"""Encoders, byte for byte."""

import json

from conversations.events import ArtifactReady, Completed, Delta, Failed, Started, UsageReported
from conversations.wire.ndjson import encode_ndjson
from conversations.wire.openai_chat import ChatChunkEncoder, chat_completion
from conversations.wire.sse import encode_sse, sse_frame
from conversations.wire.summary import summarize_turn

MID = "m-1"
EVENTS = [
    Started(
        1, MID, session_key="s", conversation_id="c", user_message_id="u", provider="openai", model="gpt"
    ),
    Delta(2, MID, "Hel"),
    Delta(3, MID, "lo\n"),
    ArtifactReady(4, MID, 0, "python", "a.py", "x = 1\n"),
    UsageReported(5, MID, 3, 2, 5, False),
    Completed(6, MID, "Hello\n", "stop", "resp-1", "openai", "gpt"),
]


def test_native_sse_frame_bytes():
    assert encode_sse(EVENTS[1]) == (
        b'id: 2\nevent: delta\ndata: {"type":"delta","seq":2,"message_id":"m-1","text":"Hel"}\n\n'
    )


def test_newlines_in_text_stay_inside_the_json_data_line():
    frame = encode_sse(EVENTS[2])
    assert frame.count(b"\n") == 4
    assert b'"text":"lo\\n"' in frame


def test_ndjson_line_bytes():
    assert encode_ndjson(EVENTS[4]) == (
        b'{"type":"usage","seq":5,"message_id":"m-1","input_tokens":3,"output_tokens":2,"total_tokens":5,'
        b'"estimated":false}\n'
    )


def test_bare_data_frames_split_multi_line_text():
    assert sse_frame("a\nb") == b"data: a\ndata: b\n\n"


def test_every_line_break_the_sse_spec_reads_starts_a_new_data_line():
    # CR, LF and CRLF each end a line for an SSE parser: none may end up raw inside a data line
    assert sse_frame("a\rb\r\nc\n") == b"data: a\ndata: b\ndata: c\ndata: \n\n"
    assert sse_frame(b"") == b"data: \n\n"


def test_a_frame_names_its_id_and_event_before_its_data():
    assert sse_frame(b"{}", event="error", id=7) == b"id: 7\nevent: error\ndata: {}\n\n"
    assert sse_frame("x", event=b"delta") == b"event: delta\ndata: x\n\n"


def test_openai_chunks_with_usage_end_with_done():
    encoder = ChatChunkEncoder(completion_id="chatcmpl-1", model="gpt", created=7, include_usage=True)
    out = b"".join(encoder.encode(e) for e in EVENTS)
    frames = [f.removeprefix(b"data: ") for f in out.split(b"\n\n") if f]
    assert frames[-1] == b"[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hel", "lo\n"]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)


def test_openai_stream_failure_is_an_error_object_then_done():
    encoder = ChatChunkEncoder(completion_id="c", model="m", created=1, include_usage=False)
    out = encoder.encode(Failed(3, MID, "failed", "rate_limited", "slow down", "", 2.0))
    assert out == (
        b'data: {"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limited"}}'
        b"\n\ndata: [DONE]\n\n"
    )


def test_summary_and_chat_completion_from_events():
    summary = summarize_turn(EVENTS)
    assert summary["content"] == "Hello\n"
    assert summary["status"] == "complete"
    assert summary["artifacts"] == [
        {"position": 0, "language": "python", "filename": "a.py", "content": "x = 1\n"}
    ]
    completion = chat_completion(summary, completion_id="c", model="gpt", created=1)
    assert completion["choices"][0]["message"]["content"] == "Hello\n"
    assert completion["usage"]["total_tokens"] == 5


def test_summary_of_a_failed_turn_keeps_partial_text_and_error():
    summary = summarize_turn([*EVENTS[:3], Failed(4, MID, "interrupted", "stopped", "Stopped.", "Hello\n")])
    assert (summary["status"], summary["content"], summary["error"]["code"]) == (
        "interrupted",
        "Hello\n",
        "stopped",
    )
