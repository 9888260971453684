"""Gemini Developer API wire shapes (as read by google-genai 3.6).

``POST /{v1|v1beta}/models/{model}:streamGenerateContent?alt=sse`` streams ``data: {...}\\r\\n\\r\\n``
events, camelCase, one per piece; every chunk has ``responseId``, ``modelVersion`` and a
``usageMetadata`` with ``promptTokenCount``/``totalTokenCount``; only the last chunk carries
``finishReason`` (``STOP`` / ``MAX_TOKENS``) and ``candidatesTokenCount``. ``:generateContent`` returns
the whole candidate. ``cachedContentTokenCount`` and ``thoughtsTokenCount`` appear with a ``cached=``/
``reasoning=`` directive. Errors: ``{"error":{"code","message","status","details"}}``.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson

from .exchange import Plan, Turn, Wire
from .scenario import DEFAULT_RETRY_AFTER, count_words

GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def gemini_error(status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
    """Google RPC error body; a 429 carries a ``RetryInfo`` detail like the real API."""
    details: list[dict[str, Any]] = []
    if status == 429:
        delay = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"})
    return {
        "error": {
            "code": status,
            "message": message,
            "status": GEMINI_STATUS.get(status, "UNKNOWN"),
            "details": details,
        }
    }


def _parts_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))


class GeminiWire(Wire):
    """Both Gemini content endpoints; ``path_params`` holds ``model`` and ``method``."""

    stream_content_type = b"text/event-stream"

    def parse(self, body: dict[str, Any], path_params: dict[str, str]) -> Turn:
        contents = body.get("contents") or []
        system = body.get("systemInstruction") or body.get("system_instruction")
        config = body.get("generationConfig") or body.get("generation_config") or {}
        user = next(
            (
                _parts_text(c)
                for c in reversed(contents)
                if isinstance(c, dict) and c.get("role", "user") == "user" and _parts_text(c)
            ),
            "",
        )
        max_tokens = config.get("maxOutputTokens")
        return Turn(
            model=path_params["model"],
            user_text=user,
            input_words=count_words(_parts_text(system), *(_parts_text(c) for c in contents)),
            stream=path_params["method"] == "streamGenerateContent",
            json_mode=config.get("responseMimeType") == "application/json",
            max_tokens=int(max_tokens) if max_tokens else None,
        )

    def error_body(self, status: int, message: str, retry_after: float | None = None) -> dict[str, Any]:
        return gemini_error(status, message, retry_after)

    @staticmethod
    def _usage(plan: Plan, final: bool) -> dict[str, Any]:
        """Thinking comes before the answer, so every chunk has the thoughts count; a count of 0 is
        left out (proto3 JSON), and ``candidatesTokenCount`` excludes thoughts, ``totalTokenCount``
        includes them."""
        thoughts = plan.reasoning or 0
        usage: dict[str, Any] = {"promptTokenCount": plan.input_tokens}
        if final:
            usage["candidatesTokenCount"] = plan.output_tokens
        usage["totalTokenCount"] = plan.input_tokens + thoughts + (plan.output_tokens if final else 0)
        if plan.cached_tokens:
            usage["cachedContentTokenCount"] = plan.cached_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.input_tokens}]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    @staticmethod
    def _finish(plan: Plan) -> str:
        return "STOP" if plan.finish == "stop" else "MAX_TOKENS"

    @staticmethod
    def _response_id() -> str:
        return base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("=")

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        rid = self._response_id()
        model = plan.turn.model
        mid_usage = self._usage(plan, final=False)
        events: list[bytes] = []
        last = len(plan.pieces) - 1
        for i, piece in enumerate(plan.pieces):
            cand: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
            usage = mid_usage
            if i == last:
                cand["finishReason"] = self._finish(plan)
                usage = self._usage(plan, final=True)
            obj = {"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": rid}
            events.append(b"data: " + orjson.dumps(obj) + b"\r\n\r\n")
        return [], events, []

    def full_body(self, plan: Plan) -> dict[str, Any]:
        cand = {
            "content": {"parts": [{"text": plan.text}], "role": "model"},
            "finishReason": self._finish(plan),
            "index": 0,
        }
        return {
            "candidates": [cand],
            "usageMetadata": self._usage(plan, final=True),
            "modelVersion": plan.turn.model,
            "responseId": self._response_id(),
        }
