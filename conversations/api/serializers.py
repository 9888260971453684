"""Serializers of the history API. Reads come annotated from the selectors (no N+1)."""

from __future__ import annotations

import json
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.api.schema import JSON_OBJECT_NO_NUL
from conversations.models import Artifact, Conversation, Message
from conversations.session_writes import SESSION_EXPORT_FORMAT
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


class MessageSerializer(serializers.ModelSerializer):
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)
    artifacts = ArtifactSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "content",
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


class ImportArtifactSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=0, max_value=MAX_STORED_INT)
    language = serializers.CharField(allow_blank=True, max_length=40)
    filename = serializers.CharField(allow_blank=True, max_length=255)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


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
    format = serializers.ChoiceField([SESSION_EXPORT_FORMAT])
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
