"""Scenario 3: Redis lost and back during streaming and rate limiting (a Redis of the test's own)."""

import json
import shutil
import signal
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from conversations.models import Message
from tests.fake_upstream import expected_reply
from tests.live_server import LiveServer, free_port
from tests.origins import page_origin
from tests.turn_client import SSEParser, sse_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


class OwnRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True
                ).stdout.strip()
                == b"PONG"
            ):
                return self
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_turns_survive_losing_redis_and_everything_recovers_when_it_returns(reliability_env, ledger):
    redis = OwnRedis().start()
    env = {
        **reliability_env,
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "RATE_LIMIT_TURNS": "1000/minute",
    }
    server = LiveServer(env, server="uvicorn").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            text = "through the outage [[chunks=20 delay=0.1]]"
            parser, events = SSEParser(), []
            with http.stream(
                "POST",
                "/api/sessions/outage/messages",
                json={"content": text},
                headers={"Accept": "text/event-stream"},
            ) as response:
                for chunk in response.iter_text():
                    events.extend(f.json() for f in parser.feed(chunk))
                    if sum(e["type"] == "delta" for e in events) == 3 and redis.proc.poll() is None:
                        redis.kill()
                        ledger.fault("redis_lost")
            ledger.add("turns_attempted")
            assert events[-1]["type"] == "completed"
            assert "".join(e["text"] for e in events if e["type"] == "delta") == expected_reply(text)

            # Redis down: turns still work (rate limiting fails open), health says what is wrong,
            # resuming a running turn fails clearly.
            _, during = sse_events(
                http, "/api/sessions/outage-2/messages", {"content": "still here [[chunks=2]]"}
            )
            ledger.add("turns_attempted")
            assert during[-1]["type"] == "completed"
            health = http.get("/health")
            assert health.status_code == 503 and health.json()["redis"] == "unavailable"
            ws_url = server.url.replace("http://", "ws://") + "/ws/chat/outage-2/"
            with ws_connect(ws_url, origin=page_origin(ws_url)) as ws:  # same-process fan-out still works
                assert json.loads(ws.recv(timeout=10))["code"] == "fanout_degraded"
                ws.send(json.dumps({"type": "message", "content": "over the socket [[chunks=3]]"}))
                frames = [json.loads(ws.recv(timeout=10)) for _ in range(6)]
            ledger.add("turns_attempted")
            assert [f["type"] for f in frames][-1] == "done"
            with http.stream(
                "POST",
                "/api/sessions/outage-3/messages",
                json={"content": "slow [[chunks=30 delay=0.1]]"},
                headers={"Accept": "text/event-stream"},
            ) as slow:
                chunks = slow.iter_text()
                first = SSEParser().feed(next(chunks))[0].json()
                resumed = http.get(f"/api/sessions/outage-3/messages/{first['message_id']}/stream")
                assert resumed.status_code == 503
                assert resumed.json()["error"]["code"] == "resume_unavailable"
                for _ in chunks:  # the slow turn still completes
                    pass
            ledger.add("turns_attempted")

            # Redis back on the same address: no restart of the server needed.
            redis = OwnRedis.__new__(OwnRedis)
            redis.port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
            redis.start()
            deadline = time.monotonic() + 20
            while http.get("/health").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert http.get("/health").status_code == 200
            _, after = sse_events(http, "/api/sessions/outage-4/messages", {"content": "back [[chunks=3]]"})
            ledger.add("turns_attempted")
            assert after[-1]["type"] == "completed"
            replay = http.get(
                f"/api/sessions/outage-4/messages/{after[0]['message_id']}/stream",
                headers={"Last-Event-ID": "1"},
            )
            assert replay.status_code == 200
            assert "event: completed" in replay.text
        persisted = Message.objects.filter(
            role="user", conversation__session_key__startswith="outage"
        ).count()
        ledger.add("turns_persisted", persisted)
        assert persisted == 5
        assert not Message.objects.filter(status="streaming").exists()
    finally:
        server.stop()
        if redis.proc is not None and redis.proc.poll() is None:
            redis.kill()
