"""A stored answer as the Responses API shows it: the ``response`` object's shell and state, and
the turn's input items. Pure functions of the plain values the turn service reads
(:class:`conversations.turns.responses.StoredResponse`) and of the options the request stored
(:func:`conversations.codecs.openai_responses.shell_options`).
"""

from __future__ import annotations

from typing import Any, Protocol

from conversations.wire.openai_responses import AnswerState, ResponseShell, answer_state, response_id


class StoredResponse(Protocol):
    """A stored answer as the turn service reads it (:class:`conversations.turns.responses.StoredResponse`)."""

    message_id: str
    status: str
    content: str
    model: str
    finish_reason: str
    error_code: str
    error_message: str
    created_at: float
    options: dict[str, Any]
    user_message_id: str | None
    user_content: str

    @property
    def usage(self) -> dict[str, int] | None: ...


def response_shell(
    rid: str, options: dict[str, Any], *, model: str = "", created_at: float = 0
) -> ResponseShell:
    """A response's shell from the options its request stored (see :func:`shell_options`)."""
    return ResponseShell(
        id=rid,
        created_at=int(options.get("created_at") or created_at),
        model=model or options.get("model") or "default",
        instructions=options.get("instructions"),
        metadata=options.get("metadata") or {},
        temperature=options.get("temperature"),
        max_output_tokens=options.get("max_output_tokens"),
        background=bool(options.get("background")),
        previous_response_id=options.get("previous_response_id"),
    )


def stored_shell(found: StoredResponse) -> ResponseShell:
    return response_shell(
        response_id(found.message_id), found.options, model=found.model, created_at=found.created_at
    )


def stored_state(found: StoredResponse, text: str | None = None) -> AnswerState:
    """A stored answer's state; ``text``: what a running one has said so far."""
    return answer_state(
        found.status,
        found.content if text is None else text,
        finish_reason=found.finish_reason,
        error_code=found.error_code,
        error_message=found.error_message,
        usage=found.usage,
        model=found.model or None,
    )


def _input_item(item_id: str, role: str, text: str) -> dict[str, Any]:
    part = (
        {"type": "output_text", "text": text, "annotations": []}
        if role == "assistant"
        else {"type": "input_text", "text": text}
    )
    return {"id": item_id, "type": "message", "role": role, "status": "completed", "content": [part]}


def input_items_list(found: StoredResponse, *, order: str, limit: int, after: str | None) -> dict[str, Any]:
    """The turn's input items as OpenAI lists them: its transcript as sent, else its user message
    (``msg_<user message id hex>``; a transcript's earlier items get ``_<index>`` after it)."""
    items = found.options.get("input") or [{"role": "user", "text": found.user_content}]
    base_id = "msg_" + (found.user_message_id or found.message_id).replace("-", "")
    data = [
        _input_item(base_id if i == len(items) - 1 else f"{base_id}_{i}", item["role"], item["text"])
        for i, item in enumerate(items)
    ]
    if order == "desc":
        data.reverse()
    ids = [d["id"] for d in data]
    if after in ids:
        data = data[ids.index(after) + 1 :]
    page = data[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(data) > limit,
    }
