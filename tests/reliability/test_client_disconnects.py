"""Scenario 2: clients disconnect at random points over SSE, NDJSON and WebSocket, then resume.

28 turns run at once against a live server, with multi-chunk, slightly slow replies. Each
client cuts its connection after a random number of events, from none (right after the response
headers) to all of them, then:

* WebSocket: reconnects within ``WS_DETACH_GRACE_SECONDS`` and sends ``resume`` with the last seq
  it saw (or, having seen nothing, repeats its ``client_message_id`` and resumes the turn it is
  told about): the events before and after the cut are seq 1..n with no gap and no duplicate,
  exactly one terminal event, the expected text; the answer is stored ``complete``.
* SSE / NDJSON alone (``HTTP_DETACH_GRACE_SECONDS`` = 0): the turn is cancelled and stored
  ``interrupted`` (code ``disconnected``) with a prefix of the reply that holds at least what the
  client saw; never left ``streaming``; the user's message is stored.
* SSE while a WebSocket of the session keeps the turn alive (a browser tab): the SSE client
  resumes with ``Last-Event-ID`` on the resume endpoint, may be cut again and resumes again; no
  gap, no duplicate, the turn ends ``complete``, and the tab saw the same events.
* 12 more HTTP requests are dropped before any response, 0 to 40 ms after they were sent (while
  their turn is being opened): nothing stored, or the user's message and an ``interrupted``
  answer; never an answer left ``streaming`` (which would block the session).

Nothing may end in a 5xx or an ERROR line in the server's log, and ``/health`` stays 200.

The plan comes from a seeded ``random.Random``: the seed is printed, and ``RELIABILITY_SEED=<n>``
replays the same plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from conversations.models import Message
from tests.factories import make_conversation
from tests.fake_upstream import expected_reply
from tests.origins import page_origin
from tests.reliability.conftest import SOAK
from tests.turn_client import SSEParser

pytestmark = pytest.mark.django_db(transaction=True)

TRANSPORTS = ("sse", "ndjson", "ws", "sse_resume")
FAULTS = {
    "sse": "client_disconnect_sse",
    "ndjson": "client_disconnect_ndjson",
    "ws": "client_disconnect_ws",
    "sse_resume": "client_disconnect_sse_resumed",
}
RECV_TIMEOUT = 15.0
TERMINAL = {"completed", "failed", "done", "error"}
NOTICED_WITHIN = 0.1  # seconds: a server notices a client that went away within this (under the
# soak's load, plus its own delay at the time, as probed: noticed_within)
PROBE_INTERVAL = 0.1


@dataclass
class Plan:
    index: int
    transport: str
    chunks: int
    delay: float
    cut: int  # events read before the cut; -1: the connection is dropped before the response
    abort_after: float = 0.0  # cut == -1: seconds between sending the request and dropping it
    start_after: float = 0.0
    drop_tcp: bool = False  # WebSocket: drop the TCP connection instead of closing the socket
    reconnect_after: float = 0.0
    second_cut: int | None = None  # sse_resume: the first resumed stream is cut again after this many

    @property
    def key(self) -> str:
        return f"disc-{self.index}"

    @property
    def content(self) -> str:
        return f"cut me {self.index} [[chunks={self.chunks} delay={self.delay}]]"

    @property
    def total(self) -> int:  # started, one delta per chunk, usage, terminal (no code fences)
        return self.chunks + 3


@dataclass
class Outcome:
    plan: Plan
    before: list[dict] = field(default_factory=list)  # events received before the (first) cut
    after: list[dict] = field(default_factory=list)  # events received after reconnecting
    keeper: list[dict] = field(default_factory=list)  # sse_resume: what the session's tab saw
    statuses: list[int] = field(default_factory=list)
    hops: int = 0  # resumes made
    cut_at: float | None = None  # HTTP: when the client closed its connection (Unix time)

    @property
    def events(self) -> list[dict]:
        return self.before + self.after


def make_plan(rng: random.Random, streams: int, aborts: int) -> list[Plan]:
    """``streams`` turns cut after 0..all of their events, then ``aborts`` HTTP requests sent while
    those run and dropped 0 to 40 ms later (before any response: while the turn is being opened)."""
    plans = []
    for index in range(streams + aborts):
        transport = TRANSPORTS[index % len(TRANSPORTS)]
        chunks = rng.randint(6, 10)
        plan = Plan(index, transport, chunks, rng.choice((0.15, 0.2)), rng.randint(0, chunks + 3))
        plan.drop_tcp = rng.random() < 0.5
        plan.reconnect_after = rng.choice((0.0, 0.05, 0.2, 0.5))
        if transport == "sse_resume":
            plan.second_cut = rng.choice((None, rng.randint(0, 3)))
        if index >= streams:
            plan.transport = ("sse", "ndjson")[index % 2]
            plan.cut, plan.abort_after = -1, round(rng.uniform(0, 0.04), 4)
            plan.start_after = round(rng.uniform(0.3, 2.5), 2)  # while the streams run
        plans.append(plan)
    return plans


# --- HTTP -----------------------------------------------------------------------------------------
def parse_chunk(fmt: str, parser: SSEParser, buffer: list[str], text: str) -> list[dict]:
    if fmt == "ndjson":
        buffer[0] += text
        *lines, buffer[0] = buffer[0].split("\n")
        return [json.loads(line) for line in lines if line]
    frames = parser.feed(text)
    for frame in frames:
        assert frame.id is not None and int(frame.id) == frame.json()["seq"], frame
        assert frame.event == frame.json()["type"], frame
    return [frame.json() for frame in frames]


async def read_stream(response: httpx.Response, fmt: str, limit: int | None) -> list[dict]:
    """Up to ``limit`` events of a streamed response (all of them when None); the rest is dropped."""
    parser, buffer, events = SSEParser(), [""], []
    if limit == 0:
        return events
    try:
        async for text in response.aiter_text():
            events.extend(parse_chunk(fmt, parser, buffer, text))
            if limit is not None and len(events) >= limit:
                return events[:limit]
    except httpx.ReadTimeout:
        raise AssertionError(f"the stream stalled after {[(e['seq'], e['type']) for e in events]}") from None
    return events


async def abort_before_response(base_url: str, plan: Plan, accept: str) -> None:
    """Send the whole request, then drop the TCP connection before any response byte is read."""
    url = urlsplit(base_url)
    body = json.dumps({"content": plan.content, "client_message_id": f"c-{plan.index}"}).encode()
    head = (
        f"POST /api/sessions/{plan.key}/messages HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    _, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(plan.abort_after)
    writer.transport.abort()


async def http_turn(client: httpx.AsyncClient, plan: Plan) -> Outcome:
    outcome = Outcome(plan)
    accept = "text/event-stream" if plan.transport == "sse" else "application/x-ndjson"
    if plan.cut < 0:
        await asyncio.sleep(plan.start_after)
        await abort_before_response(str(client.base_url), plan, accept)
        return outcome
    async with client.stream(
        "POST",
        f"/api/sessions/{plan.key}/messages",
        json={"content": plan.content, "client_message_id": f"c-{plan.index}"},
        headers={"Accept": accept},
    ) as response:
        outcome.statuses.append(response.status_code)
        if response.status_code == 200:
            outcome.before = await read_stream(response, plan.transport, plan.cut)
    outcome.cut_at = time.time()  # leaving the block before the end closed the connection
    return outcome


async def sse_resume_turn(client: httpx.AsyncClient, ws_base: str, plan: Plan) -> Outcome:
    """An SSE client cut off while a tab (a WebSocket of the session) keeps the turn running."""
    outcome = Outcome(plan)
    async with ws_connect(f"{ws_base}/ws/chat/{plan.key}/", origin=page_origin(ws_base)) as tab:
        await tab.send(json.dumps({"type": "ping"}))  # answered once the tab is registered as a listener
        assert json.loads(await asyncio.wait_for(tab.recv(), RECV_TIMEOUT)) == {"type": "pong"}
        keeper = asyncio.create_task(frames_until_terminal(tab))
        body = {"content": plan.content, "client_message_id": f"c-{plan.index}"}
        async with client.stream(
            "POST", f"/api/sessions/{plan.key}/messages", json=body, headers={"Accept": "text/event-stream"}
        ) as response:
            outcome.statuses.append(response.status_code)
            outcome.before = await read_stream(response, "sse", plan.cut)
        await asyncio.sleep(plan.reconnect_after)
        limit = plan.second_cut
        while not outcome.events or outcome.events[-1]["type"] not in TERMINAL:
            if outcome.events:
                message_id = outcome.events[0]["message_id"]
            else:  # cut before the first event: the same client_message_id names the turn
                async with client.stream(
                    "POST",
                    f"/api/sessions/{plan.key}/messages",
                    json=body,
                    headers={"Accept": "text/event-stream"},
                ) as again:
                    outcome.statuses.append(again.status_code)
                    if again.status_code == 200:  # already over: the stored turn is replayed
                        outcome.after = await read_stream(again, "sse", None)
                        break
                    await again.aread()
                assert again.status_code == 409, again.text
                message_id = again.json()["error"]["message_id"]
            last = outcome.events[-1]["seq"] if outcome.events else 0
            async with client.stream(
                "GET",
                f"/api/sessions/{plan.key}/messages/{message_id}/stream",
                headers={"Last-Event-ID": str(last)},
            ) as resumed:
                outcome.statuses.append(resumed.status_code)
                outcome.hops += 1
                outcome.after += await read_stream(resumed, "sse", limit)
            limit = None
        outcome.keeper = await asyncio.wait_for(keeper, RECV_TIMEOUT)
    return outcome


# --- WebSocket ------------------------------------------------------------------------------------
async def frames_until_terminal(ws, limit: int | None = None) -> list[dict]:
    frames: list[dict] = []
    while limit is None or len(frames) < limit:
        frame = json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))
        assert "seq" in frame, frame  # no error frame expected here
        frames.append(frame)
        if frame["type"] in TERMINAL:
            break
    return frames


async def ws_turn(ws_base: str, plan: Plan) -> Outcome:
    outcome = Outcome(plan)
    url = f"{ws_base}/ws/chat/{plan.key}/"
    message = {"type": "message", "content": plan.content, "client_message_id": f"c-{plan.index}"}
    ws = await ws_connect(url, origin=page_origin(url))
    await ws.send(json.dumps(message))
    if plan.cut:
        outcome.before = await frames_until_terminal(ws, plan.cut)
    if plan.drop_tcp and plan.cut:  # (a message still in the send buffer would be dropped too)
        ws.transport.abort()
    else:
        await ws.close()
    await asyncio.sleep(plan.reconnect_after)
    async with ws_connect(url, origin=page_origin(url)) as again:
        outcome.hops += 1
        if outcome.before:
            last = outcome.before[-1]
            await again.send(
                json.dumps({"type": "resume", "message_id": last["message_id"], "after_seq": last["seq"]})
            )
            if last["type"] in TERMINAL:  # nothing is missing: nothing may come but the pong
                await again.send(json.dumps({"type": "ping"}))
                frame = json.loads(await asyncio.wait_for(again.recv(), RECV_TIMEOUT))
                assert frame == {"type": "pong"}, (plan, frame)
                return outcome
        else:  # saw nothing: ask again with the same client_message_id
            await again.send(json.dumps(message))
        while not outcome.after or outcome.after[-1]["type"] not in TERMINAL:
            frame = json.loads(await asyncio.wait_for(again.recv(), RECV_TIMEOUT))
            if frame["type"] == "error" and "seq" not in frame:
                assert frame["code"] == "turn_in_progress", (plan, frame)
                resume = {"type": "resume", "message_id": frame["message_id"], "after_seq": 0}
                await again.send(json.dumps(resume))
                continue
            outcome.after.append(frame)
    return outcome


# --- the load ---------------------------------------------------------------------------------------
async def run_load(base_url: str, plans: list[Plan], probes: list[tuple[float, float]]) -> list[Outcome]:
    ws_base = base_url.replace("http://", "ws://")
    limits = httpx.Limits(max_connections=len(plans) * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=RECV_TIMEOUT, limits=limits) as client:

        async def one(plan: Plan) -> Outcome:
            try:
                if plan.transport == "ws":
                    return await ws_turn(ws_base, plan)
                if plan.transport == "sse_resume":
                    return await sse_resume_turn(client, ws_base, plan)
                return await http_turn(client, plan)
            except Exception as exc:
                raise AssertionError(f"{plan}: {exc!r}") from exc

        probe = asyncio.create_task(probe_server_delay(client, probes))
        try:
            return await asyncio.gather(*(one(plan) for plan in plans))
        finally:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)


async def probe_server_delay(client: httpx.AsyncClient, probes: list[tuple[float, float]]) -> None:
    """How late the server answers right now: ``(sent at, seconds)`` of a ``GET /health`` every
    PROBE_INTERVAL. Under a load that saturates the machine, the server's loop (and so its noticing
    a client that left) runs late by about this much."""
    while True:
        sent = time.time()
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/health")
        probes.append((sent, time.time() - sent))
        await asyncio.sleep(PROBE_INTERVAL)


def noticed_within(probes: list[tuple[float, float]], cut_at: float) -> float:
    """NOTICED_WITHIN; under the soak's load (RELIABILITY_SOAK > 1, which saturates the machine)
    plus the server's own delay around the cut: the slowest probe sent from just before the cut
    until the answer could have ended."""
    if SOAK <= 1:
        return NOTICED_WITHIN
    around = [delay for sent, delay in probes if cut_at - 1.0 <= sent <= cut_at + 2.0]
    return NOTICED_WITHIN + max(around, default=0.0)


def stored_form(events: list[dict]) -> bool:
    """A replayed turn (its ``client_message_id`` sent again after it ended): the stored answer in one delta."""
    return [e["type"] for e in events][:3] == ["started", "delta", "usage"] and len(events) == 4


def assert_whole_turn(
    events: list[dict], plan: Plan, terminal: str, context: object, *, replay_allowed: bool = False
) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), ("gap or duplicate", seqs, context)
    assert len(events) == plan.total or (replay_allowed and stored_form(events)), (seqs, context)
    assert [e["type"] in TERMINAL for e in events].count(True) == 1, context
    assert events[-1]["type"] == terminal, context
    assert len({e["message_id"] for e in events}) == 1, context
    assert "".join(e["text"] for e in events if e["type"] == "delta") == expected_reply(plan.content), context


def settled_answers(keys: list[str], timeout: float = 10.0) -> dict[str, list[Message]]:
    """The answers of each session once none is ``streaming`` any more (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        answers: dict[str, list[Message]] = {key: [] for key in keys}
        for message in Message.objects.filter(
            role="assistant", conversation__session_key__in=keys
        ).select_related("parent", "conversation"):
            answers[message.conversation.session_key].append(message)
        busy = any(m.status == Message.Status.STREAMING for ms in answers.values() for m in ms)
        if not busy or time.monotonic() > deadline:
            return answers
        time.sleep(0.1)


def server_errors(log: str) -> list[str]:
    errors = []
    for line in log.splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            level = "ERROR" if "Traceback" in line or line.startswith("ERROR") else None
        if level in ("ERROR", "CRITICAL"):
            errors.append(line)
    return errors


def test_clients_cut_off_at_random_points_resume_without_gaps_and_cancelled_turns_keep_their_text(
    live, ledger
):
    seed = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2**32))
    print(f"client disconnect scenario: RELIABILITY_SEED={seed}")
    plans = make_plan(random.Random(seed), 28 * SOAK, 12 * SOAK)
    for plan in plans:
        if plan.transport in ("ws", "sse_resume"):
            make_conversation(owner=None, session_key=plan.key)  # a socket joins an existing session

    started = time.monotonic()
    probes: list[tuple[float, float]] = []
    outcomes = asyncio.run(run_load(live.url, plans, probes))
    delays = sorted(delay for _, delay in probes)
    if delays:
        print(
            f"server delay under this load (GET /health): p50 {delays[len(delays) // 2]:.3f} s, max {delays[-1]:.3f} s"
        )
    elapsed = time.monotonic() - started
    answers = settled_answers([plan.key for plan in plans])

    ledger.add("turns_attempted", len(plans))
    persisted = lost = abandoned = 0
    for outcome in outcomes:
        plan = outcome.plan
        context = {
            "seed": seed,
            "plan": plan,
            "before": [(e["seq"], e["type"]) for e in outcome.before],
            "after": [(e["seq"], e["type"]) for e in outcome.after],
        }
        ledger.add("server_5xx", sum(status >= 500 for status in outcome.statuses))
        assert all(status in (200, 409) for status in outcome.statuses), context
        ledger.fault("client_abort_before_response" if plan.cut < 0 else FAULTS[plan.transport])
        stored = answers[plan.key]
        user_stored = Message.objects.filter(
            role="user", conversation__session_key=plan.key, content=plan.content
        ).count()
        acknowledged = plan.cut >= 0  # a 200 with the stream's headers, or the socket's turn frames
        persisted += user_stored == 1
        lost += acknowledged and user_stored == 0
        assert user_stored <= 1, context
        assert len(stored) <= 1, (context, stored)
        # (left streaming: nobody runs it, and the session answers 409 until the orphan sweep)
        assert all(m.status != Message.Status.STREAMING for m in stored), ("left streaming", context)
        if plan.cut < 0 and not stored:
            abandoned += 1
            continue  # dropped before the server acknowledged anything: nothing stored, nothing owed
        assert user_stored == 1 and len(stored) == 1, (context, stored)
        answer = stored[0]
        assert answer.parent is not None and answer.parent.content == plan.content, context
        reply = expected_reply(plan.content)

        if plan.transport in ("sse", "ndjson"):
            seen = outcome.before
            assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1)), context
            seen_text = "".join(e["text"] for e in seen if e["type"] == "delta")
            assert answer.content.startswith(seen_text), (context, answer.content)
            if seen and seen[-1]["type"] in TERMINAL:
                assert seen[-1]["type"] == "completed", context
                assert (answer.status, answer.content) == ("complete", reply), context
            elif answer.status == Message.Status.COMPLETE and (
                len(seen) >= plan.chunks
                or answer.completed_at.timestamp() <= outcome.cut_at + noticed_within(probes, outcome.cut_at)
            ):
                # Cut less than one chunk interval before the end (the server notices a disconnect
                # within tens of milliseconds), or the answer was complete before the client went
                # away and only read late (a client on a loaded machine): it may complete.
                assert answer.content == reply, context
            else:
                ended_after_cut = answer.completed_at.timestamp() - outcome.cut_at if outcome.cut_at else None
                assert (answer.status, answer.error_code) == ("interrupted", "disconnected"), (
                    context,
                    answer.status,
                    ended_after_cut,
                    noticed_within(probes, outcome.cut_at) if outcome.cut_at else None,
                )
                assert reply.startswith(answer.content), (context, answer.content)
        elif plan.transport == "ws":
            assert_whole_turn(outcome.events, plan, "done", context, replay_allowed=not outcome.before)
            assert (answer.status, answer.content) == ("complete", reply), context
        else:
            assert_whole_turn(outcome.events, plan, "completed", context, replay_allowed=not outcome.before)
            assert_whole_turn(outcome.keeper, plan, "done", context)  # the tab saw it live, whole
            assert (answer.status, answer.content) == ("complete", reply), context
        if outcome.events:
            assert outcome.events[0]["message_id"] == str(answer.pk), context
    ledger.add("turns_persisted", persisted)
    ledger.add("turns_abandoned", abandoned)
    ledger.add("turns_lost", lost)
    assert lost == 0
    assert not Message.objects.filter(status=Message.Status.STREAMING).exists()
    assert not server_errors(live.output()), server_errors(live.output())
    assert httpx.get(live.url + "/health", timeout=10).status_code == 200
    aborts = sum(plan.cut < 0 for plan in plans)
    print(
        f"{len(plans)} turns, {sum(o.hops for o in outcomes)} resumes, {aborts - abandoned} of {aborts}"
        f" dropped requests stored, load took {elapsed:.1f}s"
    )
