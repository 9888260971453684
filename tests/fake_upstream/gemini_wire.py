"""Gemini Developer API wire shapes (as read by google-genai 3.6).

``POST /{v1|v1beta}/models/{model}:streamGenerateContent?alt=sse`` streams ``data: {...}\\r\\n\\r\\n``
events, camelCase, one per piece; every chunk has ``responseId``, ``modelVersion`` and a
``usageMetadata`` with ``promptTokenCount``/``totalTokenCount``; only the last chunk carries
``finishReason`` (``STOP`` / ``MAX_TOKENS``) and ``candidatesTokenCount``. ``:generateContent`` returns
the whole candidate. ``cachedContentTokenCount`` and ``thoughtsTokenCount`` appear with a ``cached=``/
``reasoning=`` directive. Errors: ``{"error":{"code","message","status","details"}}``.

Tool calls (when to call which tool: :mod:`.scenario`), as Gemini sends them: the declarations of
``tools[].functionDeclarations`` (``parameters`` with upper-case types and snake_case keys, as
google-genai writes them, or ``parametersJsonSchema``) are the offered tools; ``toolConfig``'s
``functionCallingConfig`` mode ``NONE`` is ``tool_choice: "none"``, ``ANY`` with
``allowedFunctionNames`` names the first. The calls come whole in ONE chunk, one ``functionCall``
part each (``args`` an object, the arguments of :func:`~.scenario.tool_arguments`); the first part
carries a ``thoughtSignature`` (:func:`thought_signature`), the others none, as Gemini 3 sends
parallel calls; no ``id`` unless the directive ``call_ids=1`` asks for one (``call_<i>_<8 hex>``).
A last chunk ``{"text": ""}`` with ``finishReason: "STOP"`` and the usage ends it (Gemini has no
tool-call finish reason). ``text_first=1`` sends the echo text before. ``drop:N`` counts the calls'
chunk as one. Non-streamed: the text, then the call parts, ``STOP``.

What it checks in a request, as Gemini does (a 400 ``INVALID_ARGUMENT`` otherwise):

* a declaration's ``parameters`` use only the keys of Gemini's ``Schema`` (``additionalProperties``,
  ``$ref``, ``const``… are ``Unknown name "…" … Cannot find field``);
* for a Gemini 3 model (a name starting ``gemini-3``), the first ``functionCall`` part of every
  ``model`` content carries a ``thoughtSignature``: one this fake issued (read in either base64
  alphabet: the SDK sends bytes URL-safe) or Google's documented placeholders
  ``skip_thought_signature_validator`` / ``context_engineering_is_the_way_to_go``; else
  ``Function call is missing a thought_signature…`` or ``Thought signature is not valid``;
* every ``functionResponse`` has a ``name``, and a ``user`` content of responses answers each call of
  the ``model`` content before it (as many parts).

Images and files: ``inlineData`` (base64, either alphabet) and ``fileData`` parts (a Files API
upload's URI, or an http(s) URL) are checked and read by :mod:`.gemini_files`, listed before the
reply (:mod:`.attachments`), and counted in ``promptTokensDetails`` as IMAGE or DOCUMENT tokens.

A request whose last content holds ``functionResponse`` parts is answered with the text
:func:`~.scenario.expected_tool_reply` of their ``response.output`` (or ``response.error``), in order.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import zlib
from typing import Any

import orjson

from .attachments import ATTACHMENT_TOKENS
from .exchange import Plan, Turn, Wire, WireError
from .gemini_errors import GEMINI_STATUS, gemini_error
from .gemini_files import gemini_received
from .scenario import PlannedCall, count_words, parse_directives
from .state import UpstreamState

__all__ = ["GEMINI_STATUS", "GeminiWire", "gemini_error", "thought_signature"]

#: The bytes every signature this fake issues starts with ("+//+" in standard base64, so the SDK's
#: URL-safe re-encoding differs on the way back).
_SIGNATURE_PREFIX = b"\xfb\xff\xfefake-thought-signature/"
#: Google's documented placeholders for a call whose signature is unknown.
SIGNATURE_PLACEHOLDERS = frozenset(
    {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
)
#: The keys of Gemini's ``Schema`` (camelCase and the SDK's snake_case).
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "properties",
        "required",
        "anyOf",
        "any_of",
        "minimum",
        "maximum",
        "minItems",
        "min_items",
        "maxItems",
        "max_items",
        "minLength",
        "min_length",
        "maxLength",
        "max_length",
        "minProperties",
        "min_properties",
        "maxProperties",
        "max_properties",
        "pattern",
        "default",
        "example",
        "propertyOrdering",
        "property_ordering",
    }
)


def thought_signature(index: int, user_text: str) -> str:
    """The ``thoughtSignature`` (standard base64, as on the wire) of call ``index`` for a raw user
    text: deterministic, so a test can expect it."""
    raw = _SIGNATURE_PREFIX + f"{index}/{zlib.crc32(user_text.encode('utf-8', 'surrogatepass')):08x}".encode()
    return base64.b64encode(raw).decode("ascii")


def _issued(signature: Any) -> bool:
    """A signature this fake issued (either base64 alphabet), or a documented placeholder."""
    if not isinstance(signature, str):
        return False
    if signature in SIGNATURE_PLACEHOLDERS:
        return True
    try:
        raw = base64.b64decode(signature.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(_SIGNATURE_PREFIX)


def _invalid(message: str) -> WireError:
    return WireError(400, gemini_error(400, message))


def _part(part: Any, camel: str, snake: str) -> Any:
    return part.get(camel, part.get(snake)) if isinstance(part, dict) else None


def _check_schema(schema: Any, where: str) -> None:
    """Gemini's answer to a key its ``Schema`` lacks (the first one found)."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            raise _invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
        if key == "properties" and isinstance(value, dict):
            for n, sub in enumerate(value.values()):
                _check_schema(sub, f"{where}.properties[{n}].value")
        elif key == "items":
            _check_schema(value, f"{where}.items")
        elif key in ("anyOf", "any_of") and isinstance(value, list):
            for n, sub in enumerate(value):
                _check_schema(sub, f"{where}.any_of[{n}]")


