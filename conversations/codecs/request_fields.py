"""Which request fields each turn-starting endpoint honours, accepts as no-ops, and refuses.

A field a client sends is honoured, accepted because it asks for nothing (``n: 1``, ``user``,
``tools: []``), or refused with 422 naming it — never dropped: a client whose ``tools``, image or
``n: 2`` is ignored takes a confident answer to a question it did not ask. What is not taken of
tool calling and attachments is refused with codes of their own (``tools_not_supported``,
``attachments_not_supported``: a built-in tool, audio); any other field we cannot honour, and any
field the endpoint does not know, with ``unsupported_parameter`` (as OpenAI refuses an unknown argument).
The tables here are the ones docs/api.md lists ("Request fields each endpoint honours").

Each honoured field carries the JSON Schema of its value (:data:`Schema`): :meth:`RequestFields.check`
refuses a value of the wrong JSON type with it, and the OpenAPI schema of the endpoint is built from
the same table (:meth:`RequestFields.body_schema`, read by ``conversations/api/schema.py``), so the
documented shape and the enforced one cannot drift. Limits owned by the turn core (temperature,
max_tokens, key lengths) are its constants, quoted here, enforced there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conversations.codecs.openai_metadata import (
    METADATA_KEY_CHARS,
    METADATA_PAIRS,
    METADATA_VALUE_CHARS,
)
from conversations.edge.http_errors import HttpError
from conversations.turns.request import (
    CLIENT_MESSAGE_ID_LENGTH,
    MAX_TOKENS_RANGE,
    MAX_TOOLS,
    SESSION_KEY_LENGTH,
    TEMPERATURE_RANGE,
    TOOL_CHOICES,
    TOOL_NAME,
)
from providers.defaults import MODEL_NAME_RE

TOOLS = "tools_not_supported"
ATTACHMENTS = "attachments_not_supported"
UNSUPPORTED = "unsupported_parameter"
FIELDS_DOC = "docs/api.md, Request fields each endpoint honours"

NO_TOOLS = "tool calling is not supported yet: send the request without tools"

# Content parts that carry something other than text, in every protocol we speak (each protocol
# reads its own: image_url and file in Chat Completions, input_image and input_file in Responses;
# the seeds refuse them all).
ATTACHMENT_PARTS = frozenset(
    {"image_url", "input_audio", "file", "input_image", "input_file", "image", "audio", "document"}
)


Schema = Mapping[str, Any]  # the JSON Schema (OpenAPI 3.0) of one field's value

NO_NUL = "^[^\\u0000]*$"  # PostgreSQL stores no NUL: stored text refuses it (422)
NO_NUL_NON_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
STRING: Schema = {"type": "string", "pattern": NO_NUL}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
MODEL: Schema = {"type": "string", "pattern": MODEL_NAME_RE.pattern}
TEMPERATURE: Schema = {"type": "number", "minimum": TEMPERATURE_RANGE[0], "maximum": TEMPERATURE_RANGE[1]}
MAX_TOKENS: Schema = {"type": "integer", "minimum": MAX_TOKENS_RANGE[0], "maximum": MAX_TOKENS_RANGE[1]}
CLIENT_ID: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": CLIENT_MESSAGE_ID_LENGTH,
    "pattern": NO_NUL,
}
SESSION_KEY: Schema = {"type": "string", "minLength": 1, "maxLength": SESSION_KEY_LENGTH, "pattern": NO_NUL}
METADATA: Schema = {
    "type": "object",
    "description": f"At most {METADATA_PAIRS} pairs; keys of at most {METADATA_KEY_CHARS} characters (OpenAI's limits).",
    "maxProperties": METADATA_PAIRS,
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_CHARS},
}

TOOL_NAME_SCHEMA: Schema = {"type": "string", "pattern": TOOL_NAME.pattern}
FLAT_TOOL: Schema = {  # the native API's (and the Responses API's) function tool
    "type": "object",
    "required": ["name"],
    "properties": {
        "type": {"type": "string", "enum": ["function"]},
        "name": TOOL_NAME_SCHEMA,
        "description": STRING,
        "parameters": OBJECT,
        "strict": BOOLEAN,
    },
    "additionalProperties": False,
}
NESTED_TOOL: Schema = {  # OpenAI Chat Completions' function tool
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"type": "string", "enum": ["function"]},
        "function": {
            **FLAT_TOOL,
            "properties": {k: v for k, v in FLAT_TOOL["properties"].items() if k != "type"},
        },
    },
}


def tools_schema(tool: Schema) -> Schema:
    return {"type": "array", "maxItems": MAX_TOOLS, "items": tool}


def tool_choice_schema(named: Schema) -> Schema:
    return {"oneOf": [{"type": "string", "enum": list(TOOL_CHOICES)}, named]}


FLAT_TOOL_CHOICE: Schema = tool_choice_schema(  # the native API's and the Responses API's
    {
        "type": "object",
        "required": ["type", "name"],
        "properties": {"type": {"type": "string", "enum": ["function"]}, "name": TOOL_NAME_SCHEMA},
    }
)


DATA_URL = "A data URL with the file's bytes: data:<media type>;base64,<standard base64>."
FILE_URL = f"{DATA_URL[:-1]}, or an https:// URL the server (or the provider) fetches."
ATTACHMENT_ID: Schema = {
    "type": "string",
    "description": "An attachment id: the id POST /api/attachments returned (a UUID).",
}
IMAGE_DETAIL: Schema = {"type": "string", "enum": ["auto", "low", "high", "original"]}


def _part(
    kind: str, required: list[str], properties: Mapping[str, Schema], description: str, *, closed: bool = True
) -> Schema:
    """A content part's schema; ``closed``: a key it does not list is refused (a file part's)."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["type", *required],
        "properties": {"type": {"type": "string", "enum": [kind]}, **properties},
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


