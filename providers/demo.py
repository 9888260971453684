"""The offline demo provider: deterministic, no network, no key.

Like Django's locmem e-mail backend, it is a plain implementation chosen by settings
(``LLM_PROVIDER=demo``, the default when no provider key is configured). The reply says plainly that
it comes from the demo provider and how to configure a real one, echoes the last user message, and
carries a fenced ``python`` block so artifacts can be seen end to end. It streams word-sized pieces
with a small delay (``DEMO_DELAY``, default 0.02 s), so cancellation and streaming UIs behave as
with a real model. Usage is an estimate (word counts) and says so (``Usage.estimated``).

Client tools, so a tool loop can be tried end to end without a key: offered tools (``tool_choice``
not ``none``) after a user message, it calls one, deterministically — the one ``tool_choice`` names,
else the first — with arguments made from its JSON Schema (each property of ``parameters.properties``
in order: a string gets the user's text, an integer or number ``1``, a boolean ``true``, an array
``[]``, an object ``{}``, anything else ``null``), streamed like a model's call (id and name first,
then the arguments JSON in two pieces) and finished ``tool_calls``. Answered by a ``tool`` message, it
says what each tool returned (in JSON mode as a JSON object). It never runs a tool itself.

Attachments: it takes every type (images, PDFs, text files; remote ones arrive as bytes, the server
fetches them) and its answer first says what it received, one line per attachment of the request
(the history's included, in order): ``Attachment 1: image/png, 1234 bytes, sha256 <first 16 hex
digits>, "cat.png".`` (:func:`attachment_line`), then its usual answer; in JSON mode the lines are
the answer's ``attachments`` list. Its estimated usage counts them as the server estimates them
(:func:`~providers.base.attachment_tokens`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from .base import (
    ATTACHMENT_TYPES,
    InputFile,
    Provider,
    ProviderChunk,
    ProviderRequest,
    Timeouts,
    ToolCallChunk,
    ToolSpec,
    Usage,
    attachment_tokens,
)

DEFAULT_DELAY = 0.02
DEMO_MODEL = "demo"
_PIECES = re.compile(r"\s*\S+\s*|\s+")

HOW_TO_CONFIGURE = (
    "To talk to a real model, set LLM_PROVIDER and its key, e.g. LLM_PROVIDER=gemini with GEMINI_API_KEY, "
    "LLM_PROVIDER=openai with OPENAI_API_KEY, LLM_PROVIDER=zai with ZAI_API_KEY, or "
    "LLM_PROVIDER=openai-compatible with OPENAI_COMPATIBLE_BASE_URL, then restart the server."
)

NO_MODEL_NOTE = "(offline demo provider: no language model was called.)"
#: The value the demo gives a property of each JSON Schema type (any other type: null).
SCHEMA_SAMPLES: Mapping[str, object] = {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}

CODE_SAMPLE = '''```python
def greet(name: str) -> str:
    """Say hello: this block shows how code artifacts are rendered."""
    return f"Hello, {name}!"


print(greet("world"))
```'''


def _words(*texts: str | None) -> int:
    return sum(len(t.split()) for t in texts if t)


def _prompt_tokens(request: ProviderRequest) -> int:
    """The demo's input count: words, and each attachment as the server estimates it."""
    files = [file for message in request.messages for file in message.attachments]
    counted = sum(
        attachment_tokens(f.media_type, len(f.data) if f.data is not None else f.size) for f in files
    )
    return _words(request.system, *(m.content for m in request.messages)) + counted


def attachment_line(number: int, file: InputFile) -> str:
    """What the demo says it received as attachment ``number`` (1-based): its type, size, the first
    16 hex digits of its bytes' SHA-256 and its filename (JSON-quoted, when it has one); a remote
    one it was not given the bytes of, by its URL."""
    if file.data is not None:
        digest = hashlib.sha256(file.data).hexdigest()[:16]
        said = f"{file.media_type}, {len(file.data)} bytes, sha256 {digest}"
    else:
        said = f"{file.media_type}, from {file.url}"
    if file.filename:
        said += f", {json.dumps(file.filename, ensure_ascii=False)}"
    return f"Attachment {number}: {said}."


def attachment_lines(request: ProviderRequest) -> list[str]:
    """One :func:`attachment_line` per attachment of the request, in order."""
    files = [file for message in request.messages for file in message.attachments]
    return [attachment_line(number, file) for number, file in enumerate(files, 1)]


def _sample(schema: object, text: str) -> object:
    """The demo's value for a property of this schema: ``text`` for a string (see :data:`SCHEMA_SAMPLES`)."""
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(kind, list):  # ["string", "null"]: the first type that is not null
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return text
    return SCHEMA_SAMPLES.get(kind) if isinstance(kind, str) else None


