"""Serializers of the history API. Reads come annotated from the selectors (no N+1)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.api.schema import JSON_OBJECT_NO_NUL
from conversations.attachments.checks import AttachmentRefused, examine
from conversations.models import Artifact, Conversation, Message
from conversations.session_writes import (
    FILES_FORMATS,
    PARTS_FORMATS,
    SESSION_EXPORT_FORMAT,
    SESSION_EXPORT_FORMATS,
)
from conversations.turns.parts import shown_parts, tool_call_part, tool_result_part
from providers.base import ToolCall, ToolResult
from providers.defaults import PROVIDERS, split_model
from providers.registry import UnknownModel, UnknownProvider, get_registry

SESSION_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


PROVIDER_CHOICES = [("", "default"), *((n, n) for n in sorted(PROVIDERS))]
MODEL_OR_EMPTY = r"^(?:[A-Za-z0-9][A-Za-z0-9._:/-]{0,127})?$"


@extend_schema_field({"type": "string", "pattern": MODEL_OR_EMPTY, "maxLength": 128})
class ModelNameField(serializers.Field):
    """A model name (or empty for the provider's default)."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str) or not re.match(MODEL_OR_EMPTY, data):
            raise serializers.ValidationError("use letters, digits and . _ : / - (at most 128 characters).")
        return data

    def to_representation(self, value: str) -> str:
        return value


@extend_schema_field(JSON_OBJECT_NO_NUL)
class MetadataField(serializers.JSONField):
    """Free-form JSON kept with a session: an object (validated by the serializer)."""


MAX_STORED_INT = 2**31 - 1  # PostgreSQL integer columns (token counts, artifact positions)


class LastMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()
    created_at = serializers.DateTimeField()


class SessionSerializer(serializers.ModelSerializer):
    session_key = serializers.RegexField(SESSION_KEY_PATTERN, required=False, max_length=128)
    provider = serializers.ChoiceField(
        [("", "default"), *((n, n) for n in sorted(PROVIDERS))], required=False
    )
    model = ModelNameField(required=False)
    message_count = serializers.IntegerField(read_only=True)
    input_tokens = serializers.IntegerField(read_only=True)
    output_tokens = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(
        max_digits=18,
        decimal_places=8,
        read_only=True,
        allow_null=True,
        help_text="The answers' cost at their models' prices (USD); null when none is known.",
    )
    cost_unknown_answers = serializers.IntegerField(
        read_only=True, help_text="Answers whose model has no price (not in cost)."
    )
    last_message = serializers.SerializerMethodField()
    metadata = MetadataField(required=False)

    class Meta:
        model = Conversation
        fields = (
            "session_key",
            "title",
            "provider",
            "model",
            "system_prompt",
            "metadata",
            "created_at",
            "updated_at",
            "message_count",
            "input_tokens",
            "output_tokens",
            "cost",
            "cost_unknown_answers",
            "last_message",
        )
        read_only_fields = ("created_at", "updated_at")

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, obj: Conversation) -> dict | None:
        """The newest message's role, first 200 characters and time, kept on the session's row."""
        if obj.last_message_at is None:
            return None
        value = {
            "role": obj.last_message_role,
            "content": obj.last_message_preview,
            "created_at": obj.last_message_at,
        }
        return LastMessageSerializer(value).data

    def validate_metadata(self, value: object) -> object:
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object.")
        if len(json.dumps(value)) > 20_000:
            raise serializers.ValidationError("metadata is limited to 20 kB.")
        return value

    def validate(self, attrs: dict) -> dict:
        """Known provider, well-formed (or allow-listed) model; a provider need not have a key yet."""
        provider, model = split_model(attrs.get("model"), attrs.get("provider") or None)
        if model:
            if provider:
                attrs["provider"] = provider
            try:
                attrs["model"] = get_registry().resolve_model(provider, model)
            except (UnknownProvider, UnknownModel) as exc:
                raise serializers.ValidationError({"model": str(exc)}) from None
        return attrs


