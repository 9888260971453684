"""A request for one chat turn, decoded by whichever edge it came from, and its limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from django.conf import settings

from accounts.callers import rate_limit_key
from conversations.errors import InvalidTurnInput, PayloadTooLarge
from providers.base import ChatMessage, InputFile, ToolResult, ToolSpec

SESSION_KEY_LENGTH = 128  # characters of a session key (a mount's prefix included)
CLIENT_MESSAGE_ID_LENGTH = 128  # characters of a client's idempotency key
TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 1_000_000)
MAX_TOOLS = 128  # tools one request may offer (OpenAI's limit)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_CHOICES = ("none", "auto", "required")  # or {"name": <an offered tool>}


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """A decoded request for one turn, whatever edge it came from.

    ``context``, when given, is the client's own transcript (OpenAI-compatible
    and seed clients send one) and replaces the stored history for this call.
    """

    session_key: str
    content: str
    owner_id: int | None = None
    client_message_id: str | None = None
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_output: bool = False
    json_schema: Mapping[str, object] | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    context: tuple[ChatMessage, ...] | None = None
    history_limit: int | None = None
    edit_of: str | None = None
    regenerate_of: str | None = None
    reply_to: str | None = None  # an earlier answer: the new message continues its branch
    rate_limit_key: str | None = None  # who is charged for this turn (API key, user or IP): see limit_key
    rate_limit: str | None = None  # this turn's rate ("20/60 seconds"): None → RATE_LIMIT_TURNS, "" → none
    system_default: str | None = None  # told to the provider when the conversation has no system prompt
    mount: str | None = None  # the seed mount the turn came through (its budget applies), set by its route
    api_key_id: int | None = None  # the API key the caller used (its budget, usage per key), set by the codec
    tools: tuple[ToolSpec, ...] = ()  # the client's tools, offered to the model
    tool_choice: str | Mapping[str, object] | None = None  # none, auto, required, or {"name": a tool}
    parallel_tool_calls: bool | None = None
    tool_results: tuple[ToolResult, ...] = ()  # the new message is these results (role tool), not text
    # The new user message's files: uploaded ones by ``ref`` (an attachment id), inline bytes
    # (``data``: a data URL's), or remote ``url``s (docs/attachments.md).
    attachments: tuple[InputFile, ...] = ()

    @property
    def continues_tools(self) -> bool:
        """The new message is the results of the calls of the answer it follows (role ``tool``)."""
        return bool(self.tool_results)

    @property
    def limit_key(self) -> str | None:
        """The rate-limit key the turn counts against: the one its edge set (its caller's,
        :attr:`accounts.callers.Caller.rate_limit_key`, or a protocol's own), else its key's or owner's."""
        return self.rate_limit_key or rate_limit_key(self.api_key_id, self.owner_id)

    def validate(self) -> None:
        """Raise :class:`InvalidTurnInput` or :class:`PayloadTooLarge` naming what to fix."""
        self._validate_tools()
        if self.continues_tools:
            if self.edit_of or self.regenerate_of:
                raise InvalidTurnInput(
                    "Tool results continue the newest answer: they cannot edit or regenerate a message.",
                    field="tool_results",
                )
            return self._validate_common()
        if self.attachments:
            if self.regenerate_of:
                raise InvalidTurnInput(
                    "Regenerate answers the same message again: send no attachments with it.",
                    field="attachments",
                )
            if len(self.attachments) > settings.ATTACHMENT_MAX_FILES:
                raise InvalidTurnInput(
                    f"{len(self.attachments)} attachments were sent: at most {settings.ATTACHMENT_MAX_FILES} go "
                    "with one message (ATTACHMENT_MAX_FILES).",
                    field="attachments",
                )
        elif self.regenerate_of is None and (not self.content or not self.content.strip()):
            raise InvalidTurnInput(
                "content is empty: send the user's message as a non-empty string.", field="content"
            )
        size = len(self.content.encode("utf-8", "surrogatepass"))
        if size > settings.MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(
                f"content is {size} bytes, over the {settings.MAX_MESSAGE_BYTES}-byte limit (MAX_MESSAGE_BYTES): "
                "shorten the message.",
                field="content",
            )
        self._validate_common()

    def _validate_common(self) -> None:
        if not self.session_key or len(self.session_key) > SESSION_KEY_LENGTH:
            raise InvalidTurnInput(
                f"session key must be 1 to {SESSION_KEY_LENGTH} characters.", field="session_key"
            )
        low, high = TEMPERATURE_RANGE
        if self.temperature is not None and not (low <= self.temperature <= high):
            raise InvalidTurnInput(f"temperature must be between {low:g} and {high:g}.", field="temperature")
        low, high = MAX_TOKENS_RANGE
        if self.max_tokens is not None and not (low <= self.max_tokens <= high):
            raise InvalidTurnInput(
                f"max_tokens must be a whole number from {low} to {high}.", field="max_tokens"
            )
        texts = (self.content, self.system or "", self.client_message_id or "", self.session_key)
        if any("\x00" in text for text in texts):
            raise InvalidTurnInput("Text must not contain NUL (\\u0000) characters: remove them.")
        if self.client_message_id is not None and not (
            0 < len(self.client_message_id) <= CLIENT_MESSAGE_ID_LENGTH
        ):
            raise InvalidTurnInput(
                f"client_message_id must be 1 to {CLIENT_MESSAGE_ID_LENGTH} characters.",
                field="client_message_id",
            )

    def _validate_tools(self) -> None:
        """The limits of docs/tools.md: at most :data:`MAX_TOOLS` tools with distinct names of
        :data:`TOOL_NAME`, each schema a JSON object within ``TOOL_SCHEMA_MAX_BYTES``; a named
        tool_choice among them; one result per call id, each within ``TOOL_RESULT_MAX_BYTES``."""
        if len(self.tools) > MAX_TOOLS:
            raise InvalidTurnInput(
                f"{len(self.tools)} tools were sent: at most {MAX_TOOLS} may be offered at once.",
                field="tools",
            )
        names: set[str] = set()
        for n, tool in enumerate(self.tools):
            where = f"tools[{n}]"
            if not TOOL_NAME.match(tool.name):
                raise InvalidTurnInput(
                    f"{where}: the tool name {tool.name[:80]!r} must be 1 to 64 letters, digits, _ or -.",
                    field="tools",
                )
            if tool.name in names:
                raise InvalidTurnInput(f"{where}: the tool name {tool.name!r} is given twice.", field="tools")
            names.add(tool.name)
            if not isinstance(tool.parameters, Mapping):
                raise InvalidTurnInput(
                    f"{where} ({tool.name}): its parameters must be a JSON Schema object.", field="tools"
                )
            size = len(orjson.dumps(tool.parameters))
            if size > settings.TOOL_SCHEMA_MAX_BYTES:
                raise PayloadTooLarge(
                    f"{where} ({tool.name}): its schema is {size} bytes, over the "
                    f"{settings.TOOL_SCHEMA_MAX_BYTES}-byte limit (TOOL_SCHEMA_MAX_BYTES).",
                    field="tools",
                )
        choice = self.tool_choice
        if isinstance(choice, Mapping):
            if choice.get("name") not in names:
                raise InvalidTurnInput(
                    f"tool_choice names the tool {choice.get('name')!r}, which is not among the tools sent.",
                    field="tool_choice",
                )
        elif choice is not None and choice not in TOOL_CHOICES:
            raise InvalidTurnInput(
                "tool_choice must be none, auto, required, or name one of the tools.", field="tool_choice"
            )
        if choice == "required" and not self.tools:
            raise InvalidTurnInput("tool_choice is required but no tools were sent.", field="tool_choice")
        seen: set[str] = set()
        for result in self.tool_results:
            if not result.call_id or len(result.call_id) > 128:
                raise InvalidTurnInput("Each tool result needs the call id it answers.", field="tool_results")
            if result.call_id in seen:
                raise InvalidTurnInput(
                    f"The call {result.call_id} has two results: send one per call.", field="tool_results"
                )
            seen.add(result.call_id)
            size = len(result.output.encode("utf-8", "surrogatepass"))
            if size > settings.TOOL_RESULT_MAX_BYTES:
                raise PayloadTooLarge(
                    f"The result of call {result.call_id} is {size} bytes, over the "
                    f"{settings.TOOL_RESULT_MAX_BYTES}-byte limit (TOOL_RESULT_MAX_BYTES): shorten it.",
                    field="tool_results",
                )
            if "\x00" in result.output or "\x00" in result.call_id:
                raise InvalidTurnInput(
                    "Text must not contain NUL (\\u0000) characters: remove them.", field="tool_results"
                )
