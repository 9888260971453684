import pytest
from django.db import IntegrityError, transaction

from conversations.models import Conversation, Message
from tests.factories import make_artifact, make_conversation, make_message

pytestmark = pytest.mark.django_db


def test_session_key_is_unique_per_owner(user):
    make_conversation(owner=user, session_key="sess-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_conversation(owner=user, session_key="sess-1")


def test_same_session_key_is_allowed_for_different_owners(user, other_user):
    make_conversation(owner=user, session_key="sess-1")
    make_conversation(owner=other_user, session_key="sess-1")
    assert Conversation.objects.filter(session_key="sess-1").count() == 2


def test_anonymous_session_key_is_unique(db):
    make_conversation(owner=None, session_key="sess-anon")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_conversation(owner=None, session_key="sess-anon")


def test_client_message_id_is_unique_per_conversation(user):
    conv = make_conversation(owner=user)
    make_message(conv, client_message_id="c-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_message(conv, client_message_id="c-1")


def test_client_message_id_may_repeat_across_conversations_and_be_absent(user):
    first, second = make_conversation(owner=user), make_conversation(owner=user)
    make_message(first, client_message_id="c-1")
    make_message(second, client_message_id="c-1")
    make_message(first)
    make_message(first)
    assert Message.objects.filter(client_message_id__isnull=True).count() == 2


def test_deleting_a_conversation_cascades_to_messages_and_artifacts(user):
    conv = make_conversation(owner=user)
    message = make_message(conv, role=Message.Role.ASSISTANT)
    make_artifact(message)
    conv.delete()
    assert not Message.objects.exists()
    assert not message.artifacts.exists()


def test_message_defaults_to_complete_and_orders_by_creation(user):
    conv = make_conversation(owner=user)
    first, second = make_message(conv, content="one"), make_message(conv, content="two")
    assert first.status == Message.Status.COMPLETE
    assert list(conv.messages.values_list("content", flat=True)) == ["one", "two"]
    assert second.created_at >= first.created_at
