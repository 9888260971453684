"""The one reader of client tools: definitions, ``tool_choice`` and results, in each protocol's shape.

Two shapes of a definition are read: OpenAI Chat's nested one
(``{"type": "function", "function": {"name", "description", "parameters", "strict"}}``) and the
flat one of the Responses API and the native API (``{"type": "function"?, "name", …}``). Both give
:class:`~providers.base.ToolSpec`; the limits (count, names, schema size) are the turn's
(:meth:`conversations.turns.request.TurnRequest.validate`), the shapes are checked here, each
problem a 422 naming the item and what to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from conversations.edge.http_errors import HttpError
from providers.base import ToolResult, ToolSpec

Shape = Literal["nested", "flat"]
CHOICES = ("none", "auto", "required")
DEFINITION_KEYS = frozenset({"name", "description", "parameters", "strict"})
RESULT_KEYS = frozenset({"type", "call_id", "output", "is_error"})
OUTER_KEYS = {"nested": frozenset({"type", "function"}), "flat": DEFINITION_KEYS | {"type"}}


def _bad(message: str, field: str) -> HttpError:
    return HttpError(422, "invalid_input", message, field=field)


def read_tools(raw: Any, shape: Shape, field: str = "tools") -> tuple[ToolSpec, ...]:
    """``tools`` as specs (``()`` when absent or empty). ``nested``: OpenAI Chat's shape;
    ``flat``: ``{name, description, parameters, strict}`` (``type: "function"`` optional)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad(f"{field} must be a list of tool definitions.", field)
    return tuple(_read_tool(item, shape, f"{field}[{n}]", field) for n, item in enumerate(raw))


def _read_tool(item: Any, shape: Shape, where: str, field: str) -> ToolSpec:
    example = (
        '{"type": "function", "function": {"name": …, "parameters": {…}}}'
        if shape == "nested"
        else '{"name": …, "description": …, "parameters": {…}}'
    )
    if not isinstance(item, Mapping):
        raise _bad(f"{where} must be a tool definition such as {example}.", field)
    kind = item.get("type", "function" if shape == "flat" else None)
    if kind != "function":
        raise HttpError(
            422,
            "tools_not_supported",
            f"{where} is a {kind!r} tool: only function tools (type function) are supported.",
            field=field,
        )
    definition = item.get("function") if shape == "nested" else item
    if not isinstance(definition, Mapping):
        raise _bad(f"{where}.function must be an object such as {example}.", field)
    _refuse_unknown(item, OUTER_KEYS[shape], where, field)
    if shape == "nested":
        _refuse_unknown(definition, DEFINITION_KEYS, f"{where}.function", field)
    name, description = definition.get("name"), definition.get("description", "")
    parameters, strict = definition.get("parameters"), definition.get("strict")
    if not isinstance(name, str):
        raise _bad(f"{where} needs a name (a string).", field)
    if not isinstance(description, str | None):
        raise _bad(f"{where} ({name}): description must be a string.", field)
    if parameters is not None and not isinstance(parameters, Mapping):
        raise _bad(f"{where} ({name}): parameters must be a JSON Schema object.", field)
    if strict is not None and not isinstance(strict, bool):
        raise _bad(f"{where} ({name}): strict must be true or false.", field)
    return ToolSpec(name, description or "", dict(parameters or {}), strict)


def _refuse_unknown(
    definition: Mapping[str, Any],
    known: frozenset[str],
    where: str,
    field: str,
    takes: str = "a function tool takes name, description, parameters and strict",
) -> None:
    """A key of a tool definition (``defer_loading``, ``cache_control``…) or of a tool result this
    server does not honour is refused naming it, never ignored."""
    for key in definition:
        if key not in known:
            raise HttpError(
                422,
                "unsupported_parameter",
                f"{where}.{key} is not supported: remove it ({takes}).",
                field=field,
            )


def read_tool_choice(raw: Any, shape: Shape) -> str | dict[str, str] | None:
    """``tool_choice``: none, auto, required, or one named function (``{"name": x}``)."""
    if raw is None or raw in CHOICES:
        return raw
    if isinstance(raw, Mapping) and raw.get("type") == "function":
        named = raw.get("function") if shape == "nested" else raw
        if isinstance(named, Mapping) and isinstance(named.get("name"), str):
            return {"name": named["name"]}
    if isinstance(raw, Mapping) and raw.get("type") == "allowed_tools":
        raise HttpError(
            422,
            "tools_not_supported",
            'tool_choice "allowed_tools" is not supported: send only the tools the model may use, '
            "with tool_choice auto or required.",
            field="tool_choice",
        )
    named = (
        '{"type": "function", "function": {"name": …}}'
        if shape == "nested"
        else '{"type": "function", "name": …}'
    )
    raise _bad(f"tool_choice must be none, auto, required or {named}.", "tool_choice")


def read_tool_result(item: Any, where: str, field: str) -> ToolResult:
    """A result part as the native API sends it: ``{"type": "tool_result", "call_id", "output",
    "is_error"?}`` (``output`` a string; any other JSON value is sent as its JSON text)."""
    if not isinstance(item, Mapping) or item.get("type") != "tool_result":
        raise _bad(
            f'{where} must be a tool result: {{"type": "tool_result", "call_id": …, "output": …}}.', field
        )
    _refuse_unknown(item, RESULT_KEYS, where, field, "a tool result takes type, call_id, output and is_error")
    call_id, output, is_error = item.get("call_id"), item.get("output", ""), item.get("is_error", False)
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{where}.call_id must be the id of the call it answers.", field)
    if not isinstance(is_error, bool):
        raise _bad(f"{where}.is_error must be true or false.", field)
    return ToolResult(call_id, output_text(output), is_error)


def output_text(output: Any) -> str:
    """A result's output as the model is sent it: a string as is, other JSON as its text."""
    if isinstance(output, str):
        return output
    return orjson.dumps(output).decode()
