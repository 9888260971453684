"""Client tools in Gemini's shape: declarations with the JSON Schema translated to Gemini's OpenAPI
subset, ``toolConfig`` from ``tool_choice``, the calls read back, and a tool round replayed.

Kept apart from :mod:`providers.gemini` so a text-only turn pays nothing for it. Shapes as in
``PROVIDER_WIRE.md`` "Gemini":

* **Schemas.** Gemini's ``parameters`` take an OpenAPI subset, not JSON Schema. What maps is
  translated (:func:`translate`): ``type`` (``["string", "null"]`` → ``STRING`` + ``nullable``),
  ``format``, ``title``, ``description``, ``nullable``, ``enum`` (strings; a ``null`` in it →
  ``nullable``), ``const`` (a string → ``enum`` of one), ``items``, ``properties``, ``required``,
  ``anyOf``, ``minimum``/``maximum``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
  ``minProperties``/``maxProperties``, ``pattern``, ``default``, ``example``, ``propertyOrdering``.
  Two keywords every strict client sends are left out because they ask nothing Gemini does not
  already do (:data:`_IMPLIED`): ``additionalProperties: false`` (OpenAI strict mode, zod: Gemini
  fills only the declared properties) and the annotations ``$schema``, ``$id``, ``$comment``.
  Anything else (``$ref``, ``$defs``, ``additionalProperties`` true or a schema, ``oneOf``,
  ``allOf``, ``not``, ``if``, ``patternProperties``, ``multipleOf``, ``exclusiveMinimum``…) is a
  :class:`SchemaProblem` naming the keyword and its path; the turn service refuses the turn with it
  before anything is stored (Gemini would answer 400 ``Unknown name``). No constraint is dropped.
  A schema that is an object without properties (a function without parameters) is sent as no
  ``parameters`` at all, which says the same (Gemini has refused an ``OBJECT`` with empty
  ``properties``).
* **Choice.** ``auto`` → ``AUTO``, ``none`` → ``NONE``, ``required`` → ``ANY``, ``{"name": x}`` →
  ``ANY`` with ``allowedFunctionNames: [x]``. Gemini has no parallel switch: ``parallel_tool_calls``
  has nothing to map to (the model decides; several calls come as several parts).
* **Calls.** Gemini sends each call whole in one part (``args`` an object): one
  :class:`~providers.base.ToolCallChunk` per call, its arguments the object's JSON text. ``id`` is
  Gemini's when it gives one (then ``metadata["gemini_id"]`` is true, so the id goes back with the
  call and its response); else empty and the transcript makes one, never sent to Gemini. A part's
  ``thoughtSignature`` (bytes in the SDK) is kept base64-encoded in ``metadata["thought_signature"]``.
* **Replay.** An assistant message that made calls goes back as a ``model`` content: its text, then
  one ``functionCall`` part per call with its signature, as received. For a Gemini 3 model, a
  content whose first call has no signature (made by another provider, or stored without one) gets
  Google's documented placeholder ``skip_thought_signature_validator``, since Gemini 3 refuses a
  call without one (400 ``Function call is missing a thought_signature``). A ``tool`` message goes as
  one ``user`` content with a ``functionResponse`` part per result: ``name`` (the called tool),
  ``response`` ``{"output": text}`` or ``{"error": text}`` for a failed tool, ``id`` when Gemini gave
  the call one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from google.genai import types

from .base import ChatMessage, ToolCall, ToolCallChunk, ToolSpec

#: Google's documented placeholder for a function call whose signature is unknown (Gemini 3).
SKIP_SIGNATURE = "skip_thought_signature_validator"
#: The bytes whose (URL-safe) base64 the SDK sends as the placeholder above.
_SKIP_SIGNATURE_BYTES = base64.urlsafe_b64decode(SKIP_SIGNATURE)
_SIGNED_MODELS = re.compile(r"^(?:models/)?gemini-3")

#: JSON Schema keyword → the Gemini ``Schema`` field it maps to as is (the SDK's snake_case name).
_PLAIN = {
    "format": "format",
    "title": "title",
    "description": "description",
    "nullable": "nullable",
    "required": "required",
    "minimum": "minimum",
    "maximum": "maximum",
    "minItems": "min_items",
    "maxItems": "max_items",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minProperties": "min_properties",
    "maxProperties": "max_properties",
    "pattern": "pattern",
    "default": "default",
    "example": "example",
    "propertyOrdering": "property_ordering",
}
_JSON_NAMES = {gemini: json for json, gemini in _PLAIN.items()} | {"any_of": "anyOf"}
#: Handled below, with a translation of their own.
_TRANSLATED = frozenset({"type", "enum", "const", "items", "properties", "anyOf"})
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
#: A hint for the keywords clients send most, shown with the first problem.
_HINTS = {
    "$ref": "inline the definition it points to",
    "$defs": "inline the definitions where they are used",
    "definitions": "inline the definitions where they are used",
    "additionalProperties": "list the properties instead (additionalProperties: false is taken)",
    "oneOf": "use anyOf",
    "allOf": "merge the schemas into one",
    "exclusiveMinimum": "use minimum",
    "exclusiveMaximum": "use maximum",
}
_SHOWN_PROBLEMS = 3
#: Keywords left out because Gemini already behaves so: value -> whether it is implied.
_IMPLIED = {
    "additionalProperties": lambda value: value is False,  # only the declared properties are filled
    "$schema": lambda value: True,  # annotations: they constrain nothing
    "$id": lambda value: True,
    "$comment": lambda value: True,
}


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """A part of a JSON Schema Gemini cannot take: the keyword (or value) and where it is."""

    keyword: str
    path: str
    why: str = "Gemini's schema has no such keyword"


class _Translation:
    """One tool's schema translated, with the problems found on the way (all of them, in order)."""

    def __init__(self) -> None:
        self.problems: list[SchemaProblem] = []

    def refuse(self, keyword: str, path: str, why: str = SchemaProblem.why) -> None:
        self.problems.append(SchemaProblem(keyword, path, why))

    def schema(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.refuse("a boolean schema" if isinstance(value, bool) else "a non-object schema", path, "")
            return {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _PLAIN:
                out[_PLAIN[key]] = item
            elif key in _IMPLIED and _IMPLIED[key](item):
                continue
            elif key not in _TRANSLATED:
                self.refuse(key, path)
        self._type(value, out, path)
        self._enum(value, out, path)
        if "items" in value:
            if isinstance(value["items"], list):
                self.refuse("items", path, "Gemini takes one schema for every item, not a list")
            else:
                out["items"] = self.schema(value["items"], f"{path}.items")
        if "properties" in value:
            properties = value["properties"]
            if isinstance(properties, Mapping):
                out["properties"] = {
                    name: self.schema(sub, f"{path}.properties.{name}") for name, sub in properties.items()
                }
            else:
                self.refuse("properties", path, "it must be an object of schemas")
        if "anyOf" in value:
            branches = value["anyOf"]
            if isinstance(branches, list):
                out["any_of"] = [self.schema(sub, f"{path}.anyOf[{n}]") for n, sub in enumerate(branches)]
            else:
                self.refuse("anyOf", path, "it must be a list of schemas")
        return out

    def _type(self, value: Mapping[str, Any], out: dict[str, Any], path: str) -> None:
        if "type" not in value:
            return
        kind = value["type"]
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or not all(isinstance(k, str) and k in _TYPES for k in kinds):
            self.refuse("type", path, f"{kind!r} is not a JSON Schema type")
            return
        named = [k for k in kinds if k != "null"]
        if len(named) > 1:
            self.refuse("type", path, f"Gemini takes one type per schema, not {kind!r}: use anyOf")
            return
        out["type"] = (named[0] if named else "null").upper()
        if named and len(kinds) > len(named):
            out["nullable"] = True

    def _enum(self, value: Mapping[str, Any], out: dict[str, Any], path: str) -> None:
        if "const" in value:
            if "enum" in value:
                self.refuse("const", path, "it comes with an enum: keep one of them")
                return
            if not isinstance(value["const"], str):
                self.refuse("const", path, "Gemini's enum (which const becomes) takes strings only")
                return
            out["enum"] = [value["const"]]
            out.setdefault("type", "STRING")
            return
        if "enum" not in value:
            return
        values = value["enum"]
        if not isinstance(values, list) or not all(v is None or isinstance(v, str) for v in values):
            self.refuse("enum", path, "Gemini's enum takes strings only")
            return
        out["enum"] = [v for v in values if v is not None]
        if len(out["enum"]) < len(values):
            out["nullable"] = True


def translate(parameters: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[SchemaProblem]]:
    """A tool's JSON Schema as Gemini ``Schema`` fields (None: send no parameters), and what of it
    Gemini cannot take (nothing when the list is empty)."""
    if _no_parameters(parameters):
        return None, []
    translation = _Translation()
    schema = translation.schema(parameters, "parameters")
    if not translation.problems:
        try:
            types.Schema.model_validate(schema)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            *where, field = [_JSON_NAMES.get(str(p), str(p)) for p in error["loc"]] or ["parameters"]
            path = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in where)
            translation.refuse(field, f"parameters{path}", f"a value Gemini cannot take: {error['msg']}")
    return schema, translation.problems


def _no_parameters(parameters: Mapping[str, Any]) -> bool:
    """An empty schema, or an object without properties: a function that takes no arguments."""
    if not parameters:
        return True
    rest = set(parameters) - {"type", "properties", "required", "title", "description"}
    return (
        not rest
        and parameters.get("type") == "object"
        and not parameters.get("properties")
        and not parameters.get("required")
    )


def schema_refusal(tools: Sequence[ToolSpec], model: str = "Gemini") -> str | None:
    """The sentence refusing ``tools`` whose schemas ``model`` (as shown: ``gemini:gemini-2.5-flash``)
    cannot take, naming each tool, keyword and path; None when every schema translates."""
    found = [(n, tool, problem) for n, tool in enumerate(tools) for problem in translate(tool.parameters)[1]]
    if not found:
        return None
    shown = [
        f"tools[{n}] ({tool.name}): {problem.keyword} at {problem.path}"
        + (f" ({problem.why})" if problem.why and problem.why != SchemaProblem.why else "")
        for n, tool, problem in found[:_SHOWN_PROBLEMS]
    ]
    more = f" (and {len(found) - _SHOWN_PROBLEMS} more)" if len(found) > _SHOWN_PROBLEMS else ""
    hint = _HINTS.get(found[0][2].keyword)
    return (
        f"{model} cannot take these JSON Schema keywords in the tools' parameters: "
        + "; ".join(shown)
        + more
        + f". {'For ' + found[0][2].keyword + ': ' + hint + '. ' if hint else ''}"
        "Gemini takes an OpenAPI subset of JSON Schema (docs/tools.md lists it): rewrite the schema "
        "without them, or send the request to a provider that takes them."
    )


def gemini_tools(tools: Sequence[ToolSpec]) -> list[types.Tool]:
    """The declarations, all in one tool (as the SDK merges them anyway)."""
    declarations = []
    for spec in tools:
        schema, _ = translate(spec.parameters)
        declarations.append(
            types.FunctionDeclaration(
                name=spec.name,
                description=spec.description or None,
                parameters=types.Schema.model_validate(schema) if schema is not None else None,
            )
        )
    return [types.Tool(function_declarations=declarations)]


def gemini_tool_config(choice: str | Mapping[str, object] | None) -> types.ToolConfig | None:
    """``tool_choice`` as Gemini's function-calling mode (None: Gemini's default, ``AUTO``)."""
    if choice is None:
        return None
    if isinstance(choice, Mapping):
        config = types.FunctionCallingConfig(mode="ANY", allowed_function_names=[str(choice["name"])])
    else:
        config = types.FunctionCallingConfig(mode={"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice])
    return types.ToolConfig(function_calling_config=config)


def call_piece(index: int, call: types.FunctionCall, signature: bytes | None) -> ToolCallChunk:
    """One whole call of a response as the one piece of call ``index``."""
    metadata: dict[str, object] = {}
    if signature:
        metadata["thought_signature"] = base64.b64encode(signature).decode("ascii")
    if call.id:
        metadata["gemini_id"] = True
    return ToolCallChunk(
        index, call.id or "", call.name or "", orjson.dumps(call.args or {}).decode(), metadata
    )


def _signature(call: ToolCall) -> bytes | None:
    value = call.metadata.get("thought_signature")
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments) if call.arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def model_content(message: ChatMessage, model: str) -> types.Content:
    """An assistant message that made calls: its text, then its calls, each with its signature."""
    parts = [types.Part(text=message.content)] if message.content else []
    for n, call in enumerate(message.tool_calls):
        signature = _signature(call)
        if signature is None and n == 0 and _SIGNED_MODELS.match(model):
            signature = _SKIP_SIGNATURE_BYTES
        function_call = types.FunctionCall(
            name=call.name,
            args=_arguments(call),
            id=call.id if call.metadata.get("gemini_id") else None,
        )
        parts.append(types.Part(function_call=function_call, thought_signature=signature))
    return types.Content(role="model", parts=parts)


def response_content(message: ChatMessage, calls: Mapping[str, ToolCall]) -> types.Content:
    """A ``tool`` message: one ``functionResponse`` per result, in order, named after its call."""
    parts = []
    for result in message.tool_results:
        call = calls.get(result.call_id)
        response = {"error": result.output} if result.is_error else {"output": result.output}
        parts.append(
            types.Part(
                function_response=types.FunctionResponse(
                    name=result.name or (call.name if call else ""),
                    id=result.call_id if call is not None and call.metadata.get("gemini_id") else None,
                    response=response,
                )
            )
        )
    return types.Content(role="user", parts=parts)