# docs/attachments.md: the parts of a message that carry files, in each protocol's own shape.
CHAT_CONTENT: Schema = {
    "description": "The message's text, or its parts: text, and on a user message image_url and file parts.",
    "nullable": True,
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {
                "oneOf": [
                    _part("text", ["text"], {"text": STRING}, "Text.", closed=False),
                    _part(
                        "image_url",
                        ["image_url"],
                        {
                            "image_url": {
                                "type": "object",
                                "required": ["url"],
                                "properties": {
                                    "url": {"type": "string", "description": FILE_URL},
                                    "detail": IMAGE_DETAIL,
                                },
                                "additionalProperties": False,
                            }
                        },
                        "An image (PNG, JPEG, WebP or GIF), in a user message.",
                    ),
                    _part(
                        "file",
                        ["file"],
                        {
                            "file": {
                                "type": "object",
                                "description": "file_data (with its filename) or file_id, not both.",
                                "properties": {
                                    "file_data": {"type": "string", "description": DATA_URL},
                                    "filename": STRING,
                                    "file_id": ATTACHMENT_ID,
                                },
                                "additionalProperties": False,
                            }
                        },
                        "A PDF or text file (or an image), in a user message.",
                    ),
                ]
            },
        },
    ],
}
RESPONSES_CONTENT: Schema = {
    "description": "A message's text, or its parts: input_text (output_text in an assistant message), "
    "and on a user message input_image and input_file parts.",
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    *(
                        _part(kind, ["text"], {"text": STRING}, "Text.", closed=False)
                        for kind in ("input_text", "output_text", "text")
                    ),
                    _part(
                        "input_image",
                        [],
                        {
                            "image_url": {"type": "string", "description": FILE_URL},
                            "file_id": ATTACHMENT_ID,
                            "detail": IMAGE_DETAIL,
                        },
                        "An image (PNG, JPEG, WebP or GIF): image_url or file_id, not both.",
                    ),
                    _part(
                        "input_file",
                        [],
                        {
                            "file_data": {"type": "string", "description": DATA_URL},
                            "filename": STRING,
                            "file_url": {"type": "string", "description": "An https:// URL."},
                            "file_id": ATTACHMENT_ID,
                            "detail": IMAGE_DETAIL,
                        },
                        "A PDF or text file: file_data (with its filename), file_url or file_id, one of them.",
                    ),
                ]
            },
        },
    ],
}
UI_PART: Schema = {
    "type": "object",
    "description": "A UI message part: text ({type, text}), and on a user message file "
    "({type: file, mediaType, filename?, url: a data URL or an https URL}); a tool part on an "
    "assistant message (its results).",
    "required": ["type"],
    "properties": {
        "type": {"type": "string"},
        "text": STRING,
        "mediaType": {"type": "string"},
        "filename": STRING,
        "url": {"type": "string", "description": FILE_URL},
    },
}


