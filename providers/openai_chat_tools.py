"""Client tools in the Chat Completions shape: the request's tool fields, the history's calls and
results, and the streamed call pieces read back.

Shared by every adapter that speaks Chat Completions (OpenAI, OpenAI-compatible servers); kept apart
from :mod:`providers.openai_chat` so a text-only turn pays nothing for it. Shapes as in
``PROVIDER_WIRE.md`` "OpenAI Chat Completions":

* a tool is ``{"type":"function","function":{"name","description","parameters","strict"}}``
  (``description`` left out when empty, ``strict`` when unset; ``parameters`` always sent, an empty
  object schema when the client gave none, since some servers refuse a function without one);
* ``tool_choice`` ``"none"|"auto"|"required"`` as is, ``{"name": x}`` as
  ``{"type":"function","function":{"name":x}}``;
* an assistant message that made calls carries them as ``tool_calls`` (``content`` null when it said
  nothing); a ``tool`` message becomes one ``{"role":"tool","tool_call_id","content"}`` per result,
  in order. Chat Completions has no error flag for a result: a failed tool's output goes as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .base import ChatMessage, ProviderRequest, ToolCallChunk, ToolSpec

#: The schema sent for a tool the client described without parameters.
EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


def tool_fields(
    request: ProviderRequest,
    tool: Callable[[ToolSpec], dict[str, Any]] | None = None,
    choice: Callable[[str | Mapping[str, object]], Any] | None = None,
) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` for the body: nothing without tools
    (the API refuses a choice or a parallel flag that comes without them). ``tool`` and ``choice``
    shape them (Chat Completions' by default; the Responses API passes its own)."""
    if not request.tools:
        return {}
    tool, choice = tool or chat_tool, choice or chat_tool_choice
    fields: dict[str, Any] = {"tools": [tool(spec) for spec in request.tools]}
    if request.tool_choice is not None:
        fields["tool_choice"] = choice(request.tool_choice)
    if request.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = request.parallel_tool_calls
    return fields


def chat_tool(spec: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": spec.name}
    if spec.description:
        function["description"] = spec.description
    function["parameters"] = dict(spec.parameters) if spec.parameters else dict(EMPTY_PARAMETERS)
    if spec.strict is not None:
        function["strict"] = spec.strict
    return {"type": "function", "function": function}


def chat_tool_choice(choice: str | Mapping[str, object]) -> str | dict[str, Any]:
    if isinstance(choice, Mapping):
        if "name" in choice:
            return {"type": "function", "function": {"name": choice["name"]}}
        return dict(choice)  # already in the provider's shape
    return choice


def tool_messages(message: ChatMessage) -> list[dict[str, Any]]:
    """The Chat Completions messages for a history message that made calls or answers them."""
    if message.tool_results:
        return [
            {"role": "tool", "tool_call_id": result.call_id, "content": result.output}
            for result in message.tool_results
        ]
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in message.tool_calls
    ]
    return [{"role": message.role, "content": message.content or None, "tool_calls": calls}]


def tool_call_pieces(raw: Any) -> tuple[ToolCallChunk, ...]:
    """``delta.tool_calls`` as call pieces. A piece without ``index`` (a few servers send whole
    calls without one) takes its position in the list; ``arguments`` sent as an object (not the
    JSON text OpenAI sends) is serialized."""
    if not isinstance(raw, list):
        return ()
    pieces: list[ToolCallChunk] = []
    for position, call in enumerate(raw):
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        index = call.get("index")
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        pieces.append(
            ToolCallChunk(
                index if isinstance(index, int) and not isinstance(index, bool) else position,
                call.get("id") or "",
                function.get("name") or "",
                arguments,
            )
        )
    return tuple(pieces)
