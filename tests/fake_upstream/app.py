"""Raw-ASGI core of the fake upstream: routing, request recording and the HTTP control API.

Routes (everything else is a 404 JSON):

* ``POST /v1/chat/completions`` (OpenAI chat), ``POST /v1/responses``, ``GET /v1/responses/{id}``
* ``POST /{v1|v1beta}/models/{model}:streamGenerateContent`` and ``...:generateContent`` (Gemini)
* ``POST /api/paas/v4/chat/completions`` (Z.AI)
* ``POST /upload/{v1|v1beta}/files`` (start, then the upload URL it answers) and
  ``GET /{v1|v1beta}/files/{id}``: Gemini's Files API (:mod:`.gemini_files`)
* control, not recorded: ``POST /_control/reset``, ``POST /_control/faults``
  ``{"kind","times","model","retry_after"}``, ``POST /_control/defaults`` ``{"chunks","delay"}``,
  ``GET /_control/requests``, ``GET /_control/disconnects``, ``GET /_control/health``.

Every provider request is recorded as a :class:`RecordedRequest` before anything else happens.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson

from .exchange import Exchange, Wire, WireError, install_log_filter, serve_turn
from .gemini_files import GeminiFiles
from .gemini_wire import GeminiWire, gemini_error
from .openai_wire import OpenAIChatWire, OpenAIResponsesWire, openai_error
from .state import RecordedRequest, UpstreamState
from .zai_wire import ZaiWire

_GEMINI_METHODS = ("streamGenerateContent", "generateContent")


class FakeUpstreamApp:
    """The ASGI callable. One instance per server; all state lives in ``self.state``."""

    def __init__(self, state: UpstreamState | None = None) -> None:
        self.state = state or UpstreamState()
        self.chat = OpenAIChatWire()
        self.responses = OpenAIResponsesWire(self.state)
        self.gemini = GeminiWire(self.state)
        self.files = GeminiFiles(self.state)
        self.zai = ZaiWire()
        self.closing: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        install_log_filter()

    def begin_close(self) -> None:
        """End stalls and hangs now (call on the server loop, e.g. via ``call_soon_threadsafe``)."""
        if self.closing is not None:
            self.closing.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.closing is None:
            self.loop = asyncio.get_running_loop()
            self.closing = asyncio.Event()
        ex = Exchange(scope, receive, send, self.state)
        ex.closing = self.closing
        try:
            await self._handle(ex)
        finally:
            ex.stop_watch()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.loop = asyncio.get_running_loop()
                self.closing = asyncio.Event()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.begin_close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, ex: Exchange) -> None:
        raw = await ex.read_body()
        method: str = ex.scope["method"]
        path = ex.path
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if path.startswith("/_control/"):
            await self._control(ex, method, path[len("/_control/") :], body)
            return
        query = {k: v for k, v in parse_qsl(ex.scope.get("query_string", b"").decode("latin-1"))}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in ex.scope["headers"]}
        self.state.record_request(
            RecordedRequest(
                method, path, query, headers, body if isinstance(body, dict) else None, time.time()
            )
        )
        if ex.gone.is_set():
            return
        ex.start_watch()
        if self.files.handles(method, path):
            await self.files.serve(ex, method, path, query, headers, raw)
            return
        wire, params = self._route(method, path)
        if wire is None:
            await self._not_found(ex, method, path)
            return
        if wire is self.responses and method == "GET":
            found = self.responses.lookup(params["id"])
            if found is None:
                msg = f"Response with id '{params['id']}' not found."
                await ex.send_json(404, openai_error(404, msg, param="response_id"))
            else:
                await ex.send_json(200, found)
            return
        if not isinstance(body, dict):
            await ex.send_json(400, wire.error_body(400, "Request body must be a JSON object."))
            return
        try:
            turn = wire.parse(body, params)
        except WireError as err:
            await ex.send_json(err.status, err.body)
            return
        await serve_turn(
            ex, wire, turn, [(b"x-request-id", b"req_fake")] if wire is not self.gemini else None
        )

    def _route(self, method: str, path: str) -> tuple[Wire | None, dict[str, str]]:
        if method == "POST":
            if path == "/v1/chat/completions":
                return self.chat, {}
            if path == "/v1/responses":
                return self.responses, {}
            if path == "/api/paas/v4/chat/completions":
                return self.zai, {}
            version, sep, rest = path.lstrip("/").partition("/models/")
            if sep and version in ("v1", "v1beta") and ":" in rest:
                model, _, gmethod = rest.rpartition(":")
                if gmethod in _GEMINI_METHODS:
                    return self.gemini, {"model": model, "method": gmethod, "version": version}
        elif method == "GET" and path.startswith("/v1/responses/"):
            resp_id = path[len("/v1/responses/") :]
            if resp_id and "/" not in resp_id:
                return self.responses, {"id": resp_id}
        return None, {}

    async def _not_found(self, ex: Exchange, method: str, path: str) -> None:
        msg = f"Unknown route {method} {path}"
        body = gemini_error(404, msg) if "/models/" in path else openai_error(404, msg)
        await ex.send_json(404, body)

    async def _control(self, ex: Exchange, method: str, action: str, body: Any) -> None:
        st = self.state
        args = body if isinstance(body, dict) else {}
        try:
            if method == "POST" and action == "reset":
                st.reset()
                result: Any = {"ok": True}
            elif method == "POST" and action == "faults":
                st.push_fault(
                    args["kind"], int(args.get("times", 1)), args.get("model"), args.get("retry_after")
                )
                result = {"ok": True}
            elif method == "POST" and action == "defaults":
                st.set_defaults(args.get("chunks"), args.get("delay"))
                result = {"ok": True, "chunks": st.default_chunks, "delay": st.default_delay}
            elif method == "GET" and action == "requests":
                result = [r.to_dict() for r in st.snapshot_requests()]
            elif method == "GET" and action == "disconnects":
                result = [[p, t] for p, t in st.snapshot_disconnects()]
            elif method == "GET" and action == "health":
                result = {"ok": True}
            else:
                await ex.send_json(404, {"error": f"unknown control {method} {action}"})
                return
        except (KeyError, ValueError, TypeError) as err:
            await ex.send_json(400, {"error": f"bad control request: {err!r}"})
            return
        await ex.send_json(200, result)