# A JSON type as the codecs' typed reads (conversations.edge.bodies.Field) check and word it; JSON
# null is an absent field. Arrays and unions (messages, input) are checked by the codec's own parser,
# which names the item at fault.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "number": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
}


def type_problem(name: str, value: Any, schema: Schema) -> HttpError | None:
    """A 422 when ``value`` is not of the JSON type ``schema`` names (worded as the typed reads)."""
    rule = _TYPES.get(schema.get("type", ""))
    if value is None or rule is None or rule[0](value):
        return None
    return HttpError(422, "invalid_input", f"{name} must be {rule[1]}.", field=name)


def absent(value: Any) -> bool:
    return value is None


def empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def default(*values: Any) -> Callable[[Any], bool]:
    """Harmless when absent or one of ``values`` (a number equals a number, a bool only a bool)."""

    def same(value: Any, expected: Any) -> bool:
        if isinstance(expected, bool) or isinstance(value, bool):
            return value is expected
        if isinstance(expected, int | float):
            return isinstance(value, int | float) and value == expected
        return value == expected

    return lambda value: value is None or any(same(value, v) for v in values)


@dataclass(frozen=True, slots=True)
class Refused:
    """A field we cannot honour: refused with ``code`` unless its value is ``harmless`` (a no-op)."""

    code: str
    reason: str  # what is missing and what to send instead
    harmless: Callable[[Any], bool] = absent


def unsupported(reason: str, harmless: Callable[[Any], bool] = absent) -> Refused:
    return Refused(UNSUPPORTED, reason, harmless)


@dataclass(frozen=True, slots=True)
class RequestFields:
    """One endpoint's fields: ``honoured`` (the codec reads them; name → the schema of its value),
    ``no_ops`` (any value asks for nothing we do not do), ``refused`` (refused unless harmless);
    anything else is unknown. ``required``: the fields a request must carry."""

    honoured: Mapping[str, Schema]
    no_ops: frozenset[str] = frozenset()
    refused: Mapping[str, Refused] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def check(self, body: Mapping[str, Any]) -> None:
        """Raise a 422 :class:`HttpError` naming the first field that would be dropped, or the first
        honoured one whose value is not of its schema's JSON type."""
        for name, value in body.items():
            schema = self.honoured.get(name)
            if schema is not None:
                problem = type_problem(name, value, schema)
                if problem is not None:
                    raise problem
                continue
            if name in self.no_ops:
                continue
            rule = self.refused.get(name)
            if rule is None:
                raise HttpError(
                    422,
                    UNSUPPORTED,
                    f"{name} is not a field of this endpoint: remove it (the fields it takes: {FIELDS_DOC}).",
                    field=name,
                )
            if not rule.harmless(value):
                raise HttpError(422, rule.code, f"{name} is not supported: {rule.reason}.", field=name)

    def body_schema(self, without: frozenset[str] = frozenset(), **replaced: Schema) -> dict[str, Any]:
        """The OpenAPI schema of a request body: the honoured fields (``replaced`` where the
        configuration decides, ``without`` those a variant does not read), nothing else. A field
        accepted as a no-op, or refused unless harmless, is left out: a client has no reason to send it."""
        properties = {
            name: dict(replaced.get(name, schema))
            for name, schema in self.honoured.items()
            if name not in without
        }
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [name for name in self.required if name in properties]
        if required:
            schema["required"] = required
        return schema


def tool_item(kind: Any) -> bool:
    """A Responses input item of tool calling (``function_call``, ``function_call_output``,
    ``web_search_call``, ``mcp_call``…)."""
    return isinstance(kind, str) and (kind.endswith(("_call", "_call_output")) or kind.startswith("mcp_"))


