"""History API views: thin DRF generics; writes go through session_writes, reads through selectors."""

from __future__ import annotations

import datetime as dt
import mimetypes
import uuid
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.callers import Caller, client_ip
from conversations import selectors, session_writes
from conversations.api.pagination import ArtifactCursor, MessageCursor, SessionCursor
from conversations.api.permissions import owner_id_of, require_owner
from conversations.api.serializers import (
    ArtifactSerializer,
    MessageSerializer,
    SessionImportSerializer,
    SessionSerializer,
    SessionUpdateSerializer,
)
from conversations.models import Conversation, Message
from providers.registry import get_registry

LANGUAGE_TYPES = {
    "python": ("text/x-python", "py"),
    "javascript": ("text/javascript", "js"),
    "js": ("text/javascript", "js"),
    "typescript": ("text/x-typescript", "ts"),
    "ts": ("text/x-typescript", "ts"),
    "html": ("text/html", "html"),
    "css": ("text/css", "css"),
    "json": ("application/json", "json"),
    "bash": ("text/x-shellscript", "sh"),
    "sh": ("text/x-shellscript", "sh"),
    "sql": ("application/sql", "sql"),
    "markdown": ("text/markdown", "md"),
    "md": ("text/markdown", "md"),
    "yaml": ("application/yaml", "yaml"),
    "go": ("text/x-go", "go"),
    "rust": ("text/x-rust", "rs"),
}


def _datetime_param(request: Request, name: str):
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: "must be an ISO-8601 date-time such as 2026-01-31T12:00:00Z."})
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)  # PostgreSQL refuses offsets beyond ±15:59
    except OverflowError:
        raise ValidationError({name: "is out of range."}) from None


class OwnedSessionMixin:
    """Finds the session in the URL among the caller's own: another owner's is a 404, like a missing one."""

    def get_conversation(self) -> Conversation:
        conversation = selectors.conversation_for_owner(owner_id_of(self.request), self.kwargs["session_key"])
        if conversation is None:
            raise NotFound("No session with this key.")
        return conversation


@extend_schema(
    parameters=[
        OpenApiParameter(
            "q", str, description="Search titles and message content (full-text on PostgreSQL)."
        ),
        OpenApiParameter("provider", str),
        OpenApiParameter("model", str),
        OpenApiParameter("created_after", OpenApiTypes.DATETIME),
        OpenApiParameter("created_before", OpenApiTypes.DATETIME),
    ]
)
class SessionListCreate(generics.ListCreateAPIView):
    serializer_class = SessionSerializer
    pagination_class = SessionCursor

    def get_queryset(self):
        params = self.request.query_params
        return selectors.session_list_for_owner(
            require_owner(self.request, "Listing and searching sessions"),
            q=params.get("q", "").strip()[:200],
            provider=params.get("provider", ""),
            model=params.get("model", ""),
            created_after=_datetime_param(self.request, "created_after"),
            created_before=_datetime_param(self.request, "created_before"),
        )

    def perform_create(self, serializer: SessionSerializer) -> None:
        data = dict(serializer.validated_data)
        key = data.pop("session_key", None) or f"sess-{uuid.uuid4().hex[:12]}"
        conversation = session_writes.conversation_create(
            owner_id=owner_id_of(self.request), session_key=key, **data
        )
        serializer.instance = selectors.session_for_owner(conversation.owner_id, conversation.session_key)


class SessionDetail(OwnedSessionMixin, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = SessionSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self) -> Conversation:
        conversation = selectors.session_for_owner(owner_id_of(self.request), self.kwargs["session_key"])
        if conversation is None:
            raise NotFound("No session with this key.")
        return conversation

    def get_serializer_class(self) -> type[SessionSerializer]:
        return SessionUpdateSerializer if self.request.method == "PATCH" else SessionSerializer

    def perform_update(self, serializer: SessionSerializer) -> None:
        super().perform_update(serializer)
        serializer.instance = self.get_object()

    def perform_destroy(self, instance: Conversation) -> None:
        session_writes.conversation_delete(instance)