class SessionUpdateSerializer(SessionSerializer):
    """A session's editable fields. Its key names it in the URL and cannot be changed."""

    session_key = serializers.CharField(read_only=True)

    def validate(self, attrs: dict) -> dict:
        # Not in the request schema; a body that sends another key is refused, not silently ignored.
        sent = self.initial_data.get("session_key") if isinstance(self.initial_data, dict) else None
        if sent is not None and sent != self.instance.session_key:
            raise serializers.ValidationError(
                {"session_key": "cannot be changed: create a new session instead."}
            )
        return super().validate(attrs)


class ArtifactSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ("id", "position", "language", "filename")


class ArtifactSerializer(serializers.ModelSerializer):
    message_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Artifact
        fields = ("id", "message_id", "position", "language", "filename", "content", "created_at")


_STRING = {"type": "string"}
_FILE_PROPERTIES = {
    "type": {"type": "string", "enum": ["file"]},
    "id": {"type": "string", "description": "The attachment's id."},
    "media_type": _STRING,
    "filename": _STRING,
    "size": {"type": "integer", "description": "Bytes."},
    "sha256": {"type": "string", "description": "Hex SHA-256 of the bytes."},
    "url": {"type": "string", "description": "The https URL it was fetched from, if any."},
    "detail": {"type": "string", "description": "The image detail the client asked, if any."},
}
FILE_PART_SCHEMA = {
    "type": "object",
    "description": (
        "A file the user message carries (an attachment, after its text), its bytes at download_url "
        "(to who may read the session)."
    ),
    "required": ["type", "id", "media_type", "filename", "size", "download_url"],
    "properties": {**_FILE_PROPERTIES, "download_url": _STRING},
}
IMPORT_FILE_PART_SCHEMA = {
    "type": "object",
    "description": (
        "chat-session/3: a file a user message carries, with its bytes (data, base64); checked as an "
        "upload is (size and sha256 as the part says, an allowed type matching media_type) and stored "
        "as a new attachment."
    ),
    "required": ["type", "id", "media_type", "filename", "size", "sha256", "data"],
    "properties": {**_FILE_PROPERTIES, "data": {"type": "string", "format": "byte"}},
}
# One typed part of a message (conversations/turns/parts.py), as the history API shows it.
MESSAGE_PART_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "description": "Text.",
            "required": ["type", "text"],
            "properties": {"type": {"type": "string", "enum": ["text"]}, "text": _STRING},
        },
        {
            "type": "object",
            "description": (
                "A tool call the answer made: arguments is the JSON text as the model produced it, input "
                "its parsed value (absent when it does not parse); incomplete when the answer ended "
                "mid-arguments (never a call to run); metadata is the provider's, opaque."
            ),
            "required": ["type", "id", "name", "arguments"],
            "properties": {
                "type": {"type": "string", "enum": ["tool_call"]},
                "id": _STRING,
                "name": _STRING,
                "arguments": _STRING,
                "input": {"description": "Any JSON value."},
                "incomplete": {"type": "boolean"},
                "metadata": {"type": "object"},
            },
        },
        {
            "type": "object",
            "description": "The result of one call, in a tool message.",
            "required": ["type", "call_id", "output", "is_error"],
            "properties": {
                "type": {"type": "string", "enum": ["tool_result"]},
                "call_id": _STRING,
                "name": _STRING,
                "output": _STRING,
                "is_error": {"type": "boolean"},
            },
        },
        FILE_PART_SCHEMA,
    ],
    "discriminator": {"propertyName": "type"},
}


class MessageSerializer(serializers.ModelSerializer):
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)
    artifacts = ArtifactSummarySerializer(many=True, read_only=True)
    parts = serializers.SerializerMethodField(
        help_text=(
            "The message as typed parts, in order: its text, an answer's tool calls, a tool message's "
            "results, a user message's files. A message that is only text shows one text part (none "
            "when it is empty)."
        )
    )

    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "content",
            "parts",
            "status",
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "reasoning_tokens",
            "usage_estimated",
            "cost",
            "finish_reason",
            "response_id",
            "error_code",
            "error_message",
            "client_message_id",
            "parent_id",
            "created_at",
            "completed_at",
            "artifacts",
        )
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": MESSAGE_PART_SCHEMA})
    def get_parts(self, obj: Message) -> list[dict]:
        """Read from the row (``Message.parts``): no query of its own."""
        return shown_parts(obj.content, obj.parts)


class ImportArtifactSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=0, max_value=MAX_STORED_INT)
    language = serializers.CharField(allow_blank=True, max_length=40)
    filename = serializers.CharField(allow_blank=True, max_length=255)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


IMPORT_PART_SCHEMA = {  # the same, a file with its bytes instead of its link (chat-session/3)
    **MESSAGE_PART_SCHEMA,
    "oneOf": [*MESSAGE_PART_SCHEMA["oneOf"][:-1], IMPORT_FILE_PART_SCHEMA],
}


@extend_schema_field({"type": "array", "items": IMPORT_PART_SCHEMA})
class ImportPartsField(serializers.JSONField):
    """A message's parts (chat-session/2 and /3), checked with the message's index by
    :func:`imported_parts` (the session's serializer knows the index; a field does not)."""


PART_KEYS = {  # each kind of part: its required keys, then the optional ones (conversations/turns/parts.py)
    "text": ({"type", "text"}, set()),
    "tool_call": ({"type", "id", "name", "arguments"}, {"input", "metadata", "incomplete"}),
    "tool_result": ({"type", "call_id", "output"}, {"name", "is_error"}),
    "file": ({"type", "id", "media_type", "filename", "size", "sha256", "data"}, {"url", "detail"}),
}
PART_ROLES = {
    "tool_call": Message.Role.ASSISTANT,
    "tool_result": Message.Role.TOOL,
    "file": Message.Role.USER,
}
TYPES = {
    "text": str,
    "id": str,
    "name": str,
    "arguments": str,
    "call_id": str,
    "output": str,
    "media_type": str,
    "filename": str,
    "size": int,
    "sha256": str,
    "data": str,
    "url": str,
    "detail": str,
}
SHA256 = re.compile(r"^[0-9a-f]{64}$")
DETAILS = ("auto", "low", "high", "original")  # OpenAI's image detail levels, as a turn takes them


def imported_parts(role: str, parts: object, *, files: bool = True) -> list[dict]:
    """An imported message's parts, in the stored shape, or a ValidationError saying which part is
    wrong and how: each a JSON object of a known type with its keys; tool_call parts only in
    assistant messages, tool_result parts only (and at least one) in tool messages, file parts
    (``files``: chat-session/3) only in user messages, each with its bytes (:func:`_file_bytes`)."""
    if parts is None:
        parts = []
    if not isinstance(parts, list):
        raise serializers.ValidationError("parts must be a list of parts.")
    kinds = [kind for kind in PART_KEYS if files or kind != "file"]
    for n, part in enumerate(parts):
        where = f"parts[{n}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "file" and not files:
            raise serializers.ValidationError(
                f"{where} is a file part: files (with their bytes) came with {SESSION_EXPORT_FORMAT}: "
                "export the session again and import that."
            )
        if kind not in kinds:
            raise serializers.ValidationError(
                f"{where} must be a JSON object whose type is one of {', '.join(kinds)}."
            )
        required, optional = PART_KEYS[kind]
        if kind == "file" and "data" not in part:
            raise serializers.ValidationError(
                f"{where} (file) lacks data, its bytes in base64: its file was no longer stored when the "
                "session was exported. Remove the part to import the rest."
            )
        if missing := sorted(required - part.keys()):
            raise serializers.ValidationError(f"{where} ({kind}) lacks {', '.join(missing)}.")
        if unknown := sorted(part.keys() - required - optional):
            raise serializers.ValidationError(f"{where} ({kind}) has unknown keys: {', '.join(unknown)}.")
        for key, value in part.items():
            wanted = TYPES.get(key, bool if key in ("incomplete", "is_error") else None)
            if wanted is not None and (
                not isinstance(value, wanted) or isinstance(value, bool) != (wanted is bool)
            ):
                raise serializers.ValidationError(f"{where}.{key} must be a {wanted.__name__}.")
            if key == "metadata" and not isinstance(value, dict):
                raise serializers.ValidationError(f"{where}.metadata must be a JSON object.")
        if kind in PART_ROLES and role != PART_ROLES[kind]:
            raise serializers.ValidationError(
                f"{where} is a {kind} part: only a {PART_ROLES[kind]} message carries one, not a {role} message."
            )
    results_only = bool(parts) and all(part["type"] == "tool_result" for part in parts)
    if role == Message.Role.TOOL and not results_only:
        raise serializers.ValidationError(
            "a tool message is its tool_result parts: send at least one, and no other kind."
        )
    count = sum(part["type"] == "file" for part in parts)
    if count > settings.ATTACHMENT_MAX_FILES:
        raise serializers.ValidationError(
            f"{count} file parts: at most {settings.ATTACHMENT_MAX_FILES} go with one message "
            "(ATTACHMENT_MAX_FILES)."
        )
    return [_stored_part(part, f"parts[{n}]") for n, part in enumerate(parts)]


