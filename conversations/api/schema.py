"""OpenAPI for the endpoints that are not DRF views: turns (streamed), stop, resume, edit,
regenerate, the OpenAI-compatible endpoint and health. Added by a drf-spectacular postprocessing hook.

The request bodies of the turn-starting endpoints are built from the tables their codecs check
requests with (:mod:`conversations.codecs.request_fields`), and the event types from the events
themselves: what is documented is what is enforced. Everything is built anew per schema request;
no module state changes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from conversations.codecs import request_fields as fields
from conversations.codecs.request_fields import NO_NUL, NO_NUL_NON_BLANK
from conversations.events import EVENT_TYPES
from conversations.turns.request import SESSION_KEY_LENGTH

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
EVENT = {
    "type": "object",
    "description": "A turn event: started, delta, artifact, usage, completed or failed (see README).",
    "properties": {
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "seq": {"type": "integer", "minimum": 1},
        "message_id": {"type": "string", "format": "uuid"},
    },
    "required": ["type", "seq", "message_id"],
    "additionalProperties": True,
}
SESSION_KEY = {
    "name": "session_key",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": SESSION_KEY_LENGTH, "pattern": NO_NUL},
}
MESSAGE_ID = {
    "name": "message_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}


# Free-form JSON the API stores (session metadata): any JSON object without NUL characters, keys
# included (OpenAPI 3.0 has no propertyNames: the description says it). Two levels are described;
# deeper values are accepted too.
_JSON_SCALAR = [{"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}]
JSON_OBJECT_NO_NUL = {
    "type": "object",
    "description": (
        "Any JSON object (up to 20 kB, nested at most 64 levels); no key or string may contain a NUL "
        "(\\u0000) character or a lone surrogate."
    ),
    "additionalProperties": {
        "nullable": True,
        "anyOf": [
            *_JSON_SCALAR,
            {"type": "array", "items": {"nullable": True, "anyOf": _JSON_SCALAR}},
            {"type": "object", "additionalProperties": {"nullable": True, "anyOf": _JSON_SCALAR}},
        ],
    },
}


def _forbid_nul(schema: Any) -> None:
    """Every free string of a request refuses NUL (``StrictJSONParser``, PostgreSQL): say so."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_nul(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum"} & schema.keys():
        schema["pattern"] = NO_NUL
    for value in schema.values():
        _forbid_nul(value)


