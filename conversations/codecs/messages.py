"""The one reader of a chat message list: ``[{"role", "content"}, ...]`` as OpenAI-style clients
send it (the OpenAI chat API, the Z.AI seed, the coding-agent seed).

:func:`read_messages` finds every problem at once (each codec reports them its own way: the
first as a sentence, or all as details), takes system messages apart as the system prompt, and
keeps the rest in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.base import ChatMessage

# Accepted roles and what each is stored as (OpenAI's newer ``developer`` is a system message).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # "messages", "messages[2]", "messages[2].role"
    message: str  # what it must be: "must be system, user or assistant"

    def sentence(self) -> str:
        return f"{self.field} {self.message}."

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class MessageList:
    system: str | None  # the system messages, joined by a blank line
    messages: tuple[ChatMessage, ...]  # user and assistant messages, in order
    problems: tuple[Problem, ...]

    @property
    def last(self) -> ChatMessage | None:
        return self.messages[-1] if self.messages else None


def _text(content: Any, text_parts: bool) -> str | None:
    if isinstance(content, str):
        return content
    if text_parts and isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
    return None


def read_messages(raw: Any, *, text_parts: bool = True, roles: dict[str, str] = ROLES) -> MessageList:
    """The messages of ``raw``; entries with a problem are left out and their problems listed.

    ``text_parts``: a content may also be a list of ``{"type": "text", "text"}`` parts (joined).
    """
    if not isinstance(raw, list) or not raw:
        problem = Problem("messages", "must be a non-empty array of {role, content}")
        return MessageList(None, (), (problem,))
    problems: list[Problem] = []
    system: list[str] = []
    messages: list[ChatMessage] = []
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "must be an object with role and content"))
            continue
        role = roles.get(item.get("role")) if isinstance(item.get("role"), str) else None
        text = _text(item.get("content"), text_parts)
        if role is None:
            problems.append(Problem(f"{where}.role", "must be system, user or assistant"))
        if text is None:
            kind = "a string or text parts" if text_parts else "a string"
            problems.append(Problem(f"{where}.content", f"must be {kind}"))
        if role is None or text is None:
            continue
        if role == "system":
            system.append(text)
        else:
            messages.append(ChatMessage(role, text))  # type: ignore[arg-type]
    return MessageList("\n\n".join(system) if system else None, tuple(messages), tuple(problems))
