"""Client tools over ``ws/chat/{key}/`` through the real ASGI application (Channels' communicator),
with the offline demo provider calling the tool it is offered. With REDIS_URL set, the channel layer
and the replay buffer are on real Redis."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message
from tests.factories import make_conversation
from tests.test_ws_chat import connect, until_terminal

pytestmark = pytest.mark.django_db(transaction=True)

LOOKUP = {
    "name": "lookup",
    "description": "Look a word up in the encyclopedia.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
TOOL_FRAMES = ["tool_call_start", "tool_call_delta", "tool_call_delta", "tool_call_done"]


@pytest.fixture
async def session(settings):
    settings.LLM_PROVIDER = "demo"
    settings.DEMO_DELAY = 0.001
    settings.LLM_FALLBACKS = []
    return await sync_to_async(make_conversation)(owner=None, session_key="ws-tools")


def results_frame(call_id: str, output: str = "a sea monster", **extra) -> dict:
    part = {"type": "tool_result", "call_id": call_id, "output": output}
    return {"type": "message", "role": "tool", "parts": [part], "tools": [LOOKUP], **extra}


def done_of(frames: list[dict]) -> dict:
    return next(f for f in frames if f["type"] == "tool_call_done")


async def test_the_tool_loop_over_frames(session):
    ws = await connect("ws-tools")
    await ws.send_json_to({"type": "message", "content": "kraken", "tools": [LOOKUP]})
    frames = await until_terminal(ws)
    assert [f["type"] for f in frames] == ["started", *TOOL_FRAMES, "usage", "done"]
    assert [f["seq"] for f in frames] == list(range(1, 8))
    assert {f["message_id"] for f in frames} == {frames[0]["message_id"]}
    done = done_of(frames)
    assert done["call_id"].startswith("call_demo_")
    assert (done["name"], done["arguments"], done["input"]) == (
        "lookup",
        '{"query": "kraken"}',
        {"query": "kraken"},
    )
    assert (frames[-1]["finish_reason"], frames[-1]["content"]) == ("tool_calls", "")

    await ws.send_json_to(results_frame(done["call_id"], client_message_id="r-1"))
    answer = await until_terminal(ws)
    assert (answer[0]["type"], answer[-1]["type"]) == ("started", "done")
    assert not [f for f in answer if f["type"].startswith("tool_call")]
    assert answer[-1]["finish_reason"] == "stop"
    assert "returned: a sea monster" in answer[-1]["content"]
    tool_message = await Message.objects.aget(pk=answer[0]["user_message_id"])
    assert (tool_message.role, str(tool_message.parent_id)) == ("tool", frames[0]["message_id"])
    assert tool_message.parts[0]["call_id"] == done["call_id"]

    await ws.send_json_to(results_frame(done["call_id"], client_message_id="r-1"))  # the same again
    replay = await until_terminal(ws)
    assert replay[-1]["type"] == "done" and replay[-1]["message_id"] == answer[-1]["message_id"]
    assert await Message.objects.filter(role="tool").acount() == 1
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (
            {
                "type": "message",
                "role": "tool",
                "content": "x",
                "parts": [{"type": "tool_result", "call_id": "c", "output": "x"}],
            },
            "content",
        ),
        (
            {
                "type": "message",
                "content": "x",
                "parts": [{"type": "tool_result", "call_id": "c", "output": "x"}],
            },
            "parts",
        ),
        ({"type": "message", "content": "x", "tools": [{**LOOKUP, "name": "look up"}]}, "tools"),
        (
            {
                "type": "message",
                "role": "tool",
                "parts": [{"type": "tool_result", "call_id": "c", "output": "x"}],
            },
            "tool_results",
        ),
    ],
    ids=["content-with-role-tool", "parts-with-role-user", "bad-tool-name", "no-calls-to-answer"],
)
async def test_bad_tool_frames_get_an_error_frame_naming_the_field(session, frame, field):
    ws = await connect("ws-tools")
    await ws.send_json_to(frame)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and "seq" not in error
    assert error["field"] == field and error["message"]
    assert not await Message.objects.aexists()
    await ws.disconnect()


async def test_resume_mid_stream_replays_the_tool_events(session, settings):
    settings.DEMO_DELAY = 0.15
    ws = await connect("ws-tools")
    await ws.send_json_to({"type": "message", "content": "kraken", "tools": [LOOKUP]})
    seen = [await ws.receive_json_from(timeout=5) for _ in range(2)]  # started, tool_call_start
    assert [f["type"] for f in seen] == ["started", "tool_call_start"]
    await ws.disconnect()  # cut off mid-call; the turn runs on within the grace period
    again = await connect("ws-tools")
    await again.send_json_to({"type": "resume", "message_id": seen[0]["message_id"], "after_seq": 2})
    rest = await until_terminal(again)
    frames = seen + rest
    assert [f["type"] for f in frames] == ["started", *TOOL_FRAMES, "usage", "done"]
    assert [f["seq"] for f in frames] == list(range(1, 8))
    fragments = "".join(f["arguments"] for f in frames if f["type"] == "tool_call_delta")
    assert fragments == done_of(frames)["arguments"] == '{"query": "kraken"}'
    await again.disconnect()


async def test_resume_after_the_buffer_expired_replays_the_stored_call(session, settings):
    ws = await connect("ws-tools")
    await ws.send_json_to({"type": "message", "content": "kraken", "tools": [LOOKUP]})
    frames = await until_terminal(ws)
    message_id = frames[0]["message_id"]
    from conversations.redis_client import redis_client
    from conversations.turns.replay_buffer import get_replay_buffer
    from conversations.turns.running import running_jobs

    for _ in range(200):  # the job has published its last batch to the buffer
        if message_id not in running_jobs:
            break
        await asyncio.sleep(0.01)
    if settings.REDIS_URL:
        await redis_client().delete(f"chat:turn:{message_id}:events")
    else:
        get_replay_buffer()._events.pop(message_id)
    await ws.send_json_to({"type": "resume", "message_id": message_id, "after_seq": 1})
    replay = await until_terminal(ws)
    assert all(f.get("snapshot") for f in replay)
    assert [f["type"] for f in replay] == [
        "started",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_done",
        "usage",
        "done",
    ]
    stored = done_of(replay)
    assert (stored["call_id"], stored["input"]) == (done_of(frames)["call_id"], {"query": "kraken"})
    assert replay[-1]["finish_reason"] == "tool_calls"
    await ws.disconnect()