def _lowered(schema: Any) -> Any:
    """A Gemini schema with JSON Schema's lower-case type names (what :func:`~.scenario.tool_arguments` reads)."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lowered(v)) for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lowered(v) for v in schema]
    return schema


def _offered_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The declarations as Chat Completions tools (the shape :func:`~.scenario.plan_tool_calls` reads),
    each schema checked as Gemini checks it."""
    tools: list[dict[str, Any]] = []
    for t, tool in enumerate(body.get("tools") or []):
        for d, declaration in enumerate(_part(tool, "functionDeclarations", "function_declarations") or []):
            if not isinstance(declaration, dict):
                continue
            parameters = declaration.get("parameters")
            _check_schema(parameters, f"tools[{t}].function_declarations[{d}].parameters")
            if parameters is None:
                parameters = _part(declaration, "parametersJsonSchema", "parameters_json_schema")
            function = {"name": declaration.get("name"), "parameters": _lowered(parameters or {})}
            tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(body: dict[str, Any]) -> Any:
    config = _part(body, "toolConfig", "tool_config") or {}
    calling = _part(config, "functionCallingConfig", "function_calling_config") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    names = _part(calling, "allowedFunctionNames", "allowed_function_names") or []
    if mode == "NONE":
        return "none"
    if mode == "ANY" and names:
        return {"type": "function", "function": {"name": names[0]}}
    return "auto"


def _check_round_trip(contents: list[Any], model: str) -> None:
    """Signatures (Gemini 3) and function responses, as Gemini checks them (module docstring)."""
    signed = model.removeprefix("models/").startswith("gemini-3")
    calls_before = 0
    for c, content in enumerate(contents):
        parts = (
            [p for p in (content.get("parts") or []) if isinstance(p, dict)]
            if isinstance(content, dict)
            else []
        )
        calls = [(n, p) for n, p in enumerate(parts) if _part(p, "functionCall", "function_call")]
        responses = [(n, _part(p, "functionResponse", "function_response")) for n, p in enumerate(parts)]
        responses = [(n, r) for n, r in responses if r]
        if content.get("role") == "model" and calls:
            n, first = calls[0]
            name = _part(first, "functionCall", "function_call").get("name")
            signature = _part(first, "thoughtSignature", "thought_signature")
            if signed and signature is None:
                raise _invalid(
                    "Function call is missing a thought_signature in functionCall parts. This is required for "
                    "tools to work correctly, and missing thought_signature may lead to degraded model "
                    f"performance. Additional data, function call `default_api:{name}` , position {c + 1}. "
                    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                )
            if signed and not _issued(signature):
                raise _invalid(f"Thought signature is not valid (contents[{c}].parts[{n}]).")
        if responses:
            for n, response in responses:
                if not response.get("name"):
                    raise _invalid(
                        f"* GenerateContentRequest.contents[{c}].parts[{n}].function_response.name: "
                        "Name cannot be empty."
                    )
            if len(responses) != calls_before:
                raise _invalid(
                    "Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn."
                )
        calls_before = len(calls) if content.get("role") == "model" else 0