def demo_arguments(tool: ToolSpec, text: str) -> str:
    """The JSON arguments the demo calls ``tool`` with for the user's ``text`` (deterministic)."""
    properties = tool.parameters.get("properties")
    if not isinstance(properties, Mapping):
        properties = {}
    return json.dumps({name: _sample(schema, text) for name, schema in properties.items()})


def _chosen_tool(request: ProviderRequest) -> ToolSpec:
    """The tool ``tool_choice`` names (``{"name": x}``), else the first offered."""
    choice = request.tool_choice
    name = choice.get("name") if isinstance(choice, Mapping) else None
    return next((t for t in request.tools if t.name == name), request.tools[0])


class DemoProvider(Provider):
    """Answers every request locally; see the module docstring for what the reply contains."""

    kind: ClassVar[str] = "demo"
    key_env_var: ClassVar[str | None] = None
    supports_tools: ClassVar[bool] = True

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str = DEMO_MODEL,
        timeouts: Timeouts | None = None,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self.delay = max(0.0, delay)

    def attachment_types(self, model: str) -> frozenset[str]:
        """Every type the server takes."""
        return ATTACHMENT_TYPES

    @staticmethod
    def reply_for(request: ProviderRequest) -> str:
        """The whole reply the demo streams for ``request`` (deterministic): what it received
        (:func:`attachment_lines`), then its answer."""
        lines = attachment_lines(request)
        reply = DemoProvider._answer(request)
        if not lines:
            return reply
        if request.json_output or request.json_schema is not None:
            return json.dumps({**json.loads(reply), "attachments": lines})
        return "\n".join(lines) + "\n\n" + reply

    @staticmethod
    def _answer(request: ProviderRequest) -> str:
        last = request.messages[-1] if request.messages else None
        if last is not None and last.role == "tool":
            named = [(r.name or "tool", r.output) for r in last.tool_results]
            if request.json_output or request.json_schema is not None:
                results = [{"name": name, "output": output} for name, output in named]
                return json.dumps({"provider": "demo", "tool_results": results, "note": NO_MODEL_NOTE})
            said = [f"The tool {name} returned: {output}" for name, output in named]
            return "\n".join([*said, NO_MODEL_NOTE])
        question = next((m.content.strip() for m in reversed(request.messages) if m.role == "user"), "")
        if request.json_output or request.json_schema is not None:
            note = "Offline demo provider: no language model was called. " + HOW_TO_CONFIGURE
            return json.dumps({"provider": "demo", "echo": question, "note": note})
        quoted = "\n".join(f"> {line}" for line in question.splitlines()) or "> (an empty message)"
        return (
            "This is the offline demo provider: no language model was called, so this answer is canned.\n\n"
            f"You asked:\n\n{quoted}\n\n"
            f"Here is a small code block, so you can see how artifacts are shown:\n\n{CODE_SAMPLE}\n\n"
            f"{HOW_TO_CONFIGURE}"
        )

    @staticmethod
    def calls_tool(request: ProviderRequest) -> bool:
        """Whether the demo answers ``request`` with a tool call: tools offered, not refused by
        ``tool_choice``, and the last message the user's."""
        return (
            bool(request.tools)
            and request.tool_choice != "none"
            and bool(request.messages)
            and request.messages[-1].role == "user"
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        if self.calls_tool(request):
            async for chunk in self._call_tool(request):
                yield chunk
            return
        reply = self.reply_for(request)
        pieces = _PIECES.findall(reply)
        finish = "stop"
        is_json = request.json_output or request.json_schema is not None
        if request.max_tokens is not None and len(pieces) > request.max_tokens and not is_json:
            pieces, finish = pieces[: request.max_tokens], "length"
        for piece in pieces:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield ProviderChunk(text=piece)
        prompt = _prompt_tokens(request)
        output = _words(*pieces)
        yield ProviderChunk(
            usage=Usage(prompt, output, prompt + output, estimated=True),
            finish_reason=finish,
            response_id=f"demo-{uuid.uuid4()}",
        )

    async def _call_tool(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        tool = _chosen_tool(request)
        arguments = demo_arguments(tool, request.messages[-1].content.strip())
        middle = len(arguments) // 2
        pieces = (
            ToolCallChunk(0, f"call_demo_{uuid.uuid4().hex[:8]}", tool.name, ""),
            ToolCallChunk(0, arguments=arguments[:middle]),
            ToolCallChunk(0, arguments=arguments[middle:]),
        )
        for piece in pieces:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield ProviderChunk(tool_calls=(piece,))
        prompt = _prompt_tokens(request)
        output = _words(tool.name, arguments)
        yield ProviderChunk(
            usage=Usage(prompt, output, prompt + output, estimated=True),
            finish_reason="tool_calls",
            response_id=f"demo-{uuid.uuid4()}",
        )
