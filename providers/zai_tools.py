"""Client tools in Z.AI's shape: the OpenAI Chat request pieces Z.AI takes, and the calls read back
from zai-sdk's chunks.

Kept apart from :mod:`providers.zai` so a text-only turn pays nothing for it. Shapes as in
``PROVIDER_WIRE.md`` "Z.AI GLM":

* Tools, the history's calls and results: the Chat Completions shapes of
  :mod:`providers.openai_chat_tools` (``strict`` only when the client set it). No
  ``parallel_tool_calls``: Z.AI has no such parameter (it returns several calls when the model makes
  them), so the flag is not sent.
* ``tool_choice``: Z.AI takes ``"auto"`` only. ``"auto"`` is sent as is; ``"none"`` is honoured by
  sending no tools at all (the model cannot call what it is not offered; the history's calls and
  results still go); ``"required"`` and a named tool cannot be honoured and refuse the turn before
  any call (:func:`choice_refusal`, 422 ``tools_not_supported``).
* ``tool_stream: true`` (argument fragments as they are generated) is sent for the models Z.AI
  documents it for, GLM-4.6, GLM-4.7 and GLM-5 and their variants (:data:`TOOL_STREAM_MODELS`;
  not the vision models such as ``glm-4.6v``); other models get each call whole.
* Calls come back either way: without ``tool_stream`` each call whole in one chunk already marked
  ``finish_reason: "tool_calls"`` (the stream goes on: more calls, then the usage); with it, a
  header piece (``index``, ``id``, ``name``) then argument fragments by ``index``. Ids (like
  ``call_-8303647325903440624``) are kept as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .base import ChatMessage, ProviderRequest, ToolCallChunk
from .openai_chat_tools import chat_tool, tool_messages

#: The models ``tool_stream`` is sent for: ``glm-4.6``…``glm-4.9`` and ``glm-5`` and later, with
#: their suffixed variants (``glm-4.7-flash``, ``glm-5.1``), not the ``v`` (vision) models.
TOOL_STREAM_MODELS = re.compile(r"^glm-(?:4\.[6-9]|[5-9](?:\.\d+)?)(?:$|[-.])", re.IGNORECASE)


def streams_tool_arguments(model: str) -> bool:
    """Whether ``tool_stream`` is sent for ``model`` (see :data:`TOOL_STREAM_MODELS`)."""
    return TOOL_STREAM_MODELS.match(model) is not None


def choice_refusal(model: str, choice: str | Mapping[str, object]) -> str | None:
    """Why ``model`` (as shown: ``zai:glm-4.6``) cannot honour ``choice`` (a sentence naming it and
    the fix), None when it can."""
    if choice in ("auto", "none"):
        return None
    shown = f"names the tool {choice.get('name')!r}" if isinstance(choice, Mapping) else f"is {choice!r}"
    return (
        f"tool_choice {shown}, which the model {model} cannot honour: Z.AI takes tool_choice auto only. "
        "Send auto (or none, or no tool_choice), or send the request to a provider that takes it."
    )


def tool_params(request: ProviderRequest) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``tool_stream`` for the SDK call: nothing without tools, or
    with ``tool_choice: "none"`` (no tools offered is how Z.AI honours it)."""
    if not request.tools or request.tool_choice == "none":
        return {}
    params: dict[str, Any] = {"tools": [chat_tool(spec) for spec in request.tools]}
    if request.tool_choice == "auto":
        params["tool_choice"] = "auto"
    if streams_tool_arguments(request.model):
        params["tool_stream"] = True
    return params


def history_messages(message: ChatMessage) -> list[dict[str, Any]]:
    """A history message that made calls or answers them, in the Chat Completions shape."""
    return tool_messages(message)


def call_pieces(raw: Any) -> tuple[ToolCallChunk, ...]:
    """``delta.tool_calls`` of a zai-sdk chunk as call pieces (arguments not sent as text are
    serialized; a piece without ``index`` takes its position in the list)."""
    pieces = []
    for position, call in enumerate(raw or ()):
        function = getattr(call, "function", None)
        arguments = getattr(function, "arguments", None) or ""
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        index = getattr(call, "index", None)
        pieces.append(
            ToolCallChunk(
                index if isinstance(index, int) else position,
                getattr(call, "id", None) or "",
                getattr(function, "name", None) or "",
                arguments,
            )
        )
    return tuple(pieces)