def _response_output(response: dict[str, Any]) -> str:
    body = response.get("response")
    value = body.get("output", body.get("error")) if isinstance(body, dict) else body
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _parts_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))


class GeminiWire(Wire):
    """Both Gemini content endpoints; ``path_params`` holds ``model`` and ``method``."""

    stream_content_type = b"text/event-stream"

    def __init__(self, state: UpstreamState) -> None:
        self.state = state  # the Files API's uploads, which ``fileData`` parts reference

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
        turn = Turn(
            model=path_params["model"],
            user_text=user,
            input_words=count_words(_parts_text(system), *(_parts_text(c) for c in contents)),
            stream=path_params["method"] == "streamGenerateContent",
            json_mode=config.get("responseMimeType") == "application/json",
            max_tokens=int(max_tokens) if max_tokens else None,
        )
        tools = _offered_tools(body)
        _check_round_trip(contents, turn.model)
        turn.attachments = gemini_received(contents, self.state)
        turn.input_words += ATTACHMENT_TOKENS * len(turn.attachments)
        last = contents[-1] if contents and isinstance(contents[-1], dict) else {}
        last_parts = [p for p in last.get("parts") or [] if isinstance(p, dict)]
        responses = [r for p in last_parts if (r := _part(p, "functionResponse", "function_response"))]
        if responses:
            turn.tool_outputs = [_response_output(r) for r in responses]
        elif tools and last.get("role", "user") == "user":
            turn.tools, turn.tool_choice = tools, _tool_choice(body)
        return turn

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
        usage["promptTokensDetails"] = _modalities(plan)
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    @staticmethod
    def _finish(plan: Plan) -> str:
        return "MAX_TOKENS" if plan.finish == "length" else "STOP"

    @staticmethod
    def _call_parts(plan: Plan) -> list[dict[str, Any]]:
        """One ``functionCall`` part per call, the first signed (as Gemini 3 sends parallel calls)."""
        with_ids = parse_directives(plan.turn.user_text).extra.get("call_ids") not in (None, "", "0")
        parts = []
        for call in plan.calls:
            part: dict[str, Any] = {"functionCall": _function_call(call, with_ids)}
            if call.index == 0:
                part["thoughtSignature"] = thought_signature(call.index, plan.turn.user_text)
            parts.append(part)
        return parts

    @staticmethod
    def _response_id() -> str:
        return base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("=")

    def stream_events(self, plan: Plan) -> tuple[list[bytes], list[bytes], list[bytes]]:
        rid = self._response_id()
        model = plan.turn.model
        mid_usage = self._usage(plan, final=False)
        events: list[bytes] = []

        def event(parts: list[dict[str, Any]], final: bool) -> bytes:
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if final:
                cand["finishReason"] = self._finish(plan)
            usage = self._usage(plan, final=final) if final else mid_usage
            obj = {"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": rid}
            return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"

        last = len(plan.pieces) - 1
        for i, piece in enumerate(plan.pieces):
            events.append(event([{"text": piece}], final=i == last and not plan.calls))
        if not plan.calls:
            return [], events, []
        events.append(event(self._call_parts(plan), final=False))
        return [], events, [event([{"text": ""}], final=True)]

    def full_body(self, plan: Plan) -> dict[str, Any]:
        parts = [{"text": plan.text}] if plan.pieces or not plan.calls else []
        cand = {
            "content": {"parts": parts + self._call_parts(plan), "role": "model"},
            "finishReason": self._finish(plan),
            "index": 0,
        }
        return {
            "candidates": [cand],
            "usageMetadata": self._usage(plan, final=True),
            "modelVersion": plan.turn.model,
            "responseId": self._response_id(),
        }


def _modalities(plan: Plan) -> list[dict[str, Any]]:
    """``promptTokensDetails``: the text's tokens, and the attachments' by modality (IMAGE, DOCUMENT)."""
    counts: dict[str, int] = {}
    for item in plan.turn.attachments:
        modality = "IMAGE" if item.media_type.startswith("image/") else "DOCUMENT"
        counts[modality] = counts.get(modality, 0) + ATTACHMENT_TOKENS
    text = plan.input_tokens - sum(counts.values())
    return [{"modality": "TEXT", "tokenCount": text}] + [
        {"modality": modality, "tokenCount": count} for modality, count in counts.items()
    ]


def _function_call(call: PlannedCall, with_id: bool) -> dict[str, Any]:
    function_call: dict[str, Any] = {"name": call.name, "args": orjson.loads(call.arguments)}
    if with_id:
        function_call["id"] = call.id
    return function_call
