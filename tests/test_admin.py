import pytest
from django.urls import reverse

from conversations.models import Message
from tests.factories import make_artifact, make_conversation, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample(user):
    conv = make_conversation(owner=user, session_key="sess-findme", title="Cooking ideas")
    make_message(conv, content="How do I bake sourdough?")
    answer = make_message(conv, role=Message.Role.ASSISTANT, content="Use a starter.", input_tokens=5)
    artifact = make_artifact(answer, filename="bake.py", content="print('bread')\n")
    return conv, answer, artifact


@pytest.mark.parametrize("model", ["conversation", "message", "artifact"])
def test_changelist_renders_for_staff(staff_client, sample, model):
    response = staff_client.get(reverse(f"admin:conversations_{model}_changelist"))
    assert response.status_code == 200


def test_change_pages_render_with_inlines_and_links(staff_client, sample):
    conv, answer, artifact = sample
    page = staff_client.get(reverse("admin:conversations_conversation_change", args=[conv.pk]))
    assert page.status_code == 200
    assert b"How do I bake sourdough?" in page.content  # messages inline
    page = staff_client.get(reverse("admin:conversations_message_change", args=[answer.pk]))
    assert page.status_code == 200
    assert b"bake.py" in page.content  # artifacts inline
    assert reverse("admin:conversations_conversation_change", args=[conv.pk]).encode() in page.content
    page = staff_client.get(reverse("admin:conversations_artifact_change", args=[artifact.pk]))
    assert page.status_code == 200


def test_conversation_search_finds_title_session_key_and_message_content(staff_client, sample, user):
    make_conversation(owner=user, session_key="sess-other", title="Unrelated")
    url = reverse("admin:conversations_conversation_changelist")
    for term in ("Cooking", "sess-findme", "sourdough"):
        page = staff_client.get(url, {"q": term})
        assert page.status_code == 200
        assert page.context["cl"].result_count == 1, term


def test_message_filters_by_status_and_role(staff_client, sample):
    url = reverse("admin:conversations_message_changelist")
    page = staff_client.get(url, {"role__exact": "assistant", "status__exact": "complete"})
    assert page.context["cl"].result_count == 1


def test_usage_fields_are_read_only(staff_client, sample):
    _, answer, _ = sample
    page = staff_client.get(reverse("admin:conversations_message_change", args=[answer.pk]))
    assert 'name="input_tokens"' not in page.content.decode()


def test_admin_requires_staff(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:conversations_conversation_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
