"""Client tools in the Responses API's shape: the request's tool fields, the history's calls and
results as input items, and the streamed ``function_call`` items read back as call pieces.

Kept apart from :mod:`providers.openai_responses` so a text-only turn pays nothing for it. Shapes
as in ``PROVIDER_WIRE.md`` "OpenAI Responses":

* a tool is flat, ``{"type":"function","name","description","parameters","strict"}``
  (``description`` left out when empty; ``parameters`` an empty object schema when the client gave
  none). ``strict`` is always sent: a tool the client did not mark strict goes ``strict: false``,
  because the Responses API, unlike Chat Completions, turns an omitted ``strict`` into strict mode
  (every property required, optional ones filled in) — a tool means the same on every provider here;
* ``tool_choice`` ``"none"|"auto"|"required"`` as is, ``{"name": x}`` as ``{"type":"function","name":x}``;
* an assistant message that made calls is its text (when any) as a message, then one
  ``{"type":"function_call","call_id","name","arguments"}`` item per call; a ``tool`` message is one
  ``{"type":"function_call_output","call_id","output"}`` item per result, in order (no error flag
  here either: a failed tool's output goes as it is). The call's output item id (``fc_…``, kept in
  :attr:`~providers.base.ToolCall.metadata` ``item_id``) is not sent back: OpenAI wants a reasoning
  model's call item with its reasoning item when it has an id, and reasoning items are not kept;
  ``call_id`` is what pairs the output with its call;
* streamed, ``response.output_item.added`` of a ``function_call`` item opens call ``i`` (the calls
  counted in the order their items open: a reasoning or message item may hold an earlier output
  index), carrying ``call_id``, ``name`` and the item id; ``response.function_call_arguments.delta``
  fragments are routed to their call by ``item_id`` (by ``output_index`` when a server leaves the id out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import ChatMessage, ProviderRequest, ToolCallChunk, ToolSpec
from .openai_chat_tools import EMPTY_PARAMETERS
from .openai_chat_tools import tool_fields as chat_tool_fields


def tool_fields(request: ProviderRequest) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` for the body, in the Responses shapes."""
    return chat_tool_fields(request, responses_tool, responses_tool_choice)


def responses_tool(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description:
        tool["description"] = spec.description
    tool["parameters"] = dict(spec.parameters) if spec.parameters else dict(EMPTY_PARAMETERS)
    tool["strict"] = bool(spec.strict)
    return tool


def responses_tool_choice(choice: str | Mapping[str, object]) -> str | dict[str, Any]:
    if isinstance(choice, Mapping):
        if "name" in choice and "type" not in choice:
            return {"type": "function", "name": choice["name"]}
        return dict(choice)  # already in the provider's shape
    return choice


def input_items(message: ChatMessage) -> list[dict[str, Any]]:
    """The input items of a history message that made calls or answers them."""
    if message.tool_results:
        return [
            {"type": "function_call_output", "call_id": result.call_id, "output": result.output}
            for result in message.tool_results
        ]
    items: list[dict[str, Any]] = (
        [{"role": message.role, "content": message.content}] if message.content else []
    )
    return items + [
        {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
        for call in message.tool_calls
    ]


class CallReader:
    """The ``function_call`` items of one streamed response, as :class:`ToolCallChunk` pieces."""

    __slots__ = ("_by_item", "_by_output", "_count", "_sent")

    def __init__(self) -> None:
        self._count = 0  # calls opened
        self._by_item: dict[str, int] = {}  # item id -> the call's index
        self._by_output: dict[int, int] = {}  # output index -> the call's index
        self._sent: set[int] = set()  # calls some argument text was read for

    @property
    def called(self) -> bool:
        return self._count > 0

    def added(self, event: Mapping[str, Any]) -> ToolCallChunk | None:
        """``response.output_item.added``: a new call when its item is a ``function_call``."""
        item = event.get("item")
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return None
        index, self._count = self._count, self._count + 1
        if isinstance(item.get("id"), str):
            self._by_item[item["id"]] = index
        if isinstance(event.get("output_index"), int):
            self._by_output[event["output_index"]] = index
        arguments = item.get("arguments") or ""
        if arguments:
            self._sent.add(index)
        metadata = {"item_id": item["id"]} if isinstance(item.get("id"), str) else {}
        return ToolCallChunk(
            index, item.get("call_id") or "", item.get("name") or "", arguments, metadata=metadata
        )

    def _index(self, event: Mapping[str, Any]) -> int | None:
        found = self._by_item.get(event.get("item_id"))  # type: ignore[arg-type]
        return found if found is not None else self._by_output.get(event.get("output_index"))  # type: ignore[arg-type]

    def fragment(self, event: Mapping[str, Any]) -> ToolCallChunk | None:
        """``response.function_call_arguments.delta``: a fragment of its call's arguments."""
        index, delta = self._index(event), event.get("delta")
        if index is None or not isinstance(delta, str) or not delta:
            return None
        self._sent.add(index)
        return ToolCallChunk(index, arguments=delta)

    def whole(self, event: Mapping[str, Any]) -> ToolCallChunk | None:
        """``response.function_call_arguments.done``: the arguments, when no fragment carried any
        (a server that sends them only whole)."""
        index, arguments = self._index(event), event.get("arguments")
        if index is None or index in self._sent or not isinstance(arguments, str) or not arguments:
            return None
        self._sent.add(index)
        return ToolCallChunk(index, arguments=arguments)
