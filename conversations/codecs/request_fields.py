"""Which request fields each turn-starting endpoint honours, accepts as no-ops, and refuses.

A field a client sends is honoured, accepted because it asks for nothing (``n: 1``, ``user``,
``tools: []``), or refused with 422 naming it — never dropped: a client whose ``tools``, image or
``n: 2`` is ignored takes a confident answer to a question it did not ask. Tool calling and
attachments are refused with codes of their own (``tools_not_supported``,
``attachments_not_supported``) until they land; any other field we cannot honour, and any field
the endpoint does not know, with ``unsupported_parameter`` (as OpenAI refuses an unknown argument).
The tables here are the ones docs/api.md lists ("Request fields each endpoint honours").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conversations.edge.http_errors import HttpError

TOOLS = "tools_not_supported"
ATTACHMENTS = "attachments_not_supported"
UNSUPPORTED = "unsupported_parameter"
FIELDS_DOC = "docs/api.md, Request fields each endpoint honours"

NO_TOOLS = "tool calling is not supported yet: send the request without tools"
NO_ATTACHMENTS = "attachments (images, audio, files) are not supported yet: send text only"

# Content parts that carry something other than text, in every protocol we speak.
ATTACHMENT_PARTS = frozenset(
    {"image_url", "input_audio", "file", "input_image", "input_file", "image", "audio", "document"}
)


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
    """One endpoint's fields: ``honoured`` (the codec reads them), ``no_ops`` (any value asks for
    nothing we do not do), ``refused`` (refused unless harmless); anything else is unknown."""

    honoured: frozenset[str]
    no_ops: frozenset[str] = frozenset()
    refused: Mapping[str, Refused] = field(default_factory=dict)

    def check(self, body: Mapping[str, Any]) -> None:
        """Raise a 422 :class:`HttpError` naming the first field that would be dropped."""
        for name, value in body.items():
            if name in self.honoured or name in self.no_ops:
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


def tool_item(kind: Any) -> bool:
    """A Responses input item of tool calling (``function_call``, ``function_call_output``,
    ``web_search_call``, ``mcp_call``…)."""
    return isinstance(kind, str) and (kind.endswith(("_call", "_call_output")) or kind.startswith("mcp_"))


TOOL_FIELDS = {
    "tools": Refused(TOOLS, NO_TOOLS, empty),
    "tool_choice": Refused(TOOLS, NO_TOOLS, default("none", "auto")),
}
SAMPLING = {
    "top_p": unsupported("only the default top_p (1) is supported: leave it out", default(1)),
    "top_logprobs": unsupported("log probabilities are not returned: leave top_logprobs out", default(0)),
}

CHAT_COMPLETIONS = RequestFields(
    honoured=frozenset(
        {"messages", "model", "stream", "stream_options", "temperature", "max_tokens"}
        | {"max_completion_tokens", "response_format", "user"}
    ),
    no_ops=frozenset(
        {"metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "prediction"}
        | {"parallel_tool_calls"}
    ),
    refused={
        **TOOL_FIELDS,
        **SAMPLING,
        "functions": Refused(TOOLS, NO_TOOLS, empty),
        "function_call": Refused(TOOLS, NO_TOOLS, default("none", "auto")),
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
    honoured=frozenset(
        {"model", "input", "instructions", "previous_response_id", "stream", "background"}
        | {"temperature", "max_output_tokens", "metadata", "store"}
    ),
    no_ops=frozenset(
        {"user", "safety_identifier", "prompt_cache_key", "service_tier", "stream_options"}
        | {"parallel_tool_calls", "max_tool_calls", "truncation"}
    ),
    refused={
        **TOOL_FIELDS,
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
    honoured=frozenset(
        {"content", "client_message_id", "provider", "model", "system", "temperature", "max_tokens"}
        | {"json", "json_schema"}
    ),
    refused={
        "tools": Refused(TOOLS, NO_TOOLS, empty),
        **{name: Refused(ATTACHMENTS, NO_ATTACHMENTS, empty) for name in ("attachments", "files", "images")},
    },
)

AI_SDK = RequestFields(
    honoured=frozenset(
        {"id", "messages", "trigger", "messageId"}
        | {"provider", "model", "system", "temperature", "max_tokens"}
    ),
    refused={"tools": Refused(TOOLS, NO_TOOLS, empty)},
)

# The Z.AI seed's body (``messages, model, stream, temperature, max_tokens``): other fields are
# ignored as the seed's own backend ignores them, but not tools (zai-sdk would have called them).
ZAI_TOOLS = RequestFields(
    honoured=frozenset(),
    refused={
        **TOOL_FIELDS,
        "functions": Refused(TOOLS, NO_TOOLS, empty),
        "function_call": Refused(TOOLS, NO_TOOLS, default("none", "auto")),
    },
)


def check_tools(body: Mapping[str, Any], rules: RequestFields = ZAI_TOOLS) -> None:
    """Only the tool fields of ``rules`` (a protocol whose other unknown fields are its clients')."""
    rules.check({name: value for name, value in body.items() if name in rules.refused})