LEGACY_FUNCTIONS = "the legacy functions/function_call fields are not supported: send tools and tool_choice"
TOOL_FIELDS = {
    "tools": Refused(TOOLS, NO_TOOLS, empty),
    "tool_choice": Refused(TOOLS, NO_TOOLS, default("none", "auto")),
}
SAMPLING = {
    "top_p": unsupported("only the default top_p (1) is supported: leave it out", default(1)),
    "top_logprobs": unsupported("log probabilities are not returned: leave top_logprobs out", default(0)),
}

CHAT_COMPLETIONS = RequestFields(
    honoured={
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "required": ["role"], "properties": {"content": CHAT_CONTENT}},
        },
        "model": MODEL,
        "stream": BOOLEAN,
        "stream_options": OBJECT,
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
        "max_completion_tokens": MAX_TOKENS,
        "response_format": OBJECT,
        "user": {"type": "string", "maxLength": SESSION_KEY_LENGTH, "pattern": NO_NUL},  # the session
        "tools": tools_schema(NESTED_TOOL),
        "tool_choice": tool_choice_schema(
            {
                "type": "object",
                "required": ["type", "function"],
                "properties": {
                    "type": {"type": "string", "enum": ["function"]},
                    "function": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": TOOL_NAME_SCHEMA},
                    },
                },
            }
        ),
        "parallel_tool_calls": BOOLEAN,
    },
    required=("messages",),
    no_ops=frozenset(
        {"metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "prediction"}
    ),
    refused={
        **SAMPLING,
        "functions": Refused(TOOLS, LEGACY_FUNCTIONS, empty),
        "function_call": Refused(TOOLS, LEGACY_FUNCTIONS, default("none", "auto")),
        "web_search_options": Refused(TOOLS, "web search is not supported yet: leave it out"),
        "audio": Refused(ATTACHMENTS, "audio output is not supported: leave audio out"),
        "modalities": unsupported(
            'only text output is supported: send ["text"] or leave it out',
            lambda v: v is None or v == ["text"],
        ),
        "n": unsupported("one choice per request is supported: send n: 1 or leave it out", default(1)),
        "stop": unsupported("stop sequences are not supported yet: leave stop out", empty),
        "seed": unsupported("seeded sampling is not supported: leave seed out"),
        "logprobs": unsupported("log probabilities are not returned: leave logprobs out", default(False)),
        "logit_bias": unsupported("logit_bias is not supported: leave it out", empty),
        "frequency_penalty": unsupported("only frequency_penalty 0 is supported: leave it out", default(0)),
        "presence_penalty": unsupported("only presence_penalty 0 is supported: leave it out", default(0)),
        "reasoning_effort": unsupported("reasoning_effort is not passed to the model: leave it out"),
        "verbosity": unsupported("verbosity is not passed to the model: leave it out"),
    },
)

RESPONSES = RequestFields(
    honoured={
        "model": MODEL,
        "input": {
            "oneOf": [
                {"type": "string", "pattern": NO_NUL_NON_BLANK},
                {
                    "type": "array",
                    "items": {"type": "object", "properties": {"content": RESPONSES_CONTENT}},
                    "minItems": 1,
                },
            ]
        },
        "instructions": STRING,
        "previous_response_id": STRING,
        "stream": BOOLEAN,
        "background": BOOLEAN,
        "tools": tools_schema(FLAT_TOOL),
        "tool_choice": FLAT_TOOL_CHOICE,
        "parallel_tool_calls": BOOLEAN,
        "temperature": TEMPERATURE,
        "max_output_tokens": MAX_TOKENS,
        "metadata": METADATA,
        "store": {"type": "boolean", "enum": [True]},
    },
    required=("input",),
    no_ops=frozenset(
        {"user", "safety_identifier", "prompt_cache_key", "service_tier", "stream_options"}
        | {"max_tool_calls", "truncation"}
    ),
    refused={
        **SAMPLING,
        "text": unsupported(
            'only plain text output is supported here: leave text out or send {"format": {"type": "text"}}',
            lambda v: v is None or v == {} or v == {"format": {"type": "text"}},
        ),
        "reasoning": unsupported("reasoning options are not passed to the model: leave reasoning out", empty),
        "include": unsupported("no extra output data is returned: leave include out", empty),
        "prompt": unsupported("stored prompt templates are not supported: send input and instructions"),
        "conversation": unsupported(
            "OpenAI conversations are not supported: continue with previous_response_id"
        ),
    },
)

