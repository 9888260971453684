"""The one reader of a chat message list: ``[{"role", "content"}, ...]`` as OpenAI-style clients
send it (the OpenAI chat API, the Z.AI seed, the coding-agent seed).

:func:`read_messages` finds every problem at once (each codec reports them its own way: the
first as a sentence, or all as details), takes system messages apart as the system prompt, and
keeps the rest in order. What a message carries besides text — a tool call or result, an image,
audio or a file — is a problem of its own (``tools_not_supported``, ``attachments_not_supported``),
never dropped: an answer to the text alone would answer a question the client did not ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversations.codecs.request_fields import ATTACHMENT_PARTS, ATTACHMENTS, TOOLS
from providers.base import ChatMessage

# Accepted roles and what each is stored as (OpenAI's newer ``developer`` is a system message).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
TOOL_ROLES = ("tool", "function")  # a tool's result, sent back for the model to read
TOOL_KEYS = ("tool_calls", "function_call")  # an assistant message that called tools
INVALID = "invalid_input"


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # "messages", "messages[2]", "messages[2].role"
    message: str  # what it must be: "must be system, user or assistant"
    code: str = INVALID  # or tools_not_supported, attachments_not_supported

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


def _text(content: Any, text_parts: bool, where: str) -> str | Problem:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ATTACHMENT_PARTS:
                return Problem(
                    f"{where}.content[{n}]",
                    f"is {kind}: attachments are not supported yet, send text only",
                    ATTACHMENTS,
                )
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if text_parts and len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    kind = "a string or text parts" if text_parts else "a string"
    return Problem(f"{where}.content", f"must be {kind}")


def _tool_problem(item: dict[str, Any], where: str) -> Problem | None:
    if item.get("role") in TOOL_ROLES:
        return Problem(
            f"{where}.role",
            f"is {item['role']}: tool calling is not supported yet, send no tool results",
            TOOLS,
        )
    for key in TOOL_KEYS:
        if item.get(key):
            return Problem(
                f"{where}.{key}",
                "is a tool call: tool calling is not supported yet, send no tool calls",
                TOOLS,
            )
    if item.get("audio"):
        return Problem(
            f"{where}.audio", "is audio: attachments are not supported yet, send text", ATTACHMENTS
        )
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
        unsupported = _tool_problem(item, where)
        if unsupported is not None:
            problems.append(unsupported)
            continue
        role = roles.get(item.get("role")) if isinstance(item.get("role"), str) else None
        text = _text(item.get("content"), text_parts, where)
        if role is None:
            problems.append(Problem(f"{where}.role", "must be system, user or assistant"))
        if isinstance(text, Problem):
            problems.append(text)
        if role is None or isinstance(text, Problem):
            continue
        if role == "system":
            system.append(text)
        else:
            messages.append(ChatMessage(role, text))  # type: ignore[arg-type]
    return MessageList("\n\n".join(system) if system else None, tuple(messages), tuple(problems))
