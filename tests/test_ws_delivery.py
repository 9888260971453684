"""A WebSocket sends each turn event once and in order, and never fails on a client that is gone.

Events reach a socket both from this process's fan-out (at once) and through the channel layer
(later). A socket that resumes mid-turn may have dropped the local copy of an event that was not
in the replay buffer yet when it read it; the next events then arrive locally before that one
comes through the layer. Found by the client-disconnect scenario (tests/reliability), as was a
send to a client that had just dropped its connection raising out of the consumer.
"""

import orjson
from uvicorn.protocols.utils import ClientDisconnected

from conversations.consumers import ChatConsumer


def consumer_sending_to(sent: list[dict]) -> ChatConsumer:
    consumer = ChatConsumer()
    consumer.following, consumer.finished, consumer.held = {}, {}, {}

    async def send(text_data=None, bytes_data=None, close=False):
        sent.append(orjson.loads(text_data))

    consumer.send = send
    return consumer


def event(seq: int, kind: str = "delta", message_id: str = "m-1") -> dict:
    return {"type": kind, "seq": seq, "message_id": message_id, "text": str(seq)}


async def test_an_event_that_overtakes_a_missing_one_waits_for_it():
    sent: list[dict] = []
    ws = consumer_sending_to(sent)
    await ws._send_event(event(6))  # the local copy, before the socket follows the turn: dropped
    ws.following["m-1"] = 4  # resume after 4; the buffer held 5 but not yet 6
    await ws._send_event(event(5))
    for late in (event(7), event(8, "completed")):  # the local copies of what follows: ahead of 6
        await ws._send_event(late)
    assert [f["seq"] for f in sent] == [5]
    await ws._send_event(event(6))  # 6 through the layer, then the layer's copies of 7 and 8
    await ws._send_event(event(7))
    await ws._send_event(event(8, "completed"))
    assert [f["seq"] for f in sent] == [5, 6, 7, 8]
    assert sent[-1]["type"] == "done"
    assert "m-1" not in ws.held and "m-1" in ws.finished


async def test_in_order_events_go_straight_out_and_duplicates_are_dropped():
    sent: list[dict] = []
    ws = consumer_sending_to(sent)
    for seq in (1, 1, 2, 3, 2, 4):
        await ws._send_event(event(seq))
    await ws._send_event(event(5, "completed"))
    await ws._send_event(event(5, "completed"))
    assert [f["seq"] for f in sent] == [1, 2, 3, 4, 5]
    assert ws.held == {}


async def test_a_stored_answer_after_the_buffer_expired_is_sent_as_it_is():
    sent: list[dict] = []
    ws = consumer_sending_to(sent)
    ws.following["m-1"] = 7
    for seq, kind in ((1, "started"), (2, "delta"), (3, "usage"), (4, "completed")):
        await ws._send_event({**event(seq, kind), "snapshot": True})
    assert [f["seq"] for f in sent] == [1, 2, 3, 4]


async def test_a_frame_for_a_client_that_is_gone_is_dropped_without_an_error():
    ws = ChatConsumer()
    ws.following, ws.finished, ws.held, ws.session_key = {}, {}, {}, "gone"

    async def base_send(message):
        raise ClientDisconnected()  # uvicorn, once the connection is lost (the disconnect is queued)

    ws.base_send = base_send
    await ws._send_event(event(1, "started"))  # from the local pump or a layer message: no exception
    await ws.send_json({"type": "pong"})
    assert ws.following == {"m-1": 1}