def _file_bytes(part: dict, where: str) -> bytes:
    """A file part's bytes, checked as an upload is: its ``data`` base64, of the ``size`` and
    ``sha256`` the part says (anything else was changed since the export), a type and dimensions
    the server takes (:func:`~conversations.attachments.checks.examine`: sniffed from the bytes,
    matching the part's ``media_type``)."""
    try:
        data = base64.b64decode(part["data"], validate=True)
    except (binascii.Error, ValueError):
        raise serializers.ValidationError(f"{where}.data must be the file's bytes in base64.") from None
    if not SHA256.match(part["sha256"]):
        raise serializers.ValidationError(f"{where}.sha256 must be 64 lowercase hex digits.")
    if "url" in part and not part["url"].startswith(("https://", "http://")):
        raise serializers.ValidationError(f"{where}.url must be the http(s) URL the file was fetched from.")
    if "detail" in part and part["detail"] not in DETAILS:
        raise serializers.ValidationError(f"{where}.detail must be one of {', '.join(DETAILS)}.")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != part["size"] or digest != part["sha256"]:
        raise serializers.ValidationError(
            f"{where} (file {part['filename']!r}) was changed since it was exported: its data is "
            f"{len(data)} bytes with sha256 {digest}, the part says {part['size']} bytes with sha256 "
            f"{part['sha256']}. Import the export as it was written."
        )
    try:
        examine(
            io.BytesIO(data),
            size=len(data),
            filename=part["filename"],
            declared=part["media_type"],
            where=where,
        )
    except AttachmentRefused as exc:
        raise serializers.ValidationError(exc.message) from None
    return data


def _stored_part(part: dict, where: str) -> dict:
    """The part as a turn stores it (``input`` derived from ``arguments``, not taken as sent); a file
    part with its bytes as ``data`` (stored again by the import, which names its new attachment)."""
    if part["type"] == "file":
        return {**part, "data": _file_bytes(part, where)}
    if part["type"] == "tool_call":
        call = ToolCall(part["id"], part["name"], part["arguments"], part.get("metadata") or {})
        return tool_call_part(call, incomplete=bool(part.get("incomplete")))
    if part["type"] == "tool_result":
        return tool_result_part(
            ToolResult(part["call_id"], part["output"], part.get("is_error", False), part.get("name", ""))
        )
    return dict(part)


class ImportMessageSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64)
    parent_id = serializers.CharField(max_length=64, allow_null=True, required=False)
    role = serializers.ChoiceField(Message.Role.choices)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    status = serializers.ChoiceField(Message.Status.choices)
    provider = serializers.CharField(allow_blank=True, required=False, max_length=40)
    model = serializers.CharField(allow_blank=True, required=False, max_length=128)
    input_tokens = serializers.IntegerField(
        min_value=0, max_value=MAX_STORED_INT, allow_null=True, required=False
    )
    output_tokens = serializers.IntegerField(
        min_value=0, max_value=MAX_STORED_INT, allow_null=True, required=False
    )
    usage_estimated = serializers.BooleanField(required=False)
    finish_reason = serializers.CharField(allow_blank=True, required=False, max_length=40)
    error_code = serializers.CharField(allow_blank=True, required=False, max_length=60)
    error_message = serializers.CharField(allow_blank=True, required=False, trim_whitespace=False)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True, required=False)
    artifacts = ImportArtifactSerializer(many=True, required=False)
    parts = ImportPartsField(
        required=False,
        help_text=(
            "chat-session/2 and /3: the message's typed parts; absent when only text. /3: a user "
            "message's files, each with its bytes (data, base64)."
        ),
    )