def _sse(data: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event stream's media type: ``schema`` describes one event, as OpenAPI 3.0 tools read it.

    Each event is its fields (``event``, ``data``, ``id``, ``retry``); ``data`` is text, and where every
    event of the stream carries a JSON object, :func:`_json_data` says which.
    """
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "data": data or {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }
    return {"schema": event}


def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    """An event's ``data``: the text of one JSON object (OpenAPI 3.0 has no ``contentSchema``: its
    shape goes in the ``x-content-schema`` extension)."""
    return {
        "type": "string",
        "pattern": "^\\{",
        "description": "One JSON object (x-content-schema).",
        "x-content-schema": schema,
    }


RESPONSES_EVENT = {
    "type": "object",
    "description": "A Responses API streaming event (response.created … response.completed, or error).",
    "properties": {"type": {"type": "string"}, "sequence_number": {"type": "integer", "minimum": 0}},
    "required": ["type", "sequence_number"],
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(c): {"description": "Error", "content": {"application/json": {"schema": ERROR}}} for c in codes
    }


def _turn_responses() -> dict[str, Any]:
    return {
        "200": {
            "description": "The turn: SSE (text/event-stream), NDJSON, or the whole turn as JSON, by Accept.",
            "content": {
                "text/event-stream": _sse(_json_data(EVENT)),
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            },
        },
        **_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 502, 503, 504),
    }


def _operation(op_id: str, summary: str, params: list, responses: dict, body: dict | None = None) -> dict:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": ["turns"],
        "parameters": params,
        "responses": responses,
        "security": [{"ApiKey": []}, {"cookieAuth": []}, {}],
    }
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": body}}, "required": True}
    return op


def _configured(registry: Any) -> dict[str, dict[str, Any]]:
    """The schemas the configuration decides: the configured providers, and the served models
    (GET /v1/models' ids), or the name pattern when a provider takes any name."""
    configured = registry.names(configured_only=True)
    open_to_any = any(registry.config(name).any_model for name in configured)
    model = (
        dict(fields.MODEL)
        if open_to_any
        else {"type": "string", "enum": [model_id for model_id, _ in registry.catalog()]}
    )
    return {"provider": {"type": "string", "enum": configured}, "model": model}


TOOL_MESSAGE = frozenset({"role", "parts"})


def _turn_body(registry: Any, kind: str = "send") -> dict[str, Any]:
    """The native turn body (NATIVE's fields), with what the configuration decides. ``send``: a
    user message (``content``) or a tool message (``role: tool`` and result ``parts``); ``edit``:
    a user message; ``regenerate``: neither (the same message is answered again)."""
    content = {**fields.NATIVE.honoured["content"], "maxLength": settings.MAX_MESSAGE_BYTES}
    configured = _configured(registry)
    user = fields.NATIVE.body_schema(TOOL_MESSAGE, content=content, **configured)
    if kind == "regenerate":
        del user["properties"]["content"]
        return user
    user["properties"]["role"] = {"type": "string", "enum": ["user"]}
    user["required"] = ["content"]
    if kind == "edit":
        return user
    tool = fields.NATIVE.body_schema(frozenset({"content"}), **configured)
    tool["properties"]["role"] = {"type": "string", "enum": ["tool"]}
    tool["required"] = ["role", "parts"]
    return {"oneOf": [user, tool]}


def add_non_drf_paths(result: dict, generator: Any, request: Any, public: bool) -> dict:
    from providers.registry import get_registry

    registry = get_registry()
    paths = result.setdefault("paths", {})
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("TurnEvent", EVENT)
    base = "/api/sessions/{session_key}/messages"
    page = {
        "type": "object",
        "properties": {
            "next": {"type": "string", "nullable": True},
            "previous": {"type": "string", "nullable": True},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
        },
    }
    listing = _operation(
        "session_messages_list",
        "List a session's messages, oldest first (cursor pagination)",
        [
            SESSION_KEY,
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "role",
                "in": "query",
                "schema": {"type": "string", "enum": ["system", "user", "assistant", "tool"]},
            },
            {
                "name": "status",
                "in": "query",
                "schema": {
                    "type": "string",
                    "enum": ["pending", "streaming", "complete", "interrupted", "failed"],
                },
            },
            {"name": "branch", "in": "query", "schema": {"type": "string", "format": "uuid"}},
        ],
        {
            "200": {"description": "A page of messages", "content": {"application/json": {"schema": page}}},
            **_errors(400, 401, 404),
        },
    )
    listing["tags"] = ["history"]
    paths[base] = {
        "get": listing,
        "post": _operation(
            "session_messages_send",
            "Send a message (or a tool message of results) and stream the answer",
            [SESSION_KEY],
            _turn_responses(),
            _turn_body(registry),
        ),
    }
    paths[base + "/{message_id}/edit"] = {
        "post": _operation(
            "message_edit",
            "Edit a user message: a new branch, streamed",
            [SESSION_KEY, MESSAGE_ID],
            _turn_responses(),
            _turn_body(registry, "edit"),
        )
    }
    paths[base + "/{message_id}/regenerate"] = {
        "post": _operation(
            "message_regenerate",
            "Answer the same message again: a new branch, streamed",
            [SESSION_KEY, MESSAGE_ID],
            _turn_responses(),
            _turn_body(registry, "regenerate"),
        )
    }
    paths[base + "/{message_id}/stop"] = {
        "post": _operation(
            "message_stop",
            "Stop an answer being generated",
            [SESSION_KEY, MESSAGE_ID],
            {
                "202": {
                    "description": "Stopping",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401, 404),
            },
        )
    }
    paths[base + "/{message_id}/stream"] = {
        "get": _operation(
            "message_stream_resume",
            "Resume an answer's event stream after Last-Event-ID",
            [
                SESSION_KEY,
                MESSAGE_ID,
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer", "minimum": 0}},
                {"name": "after_seq", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            {
                "200": {
                    "description": "SSE",
                    "content": {"text/event-stream": _sse(_json_data(EVENT))},
                },
                **_errors(400, 401, 404, 503),
            },
        )
    }
    paths["/v1/chat/completions"] = {
        "post": _operation(
            "openai_chat_completions",
            "OpenAI-compatible Chat Completions (streaming and not)",
            [],
            {
                "200": {
                    "description": "chat.completion, or chat.completion.chunk SSE (then data: [DONE])",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": _sse(),
                    },
                },
                **_errors(400, 401, 413, 415, 422, 429, 502, 503, 504),
            },
            fields.CHAT_COMPLETIONS.body_schema(model=_configured(registry)["model"]),
        )
    }
    model_object = {"type": "object", "required": ["id", "object", "created", "owned_by"]}
    paths["/v1/models"] = {
        "get": _operation(
            "openai_models_list",
            "OpenAI-compatible model list: every id a request may send as model",
            [],
            {
                "200": {
                    "description": "{object: list, data: [model]}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401),
            },
        )
    }
    paths["/v1/models/{model_id}"] = {
        "get": _operation(
            "openai_model_retrieve",
            "One model of the list",
            [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            {
                "200": {"description": "model", "content": {"application/json": {"schema": model_object}}},
                **_errors(401, 404),
            },
        )
    }
    response_id = [{"name": "response_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    response_object = {
        "description": "response",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    paths["/v1/responses"] = {
        "post": _operation(
            "openai_responses_create",
            "OpenAI-compatible Responses API: a stored turn (streamed events, or one response object)",
            [],
            {
                "200": {
                    "description": "response, or its SSE events (response.created … response.completed)",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": _sse(_json_data(RESPONSES_EVENT)),
                    },
                },
                **_errors(400, 401, 404, 409, 413, 415, 422, 429, 502, 503, 504),
            },
            fields.RESPONSES.body_schema(model=_configured(registry)["model"]),
        )
    }
    paths["/v1/responses/{response_id}"] = {
        "get": _operation(
            "openai_responses_retrieve",
            "A response now; stream=true&starting_after=N: its events after N (live while it runs)",
            [
                *response_id,
                {"name": "stream", "in": "query", "schema": {"type": "boolean"}},
                {"name": "starting_after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            {
                "200": {
                    "description": "response, or with stream=true its SSE events after starting_after",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": _sse(_json_data(RESPONSES_EVENT)),
                    },
                },
                **_errors(400, 401, 404, 503),
            },
        ),
        "delete": _operation(
            "openai_responses_delete",
            "Delete a response (its exchange leaves the conversation's tree)",
            response_id,
            {
                "200": {
                    "description": "{id, object: response.deleted, deleted: true}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401, 404, 409),
            },
        ),
    }
    paths["/v1/responses/{response_id}/cancel"] = {
        "post": _operation(
            "openai_responses_cancel",
            "Stop a background response wherever it runs (a finished one is returned as it is)",
            response_id,
            {"200": response_object, **_errors(400, 401, 404)},
        )
    }
    paths["/v1/responses/{response_id}/input_items"] = {
        "get": _operation(
            "openai_responses_input_items",
            "The input message items of a response",
            [
                *response_id,
                {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "after", "in": "query", "schema": {"type": "string"}},
            ],
            {
                "200": {
                    "description": "{object: list, data: [item]}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(400, 401, 404),
            },
        )
    }
    _add_ai_sdk_paths(paths, fields.AI_SDK.body_schema(**_configured(registry)))
    _add_attachment_paths(paths)
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Dependency health",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": {
                    "description": "Healthy",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "503": {
                    "description": "A dependency is down",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            },
        }
    }
    result.setdefault("components", {}).setdefault("securitySchemes", {}).setdefault(
        "cookieAuth", {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    )
    schemas.setdefault("Error", ERROR)
    for name, schema in schemas.items():
        if name.endswith("Request"):
            _forbid_nul(schema)
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or path in ("/health", "/api/schema/"):
                continue
            _forbid_nul(operation.get("parameters", []))
            responses = operation.setdefault("responses", {})
            for code in (400, 401, 403, 404, 405, 406, 408, 409, 413, 415, 422, 429):
                responses.setdefault(
                    str(code),
                    {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result


def _add_ai_sdk_paths(paths: dict[str, Any], chat_body: dict[str, Any]) -> None:
    """The Vercel AI SDK's DefaultChatTransport endpoints (docs/ai-sdk.md)."""
    chat_id = [
        {
            "name": "chat_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": NO_NUL_NON_BLANK},
        }
    ]
    ui_stream = {
        "description": "A UI message stream (x-vercel-ai-ui-message-stream: v1): data: <chunk> frames, then [DONE]",
        "content": {"text/event-stream": _sse()},
    }
    paths["/api/ai-sdk/chat"] = {
        "post": _operation(
            "ai_sdk_chat",
            "useChat's DefaultChatTransport: a stored turn of the chat `id`, as a UI message stream",
            [],
            {"200": ui_stream, **_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)},
            chat_body,
        )
    }
    paths["/api/ai-sdk/chat/{chat_id}/stream"] = {
        "get": _operation(
            "ai_sdk_chat_resume",
            "The SDK's resume: 204 when nothing runs in the chat, else the running answer's whole stream",
            chat_id,
            {
                "200": ui_stream,
                "204": {"description": "No answer is being generated"},
                **_errors(401, 404, 503),
            },
        )
    }
    paths["/api/ai-sdk/chat/{chat_id}/stop"] = {
        "post": _operation(
            "ai_sdk_chat_stop",
            "Stop the chat's running answer, wherever it runs (wire useChat's stop button here)",
            chat_id,
            {
                "202": {
                    "description": "{id, message_id, stopping: true}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401, 404),
            },
        )
    }
    paths["/api/ai-sdk/chat/{chat_id}/messages"] = {
        "get": _operation(
            "ai_sdk_chat_messages",
            "The chat's current branch as useChat's UIMessage[] (a tool loop is one assistant message)",
            chat_id,
            {
                "200": {
                    "description": "{messages: UIMessage[]}, oldest first: useChat's initial messages",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["messages"],
                                "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
                            }
                        }
                    },
                },
                **_errors(401, 404),
            },
        )
    }
    for path, operation_id, deprecated in (
        ("/api/ws-ticket", "ws_ticket", False),
        ("/api/ai-sdk/ws-ticket", "ai_sdk_ws_ticket", True),  # the first name, kept for its clients
    ):
        paths[path] = {
            "post": _operation(
                operation_id,
                "A single-use 60 s ticket for ws/chat/{key}/?ticket= and ws/ai-sdk/chat?ticket=, bound to "
                "the caller and the page's Origin"
                + (" (the same as POST /api/ws-ticket)" if deprecated else ""),
                [],
                {
                    "200": {
                        "description": "{ticket, expires_in, origin}",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(400, 401, 503),
                },
            )
        }
        paths[path]["post"]["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"origin": {"type": "string", "pattern": NO_NUL_NON_BLANK}},
                        "description": "origin: the page's Origin, when the request carries no Origin header",
                    }
                }
            },
        }
        if deprecated:
            paths[path]["post"]["deprecated"] = True


ATTACHMENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "media_type", "filename", "size", "sha256", "download_url", "sent"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "media_type": {
            "type": "string",
            "enum": ["image/png", "image/jpeg", "image/webp", "image/gif", "application/pdf", "text/plain"],
        },
        "filename": {"type": "string"},
        "size": {"type": "integer"},
        "sha256": {"type": "string"},
        "width": {"type": "integer", "nullable": True},
        "height": {"type": "integer", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "sent": {"type": "boolean"},
        "download_url": {"type": "string"},
        "unsent_expires_at": {"type": "string", "format": "date-time"},
        "url": {"type": "string", "description": "The https URL it was fetched from, if any."},
    },
}


def _add_attachment_paths(paths: dict[str, Any]) -> None:
    """``/api/attachments`` (docs/attachments.md): upload, metadata and removal, content."""
    json_attachment = {"application/json": {"schema": ATTACHMENT}}
    upload = _operation(
        "attachment_upload",
        "Upload one file (an image, a PDF or a text file; its type sniffed from its bytes) for a message's "
        "attachments; streamed past the request guard, capped at ATTACHMENT_MAX_BYTES",
        [],
        {
            "201": {"description": "The stored attachment", "content": json_attachment},
            **_errors(408, 413, 415, 429),
        },
    )
    upload["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "additionalProperties": False,
                }
            }
        },
    }
    item = [
        {
            "name": "attachment_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
    ]
    paths["/api/attachments"] = {"post": upload}
    paths["/api/attachments/{attachment_id}"] = {
        "get": _operation(
            "attachment_detail",
            "An attachment's metadata (its owner's only)",
            item,
            {"200": {"description": "The attachment", "content": json_attachment}, **_errors(401, 404)},
        ),
        "delete": _operation(
            "attachment_delete",
            "Delete an upload no message has sent (a sent one goes with its session: 409)",
            item,
            {"204": {"description": "Deleted"}, **_errors(401, 404, 409)},
        ),
    }
    paths["/api/attachments/{attachment_id}/content"] = {
        "get": _operation(
            "attachment_content",
            "The attachment's bytes, always as a download (Content-Disposition: attachment, nosniff)",
            item,
            {
                "200": {
                    "description": "The file's bytes, as sent",
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **_errors(401, 404, 410),
            },
        )
    }
    for operations in (paths["/api/attachments"], paths["/api/attachments/{attachment_id}"]):
        for operation in operations.values():
            operation["tags"] = ["attachments"]
    paths["/api/attachments/{attachment_id}/content"]["get"]["tags"] = ["attachments"]
