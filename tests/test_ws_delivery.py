"""A WebSocket sends each turn event once and in order, and never fails on a client that is gone;
its frames are read and rate-limited by small parts that need no socket (conversations/sockets/frames.py).

Events reach a socket both from this process's fan-out (at once) and through the channel layer
(later). A socket that resumes mid-turn may have dropped the local copy of an event that was not
in the replay buffer yet when it read it; the next events then arrive locally before that one
comes through the layer. Found by the client-disconnect scenario (tests/reliability), as was a
send to a client that had just dropped its connection raising out of the consumer.
"""

import asyncio

import orjson
from uvicorn.protocols.utils import ClientDisconnected

from conversations.sockets.chat import ChatConsumer
from conversations.sockets.frames import FrameRate, TurnOrder, read_frame


def event(seq: int, kind: str = "delta", message_id: str = "m-1") -> dict:
    return {"type": kind, "seq": seq, "message_id": message_id, "text": str(seq)}


def sending(order: TurnOrder, sent: list[dict]):
    return lambda e: sent.extend(order.arrived(e))


def test_an_event_that_overtakes_a_missing_one_waits_for_it():
    order, sent = TurnOrder(), []
    send = sending(order, sent)
    send(event(6))  # the local copy, before the socket follows the turn: dropped
    order.follow("m-1", 4)  # resume after 4; the buffer held 5 but not yet 6
    send(event(5))
    for late in (event(7), event(8, "completed")):  # the local copies of what follows: ahead of 6
        send(late)
    assert [f["seq"] for f in sent] == [5]
    send(event(6))  # 6 through the layer, then the layer's copies of 7 and 8
    send(event(7))
    send(event(8, "completed"))
    assert [f["seq"] for f in sent] == [5, 6, 7, 8]
    assert "m-1" not in order.held and "m-1" in order.finished


def test_in_order_events_go_straight_out_and_duplicates_are_dropped():
    order, sent = TurnOrder(), []
    send = sending(order, sent)
    for seq in (1, 1, 2, 3, 2, 4):
        send(event(seq))
    send(event(5, "completed"))
    send(event(5, "completed"))
    assert [f["seq"] for f in sent] == [1, 2, 3, 4, 5]
    assert order.held == {}


def test_a_stored_answer_after_the_buffer_expired_is_sent_as_it_is():
    order, sent = TurnOrder(), []
    order.follow("m-1", 7)
    for seq, kind in ((1, "started"), (2, "delta"), (3, "usage"), (4, "completed")):
        sending(order, sent)({**event(seq, kind), "snapshot": True})
    assert [f["seq"] for f in sent] == [1, 2, 3, 4]


def test_a_turn_asked_for_again_after_its_end_is_sent_again_and_old_ends_are_forgotten():
    order, sent = TurnOrder(remember=2), []
    send = sending(order, sent)
    for message_id in ("a", "b", "c"):
        send(event(1, "completed", message_id))
    assert list(order.finished) == ["b", "c"]
    order.follow("c", 0)
    send(event(1, "completed", "c"))
    assert [(f["message_id"], f["seq"]) for f in sent] == [("a", 1), ("b", 1), ("c", 1), ("c", 1)]


def consumer_sending_to(sent: list[dict], delay: float = 0.0) -> ChatConsumer:
    consumer = ChatConsumer()
    consumer.order, consumer._sending = TurnOrder(), asyncio.Lock()

    async def send(text_data=None, bytes_data=None, close=False):
        await asyncio.sleep(delay)  # a slow client: other tasks run meanwhile
        sent.append(orjson.loads(text_data))

    consumer.send = send
    return consumer


async def test_events_from_two_tasks_go_out_in_order_and_the_end_as_done():
    sent: list[dict] = []
    ws = consumer_sending_to(sent, delay=0.01)
    ws.order.follow("m-1", 1)
    await ws._send_event(event(3))  # held until 2 comes
    # the layer brings 2 while this process's pump brings 4: 4 must wait for 3 behind 2
    await asyncio.gather(ws._send_event(event(2)), ws._send_event(event(4, "completed")))
    assert [f["seq"] for f in sent] == [2, 3, 4]
    assert sent[-1]["type"] == "done"


async def test_a_frame_for_a_client_that_is_gone_is_dropped_without_an_error():
    ws = ChatConsumer()
    ws.order, ws._sending, ws.session_key = TurnOrder(), asyncio.Lock(), "gone"

    async def base_send(message):
        raise ClientDisconnected()  # uvicorn, once the connection is lost (the disconnect is queued)

    ws.base_send = base_send
    await ws._send_event(event(1, "started"))  # from the local pump or a layer message: no exception
    await ws.send_json({"type": "pong"})
    assert ws.order.following == {"m-1": 1}


def test_client_frames_are_read_or_refused_with_a_reason():
    assert read_frame('{"type": "ping"}', 100) == ({"type": "ping"}, None)
    assert read_frame(None, 100)[1]["code"] == "bad_frame"
    assert read_frame('{"type": "ping", "pad": "' + "x" * 100 + '"}', 100)[1]["code"] == "frame_too_large"
    assert read_frame("{nope", 100)[1]["code"] == "bad_frame"
    assert read_frame("[1]", 100)[1]["code"] == "bad_frame"
    unknown = read_frame('{"type": "shout"}', 100)[1]
    assert (unknown["code"], unknown["got"]) == ("unknown_type", "shout")


def test_the_frame_rate_allows_bursts_refuses_floods_and_recovers():
    rate = FrameRate(10)
    assert all(rate.allow(0.0) for _ in range(20))  # a burst of twice the rate
    assert not rate.allow(0.0)
    assert rate.should_warn() and rate.strikes == 1
    assert rate.allow(0.1)  # a tenth of a second later: one more token
    for _ in range(50):
        rate.allow(0.1)
    assert rate.should_close()