class ImportSessionSerializer(serializers.Serializer):
    session_key = serializers.RegexField(SESSION_KEY_PATTERN, max_length=100)
    title = serializers.CharField(allow_blank=True, required=False, max_length=200)
    provider = serializers.ChoiceField(PROVIDER_CHOICES, required=False)
    model = ModelNameField(required=False)
    system_prompt = serializers.CharField(allow_blank=True, required=False, trim_whitespace=False)
    metadata = MetadataField(required=False)

    def validate_metadata(self, value: object) -> object:
        return SessionSerializer.validate_metadata(self, value)


class SessionImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        list(SESSION_EXPORT_FORMATS),
        help_text=(
            f"{SESSION_EXPORT_FORMAT} (what export writes: parts, and each file's bytes); chat-session/2 "
            "(parts without files) and chat-session/1 (text only) still import."
        ),
    )
    session = ImportSessionSerializer()
    messages = ImportMessageSerializer(many=True, max_length=10_000)

    def validate_messages(self, messages: list[dict]) -> list[dict]:
        ids = [m["id"] for m in messages]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("message ids must be unique.")
        known = set(ids)
        for m in messages:
            if m.get("parent_id") and m["parent_id"] not in known:
                raise serializers.ValidationError(
                    f"parent_id {m['parent_id']} of message {m['id']} is not in the export."
                )
        return messages

    def validate(self, attrs: dict) -> dict:
        """Each message's parts (chat-session/2 and /3; files with their bytes in /3 only), named by
        the message's index; a tool message's results must answer calls its parent made; one
        attachment named by several messages (an edit resent it) is the same file in each."""
        with_parts = attrs["format"] in PARTS_FORMATS
        with_files = attrs["format"] in FILES_FORMATS
        calls: dict[str, set[str]] = {}
        files: dict[str, str] = {}  # attachment id → sha256
        for n, m in enumerate(attrs["messages"]):
            where = f"messages[{n}] (id {m['id']})"
            if not with_parts and ("parts" in m or m["role"] == Message.Role.TOOL):
                raise serializers.ValidationError(
                    {
                        "messages": f"{where}: parts and tool messages came with {PARTS_FORMATS[0]}: "
                        f"send that format or {SESSION_EXPORT_FORMAT} (chat-session/1 holds text messages only)."
                    }
                )
            try:
                m["parts"] = imported_parts(m["role"], m.get("parts"), files=with_files)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"messages": f"{where}: {exc.detail[0]}"}) from None
            for k, part in enumerate(m["parts"]):
                if part["type"] == "file" and files.setdefault(part["id"], part["sha256"]) != part["sha256"]:
                    raise serializers.ValidationError(
                        {
                            "messages": f"{where}: parts[{k}] names attachment {part['id']} with other bytes "
                            "than an earlier message does: one attachment id is one file."
                        }
                    )
            calls[m["id"]] = {p["id"] for p in m["parts"] if p["type"] == "tool_call"}
        for n, m in enumerate(attrs["messages"]):
            made = calls.get(m.get("parent_id") or "", set())
            stray = [
                p["call_id"] for p in m["parts"] if p["type"] == "tool_result" and p["call_id"] not in made
            ]
            if stray:
                raise serializers.ValidationError(
                    {
                        "messages": f"messages[{n}] (id {m['id']}): the results of {', '.join(stray)} answer "
                        "no call of its parent message: a tool message follows the answer whose calls it answers."
                    }
                )
        return attrs