@extend_schema(
    parameters=[
        OpenApiParameter("role", str, enum=[c for c, _ in Message.Role.choices]),
        OpenApiParameter("status", str, enum=[c for c, _ in Message.Status.choices]),
        OpenApiParameter("branch", OpenApiTypes.UUID, description="Only the branch ending at this message."),
    ]
)
class MessageList(OwnedSessionMixin, generics.ListAPIView):
    serializer_class = MessageSerializer
    pagination_class = MessageCursor

    def get_queryset(self):
        params = self.request.query_params
        role, state = params.get("role", ""), params.get("status", "")
        if role and role not in Message.Role.values:
            raise ValidationError({"role": f"must be one of {', '.join(Message.Role.values)}."})
        if state and state not in Message.Status.values:
            raise ValidationError({"status": f"must be one of {', '.join(Message.Status.values)}."})
        return selectors.message_list_for_session(self.get_conversation(), role=role, status=state)

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        branch = request.query_params.get("branch")
        if not branch:
            return super().list(request, *args, **kwargs)
        try:
            uuid.UUID(branch)
        except ValueError:
            raise NotFound("No message with this id in this session.") from None
        chain = selectors.message_branch(self.get_conversation(), branch)
        if not chain:
            raise NotFound("No message with this id in this session.")
        return Response({"next": None, "previous": None, "results": MessageSerializer(chain, many=True).data})


class MessageDetail(OwnedSessionMixin, generics.RetrieveDestroyAPIView):
    serializer_class = MessageSerializer
    lookup_url_kwarg = "message_id"

    def get_queryset(self):
        return selectors.message_list_for_session(self.get_conversation())

    def perform_destroy(self, instance: Message) -> None:
        if instance.status == Message.Status.STREAMING:
            raise ValidationError({"message_id": "this answer is still streaming: stop it first."})
        session_writes.message_delete(instance)  # its attachments' files too


class ArtifactList(OwnedSessionMixin, generics.ListAPIView):
    serializer_class = ArtifactSerializer
    pagination_class = ArtifactCursor

    def get_queryset(self):
        return selectors.artifact_list_for_session(
            self.get_conversation(), message_id=self.kwargs.get("message_id")
        )


class ArtifactDetail(OwnedSessionMixin, generics.RetrieveAPIView):
    serializer_class = ArtifactSerializer
    lookup_url_kwarg = "artifact_id"

    def get_queryset(self):
        return selectors.artifact_list_for_session(self.get_conversation())


class ArtifactRaw(ArtifactDetail):
    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request: Request, *args: object, **kwargs: object) -> HttpResponse:
        artifact = self.get_object()
        content_type, extension = LANGUAGE_TYPES.get(artifact.language, ("text/plain", "txt"))
        filename = artifact.filename.rsplit("/", 1)[-1] or f"artifact-{artifact.position + 1}.{extension}"
        if artifact.filename:
            content_type = mimetypes.guess_type(filename)[0] or content_type
        response = HttpResponse(artifact.content, content_type=f"{content_type}; charset=utf-8")
        # Django quotes or percent-encodes the name: an imported one may hold quotes, CR/LF or non-ASCII.
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
        response["X-Content-Type-Options"] = "nosniff"
        return response


class SessionExport(OwnedSessionMixin, APIView):
    @extend_schema(responses=SessionImportSerializer)
    def get(self, request: Request, session_key: str) -> Response:
        require_owner(request, "Exporting a session")
        conversation = self.get_conversation()
        small = conversation.message_count <= session_writes.EXPORT_CHUNK
        if small and not conversation.attachments.exists():  # one body, with its length
            return Response(session_writes.conversation_export(conversation))
        # large, or carrying files: written as it is read, so memory stays flat whatever its size
        return StreamingHttpResponse(
            _async_chunks(session_writes.conversation_export_stream(conversation)),
            content_type="application/json",
        )


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A database-reading generator served under ASGI chunk by chunk (a synchronous iterator would be
    read whole into memory first), each step on the thread that holds the database connection."""
    step = sync_to_async(next, thread_sensitive=True)
    while (chunk := await step(chunks, None)) is not None:
        yield chunk


class SessionImport(APIView):
    @extend_schema(request=SessionImportSerializer, responses={201: SessionSerializer})
    def post(self, request: Request) -> Response:
        serializer = SessionImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner_id = owner_id_of(request)
        caller = request.auth if isinstance(request.auth, Caller) else Caller(owner_id, ip=client_ip(request))
        conversation = session_writes.conversation_import(
            owner_id=owner_id, data=serializer.validated_data, uploader_key=caller.rate_limit_key
        )
        session = selectors.session_for_owner(conversation.owner_id, conversation.session_key)
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class ProviderList(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        registry = get_registry()
        providers = []
        for name in registry.names():
            config = registry.config(name)
            providers.append(
                {
                    "name": name,
                    "configured": config.configured,
                    "default_model": config.default_model,
                    "aliases": dict(config.aliases),
                    "models": sorted(config.served),  # the names it serves (docs/api.md#model-names)
                    "any_model": config.any_model,  # <PREFIX>_MODELS=*: any other name too
                }
            )
        return Response({"default": registry.default, "providers": providers})
