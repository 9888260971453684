"""The sidebar of sessions (new, open, rename, search, delete) and per-session settings."""

import pytest

from conversations.models import Conversation, Message
from tests.e2e.pages import expect, send, wait_for_status
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)


def sidebar_titles(page) -> list[str]:
    return page.locator("#session-list .session-title").all_inner_texts()


@pytest.fixture
def two_chats(user, other_user):
    older = make_conversation(owner=user, session_key="trip", title="Trip to Lisbon")
    make_message(older, content="Which museums?")
    make_message(older, role="assistant", content="The *Gulbenkian*.", status="complete")
    newer = make_conversation(owner=user, session_key="soup", title="Soup recipes")
    make_message(newer, content="A cold soup?")
    make_conversation(owner=other_user, session_key="secret", title="Someone else's chat")
    return older, newer


def test_the_sidebar_lists_only_my_chats_and_opens_one(two_chats, chat):
    assert sidebar_titles(chat) == ["Soup recipes", "Trip to Lisbon"]
    chat.click("#session-list .session-title >> text=Trip to Lisbon")
    chat.wait_for_selector("#messages .msg-assistant")
    assert chat.locator("#chat-title").inner_text() == "Trip to Lisbon"
    assert chat.locator("#messages .msg-assistant em").inner_text() == "Gulbenkian"
    assert "session=trip" in chat.url
    chat.reload()  # the open chat is in the URL
    chat.wait_for_selector("#messages .msg-assistant")
    assert chat.locator("#chat-title").inner_text() == "Trip to Lisbon"


def test_search_filters_the_sidebar(two_chats, chat):
    chat.fill("#session-search", "lisbon")
    chat.wait_for_function("() => document.querySelectorAll('#session-list .session').length === 1")
    assert sidebar_titles(chat) == ["Trip to Lisbon"]
    chat.fill("#session-search", "nothing like this")
    chat.wait_for_selector("#session-list .session-empty")


def test_rename_and_delete_a_chat(two_chats, chat):
    item = chat.locator("#session-list .session", has_text="Soup recipes")
    item.hover()
    item.locator("[data-action=rename]").click()
    chat.fill(".session-rename", "Gazpacho")
    chat.press(".session-rename", "Enter")
    chat.wait_for_selector("#session-list .session-title >> text=Gazpacho")
    assert Conversation.objects.get(session_key="soup").title == "Gazpacho"
    chat.once("dialog", lambda dialog: dialog.accept())
    item = chat.locator("#session-list .session", has_text="Gazpacho")
    item.hover()
    item.locator("[data-action=delete]").click()
    chat.wait_for_function("() => !document.querySelector('#session-list').innerText.includes('Gazpacho')")
    assert not Conversation.objects.filter(session_key="soup").exists()
    assert sidebar_titles(chat) == ["Trip to Lisbon"]


def test_a_new_chat_starts_on_its_first_message_and_joins_the_sidebar(demo, chat):
    demo.DEMO_DELAY = 0
    chat.click("#new-chat")
    send(chat, "Plan a picnic\nfor four people")
    wait_for_status(chat, "complete")
    assert sidebar_titles(chat) == ["Plan a picnic"]
    conversation = Conversation.objects.get()
    assert conversation.title == "Plan a picnic"
    assert f"session={conversation.session_key}" in chat.url
    assert list(Message.objects.values_list("role", flat=True).order_by("created_at")) == [
        "user",
        "assistant",
    ]


def test_provider_model_and_system_prompt_are_chosen_per_session(demo, chat):
    demo.DEMO_DELAY = 0
    chat.click("#settings-toggle")
    chat.select_option("#setting-provider", "demo")
    chat.fill("#setting-model", "fast")
    chat.fill("#setting-system", "Answer like a pirate.")
    chat.click("#settings-save")
    expect(chat.locator("#settings")).to_be_hidden()
    send(chat, "Ahoy")
    wait_for_status(chat, "complete")
    conversation = Conversation.objects.get()
    assert (conversation.provider, conversation.model, conversation.system_prompt) == (
        "demo",
        "demo",  # the alias, resolved
        "Answer like a pirate.",
    )
    chat.click("#settings-toggle")
    chat.fill("#setting-system", "Answer briefly.")
    chat.click("#settings-save")
    chat.wait_for_selector("#settings-status >> text=Saved.")
    assert Conversation.objects.get().system_prompt == "Answer briefly."
    assert chat.locator("#chat-model").inner_text() == "demo · demo"
