"""A request for one chat turn, decoded by whichever edge it came from, and its limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

from accounts.callers import rate_limit_key
from conversations.errors import InvalidTurnInput, PayloadTooLarge
from providers.base import ChatMessage

SESSION_KEY_LENGTH = 128  # characters of a session key (a mount's prefix included)
CLIENT_MESSAGE_ID_LENGTH = 128  # characters of a client's idempotency key
TEMPERATURE_RANGE = (0.0, 2.0)
MAX_TOKENS_RANGE = (1, 1_000_000)


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

    @property
    def limit_key(self) -> str | None:
        """The rate-limit key the turn counts against: the one its edge set (its caller's,
        :attr:`accounts.callers.Caller.rate_limit_key`, or a protocol's own), else its key's or owner's."""
        return self.rate_limit_key or rate_limit_key(self.api_key_id, self.owner_id)

    def validate(self) -> None:
        """Raise :class:`InvalidTurnInput` or :class:`PayloadTooLarge` naming what to fix."""
        if self.regenerate_of is None and (not self.content or not self.content.strip()):
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