NATIVE = RequestFields(
    honoured={
        "content": {  # + MAX_MESSAGE_BYTES
            "type": "string",
            "minLength": 1,
            "pattern": NO_NUL_NON_BLANK,
            "description": "The user's message (required unless role is tool).",
        },
        "client_message_id": CLIENT_ID,
        "provider": STRING,  # the configured providers: the schema says which
        "model": MODEL,
        "system": STRING,
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
        "json": BOOLEAN,
        "json_schema": OBJECT,
        "tools": tools_schema(FLAT_TOOL),
        "tool_choice": FLAT_TOOL_CHOICE,
        "parallel_tool_calls": BOOLEAN,
        # a tool message: the results of the calls of the answer it follows (docs/tools.md)
        "role": {"type": "string", "enum": ["user", "tool"]},
        "parts": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type", "call_id", "output"],
                "properties": {
                    "type": {"type": "string", "enum": ["tool_result"]},
                    "call_id": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": NO_NUL},
                    "output": {"type": "string", "pattern": NO_NUL},
                    "is_error": BOOLEAN,
                },
                "additionalProperties": False,
            },
        },
        # a user message's files: ids of uploads (POST /api/attachments), docs/attachments.md
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "format": "uuid", "description": "An attachment id."},
            "description": "Ids of uploaded attachments (POST /api/attachments) this message sends, in order.",
        },
    },
    # content for a user message (role user, the default); a tool message carries parts instead
    refused={
        **{
            name: Refused(
                UNSUPPORTED, "send files as attachment ids in attachments (POST /api/attachments first)"
            )
            for name in ("files", "images")
        },
    },
)

UI_ID_LENGTH = 128  # characters of an AI SDK UI message id
UI_ID: Schema = {"type": "string", "minLength": 1, "maxLength": UI_ID_LENGTH, "pattern": NO_NUL}
TRIGGERS = ("submit-message", "regenerate-message")
UI_MESSAGE: Schema = {
    "type": "object",
    "required": ["id", "role", "parts"],
    "properties": {
        "id": UI_ID,
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "parts": {"type": "array", "items": UI_PART},
    },
}
AI_SDK = RequestFields(
    honoured={
        "id": {**SESSION_KEY, "pattern": NO_NUL_NON_BLANK},
        "messages": {"type": "array", "items": UI_MESSAGE, "minItems": 1},
        "trigger": {"type": "string", "enum": list(TRIGGERS)},
        "messageId": UI_ID,
        "provider": STRING,
        "model": MODEL,
        "system": STRING,
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
        # the client's tools, as the AI SDK defines them: name -> {description, inputSchema}
        "tools": {  # an empty list is taken as no tools (it was a no-op before tools landed)
            "oneOf": [
                {
                    "type": "object",
                    "maxProperties": MAX_TOOLS,
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"description": STRING, "inputSchema": OBJECT},
                        "additionalProperties": False,
                    },
                },
                {"type": "array", "maxItems": 0},
            ]
        },
    },
    required=("id", "messages"),
)

# The Z.AI seed's body (``messages, model, stream, temperature, max_tokens``): other fields are
# ignored as the seed's own backend ignores them, but not tools (zai-sdk would have called them).
ZAI_TOOLS = RequestFields(
    honoured={},
    refused={
        **TOOL_FIELDS,
        "functions": Refused(TOOLS, NO_TOOLS, empty),
        "function_call": Refused(TOOLS, NO_TOOLS, default("none", "auto")),
    },
)


def check_tools(body: Mapping[str, Any], rules: RequestFields = ZAI_TOOLS) -> None:
    """Only the tool fields of ``rules`` (a protocol whose other unknown fields are its clients')."""
    rules.check({name: value for name, value in body.items() if name in rules.refused})
