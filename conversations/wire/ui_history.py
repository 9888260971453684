"""A chat's stored branch as the Vercel AI SDK's ``UIMessage[]`` (what ``useChat`` takes as
``messages``), served by ``GET /api/ai-sdk/chat/{id}/messages`` (see docs/ai-sdk.md).

The SDK keeps a tool loop in ONE assistant message of several steps (the answer's calls, the
client's results merged into them, the answer after them …), while the store keeps each model call
and each tool message as its own row. This module folds the rows back the way ``useChat`` held the
loop live, so a reloaded chat shows, and goes on from, the same messages: the loop's UI message id
is its first answer's (the id the live stream's ``start`` named). It is the server's copy of the
reference code in tests/js/ui_history.mjs (``toUIMessages``); tests check the two agree.

A user message is its text parts, then its files as the SDK's ``file`` parts
(``{"type": "file", "mediaType", "filename", "url"}``: ``url`` the attachment's download link,
``/api/attachments/{id}/content``, which answers to whoever may read the chat — or the https URL it
was sent as, when the server never stored it).

Pure: it reads message dicts (``id``, ``role``, ``status``, ``client_message_id``, ``parts`` as the
history API shows them), never the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

UIMessage = dict[str, Any]


def _tool_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """A stored call as the SDK's static tool part; a call cut mid-arguments is still streaming its
    input (its raw text), which the SDK shows but never runs."""
    state = "input-streaming" if part.get("incomplete") else "input-available"
    ui: dict[str, Any] = {"type": f"tool-{part['name']}", "toolCallId": part["id"], "state": state}
    given = part.get("input")
    value = given if given is not None else part.get("arguments")
    if value is not None:
        ui["input"] = value
    return ui


def _user_parts(parts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A user message's text and file parts, in order."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if part.get("type") == "text":
            out.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "file":
            ui: dict[str, Any] = {"type": "file", "mediaType": part.get("media_type", "")}
            if part.get("filename"):
                ui["filename"] = part["filename"]
            ui["url"] = part.get("download_url") if part.get("id") else part.get("url")
            out.append(ui)
    return out


def _answer_parts(parts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One model call: a step of its own, its text and its calls in the order they came."""
    out: list[dict[str, Any]] = [{"type": "step-start"}]
    for part in parts:
        if part.get("type") == "text":
            out.append({"type": "text", "text": part["text"], "state": "done"})
        elif part.get("type") == "tool_call":
            out.append(_tool_part(part))
    return out


def _merge_results(message: UIMessage | None, parts: Iterable[Mapping[str, Any]]) -> None:
    """A tool message's results, merged into the calls they answer (a result for no call shown is
    left out: the SDK has no part for a result on its own)."""
    if message is None:
        return
    for result in parts:
        if result.get("type") != "tool_result":
            continue
        call = next((p for p in message["parts"] if p.get("toolCallId") == result.get("call_id")), None)
        if call is None:
            continue
        if result.get("is_error"):
            call.update(state="output-error", errorText=result.get("output"))
        else:
            call.update(state="output-available", output=result.get("output"))


def ui_messages(branch: Iterable[Mapping[str, Any]]) -> list[UIMessage]:
    """``branch`` (one chat branch, oldest first) as UI messages.

    A user message is its text and file parts, named by the id its client gave it when there is one. Each
    answer opens an assistant message, unless it answers a tool message that followed an assistant
    message: then it is one more step of that one. The walk stops at an answer still being
    generated: the SDK's resume (``GET …/stream``) replays it whole, so it must not be shown twice.
    """
    messages: list[UIMessage] = []
    previous: Mapping[str, Any] | None = None
    for row in branch:
        role, parts = row.get("role"), row.get("parts") or []
        if row.get("status") == "streaming":
            break
        if role == "user":
            ui_id = row.get("client_message_id")
            messages.append(
                {
                    "id": str(ui_id if ui_id is not None else row["id"]),
                    "role": "user",
                    "parts": _user_parts(parts),
                }
            )
        elif role == "assistant":
            continues = (
                previous is not None
                and previous.get("role") == "tool"
                and bool(messages)
                and messages[-1]["role"] == "assistant"
            )
            if not continues:
                messages.append({"id": str(row["id"]), "role": "assistant", "parts": []})
            messages[-1]["parts"].extend(_answer_parts(parts))
        elif role == "tool":
            _merge_results(messages[-1] if messages else None, parts)
        previous = row
    return messages
