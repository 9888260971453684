"""Z.AI (GLM) wire shapes for ``POST /api/paas/v4/chat/completions`` (as read by zai-sdk 0.2.3).

Stream: OpenAI-like ``data:`` chunks with ``role`` in every delta, one chunk per piece, then a last chunk
with ``finish_reason`` (``stop`` / ``length``), an empty content delta and ``usage`` (always sent, no
``stream_options`` needed), then ``data: [DONE]``. The usage has ``prompt_tokens_details.cached_tokens``
/ ``completion_tokens_details.reasoning_tokens`` only with a ``cached=`` / ``reasoning=`` directive.
Errors: ``{"error":{"code":"1302","message":...}}`` with the platform's string codes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from .exchange import Plan, Turn, Wire
from .openai_wire import chat_turn

ZAI_CODES = {400: "1210", 401: "1000", 429: "1302", 500: "500", 503: "1305"}


def zai_error(status: int, message: str) -> dict[str, Any]:
    """Z.AI error body: string ``code`` and ``message`` only."""
    return {"error": {"code": ZAI_CODES.get(status, str(status)), "message": message}}


class ZaiWire(Wire):
    """Z.AI chat completions, streaming and not."""

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        return chat_turn(body)

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return zai_error(status, message)

    @staticmethod
    def _usage(plan: Plan) -> dict[str, Any]:
        """Reasoning tokens count in ``completion_tokens``; each detail only with its directive."""
        output = plan.output_tokens + (plan.reasoning or 0)
        usage: dict[str, Any] = {"prompt_tokens": plan.input_tokens, "completion_tokens": output}
        if plan.cached is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens}
        if plan.reasoning is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": plan.reasoning}
        usage["total_tokens"] = plan.input_tokens + output
        return usage

    @staticmethod
    def _new_id() -> str:
        return time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:16]

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        base: dict[str, Any] = {
            "id": self._new_id(),
            "created": int(time.time()),
            "model": plan.turn.model,
            "choices": None,
        }

        def chunk(content: str) -> bytes:
            base["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": content}}]
            return b"data: " + orjson.dumps(base) + b"\n\n"

        events = [chunk(p) for p in plan.pieces]
        final = {
            **base,
            "choices": [
                {"index": 0, "finish_reason": plan.finish, "delta": {"role": "assistant", "content": ""}}
            ],
            "usage": self._usage(plan),
        }
        return [], events, [b"data: " + orjson.dumps(final) + b"\n\n", b"data: [DONE]\n\n"]

    def full_body(self, plan: Plan) -> dict[str, Any]:
        rid = self._new_id()
        return {
            "id": rid,
            "request_id": rid,
            "created": int(time.time()),
            "model": plan.turn.model,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": plan.finish,
                    "message": {"role": "assistant", "content": plan.text},
                }
            ],
            "usage": self._usage(plan),
        }
