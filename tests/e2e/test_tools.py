"""Tool calls on the chat page: cards that stream live, the page's demo tool loop, and the same
cards read back from the history (results attached to their calls by call id, cut calls marked)."""

import json
import re
import time

import pytest

from conversations.models import Conversation, Message
from tests.e2e.conftest import open_chat
from tests.e2e.pages import ANSWER, expect, send, wait_for_status
from tests.e2e.test_content_security_policy import Watch
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "#messages .tool-card"
QUESTION = "Where is the kraken?"
ARGUMENTS = json.dumps({"query": QUESTION})  # the demo's call: string properties get the user's text

# Records every state a card shows (state|name|status|arguments text), on each change of the list:
# a card is "calling" for a fraction of a second, too short to be sure a polling check sees it.
WATCH_CARDS = """() => {
    window.__cardStates = [];
    const seen = () => {
        for (const card of document.querySelectorAll("#messages .tool-card")) {
            const entry = [card.dataset.state, card.querySelector(".tool-name").textContent,
                card.querySelector(".tool-status").textContent,
                card.querySelector(".tool-args code").textContent].join("|");
            if (window.__cardStates.at(-1) !== entry) window.__cardStates.push(entry);
        }
    };
    new MutationObserver(seen).observe(document.getElementById("messages"),
        {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def tool_message(timeout: float = 10.0) -> Message:
    """The tool message the page posted, once its answer is saved."""
    deadline = time.monotonic() + timeout
    while True:
        last = Message.objects.filter(role="assistant").order_by("-created_at").first()
        tool = Message.objects.filter(role="tool").first()
        if (
            tool and last and last.status != "streaming" and last.parent_id == tool.pk
        ) or time.monotonic() > deadline:
            assert tool is not None, "the page posted no tool message"
            return tool
        time.sleep(0.05)


def check_the_loop_cards(page, call_id: str) -> None:
    """One card, on the first answer: the call's name and arguments, the page's result; the answer
    that used the result below it."""
    card = page.locator(CARD)
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-state", "done")
    assert card.get_attribute("data-call-id") == call_id
    first, second = page.locator(ANSWER).all()
    assert first.locator(".tool-card").count() == 1  # the card is the calling answer's
    assert card.locator(".tool-name").inner_text() == "lookup"
    assert card.locator(".tool-args-preview").inner_text() == ARGUMENTS
    assert card.locator(".tool-status").inner_text() == "result"
    preview = card.locator(".tool-result-preview").inner_text()
    assert preview.startswith(f'→ lookup("{QUESTION}"): nothing found.')
    assert (
        page.locator("#messages .msg-tool, #messages [data-role=tool]").count() == 0
    )  # no bubble of its own
    assert (
        second.locator(".msg-body").inner_text().startswith(f'The tool lookup returned: lookup("{QUESTION}")')
    )
    # keyboard: the card's summary is focusable and opens on Enter, showing the whole call and result
    expect(card.locator(".tool-detail")).to_be_hidden()
    card.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(card).to_have_attribute("open", "")
    assert json.loads(card.locator(".tool-args").inner_text()) == {"query": QUESTION}
    assert card.locator(".tool-args").inner_text().startswith('{\n  "query"')  # pretty once whole
    assert card.locator(".tool-result-label").inner_text().lower() == "result"
    assert "ran in the browser at" in card.locator(".tool-output").inner_text()
    page.keyboard.press("Space")
    expect(card.locator(".tool-detail")).to_be_hidden()


def run_the_demo_loop(page) -> str:
    """Sends a message with the demo tool on; checks the card while it streams. Returns the call id."""
    page.evaluate(WATCH_CARDS)
    page.check("#demo-tool")
    send(page, QUESTION)
    expect(page.locator(f"{ANSWER}[data-status=complete]")).to_have_count(2, timeout=20_000)
    states = [s.split("|", 3) for s in page.evaluate("() => window.__cardStates")]
    calling = [s for s in states if s[:3] == ["calling", "lookup", "calling…"]]
    assert calling, states  # the card showed while the call streamed, named at once
    partial = [s[3] for s in calling if 0 < len(s[3]) < len(ARGUMENTS)]
    assert partial and ARGUMENTS.startswith(partial[0]), states  # argument fragments shown as text
    assert states[-1] == ["done", "lookup", "result", json.dumps({"query": QUESTION}, indent=2)], states
    return page.locator(CARD).get_attribute("data-call-id")


def check_what_was_stored(call_id: str, page) -> None:
    tool = tool_message()
    calling = Message.objects.get(pk=tool.parent_id)
    assert (calling.finish_reason, [p["id"] for p in calling.parts]) == ("tool_calls", [call_id])
    [result] = tool.parts
    assert (result["type"], result["call_id"], result["is_error"]) == ("tool_result", call_id, False)
    assert page.locator(f"{CARD} .tool-output").text_content() == result["output"]


def test_the_demo_tool_loop_shows_live_and_after_a_reload(demo, chat):
    demo.DEMO_DELAY = 0.2
    call_id = run_the_demo_loop(chat)
    check_the_loop_cards(chat, call_id)
    check_what_was_stored(call_id, chat)
    assert Message.objects.filter(role="tool").count() == 1  # posted once
    assert chat.is_checked("#demo-tool")

    chat.reload()
    chat.wait_for_selector(f"{CARD}[data-state=done]")
    expect(chat.locator(ANSWER)).to_have_count(2)
    check_the_loop_cards(chat, call_id)


def test_the_demo_tool_loop_over_sse(demo, new_page, user, asgi_server):
    page = new_page
    demo.DEMO_DELAY = 0.2
    watch = Watch(page, asgi_server.url)  # cards and their styles stay within the page's CSP
    page.route_web_socket(re.compile(r"/ws/chat/"), lambda ws: ws.close(code=1011))
    open_chat(page, user, asgi_server.url)
    call_id = run_the_demo_loop(page)
    assert page.locator("#conn-state").inner_text() == "HTTP streaming"
    check_the_loop_cards(page, call_id)
    check_what_was_stored(call_id, page)
    watch.check()


def test_a_call_stopped_mid_arguments_is_cut_live_and_after_a_reload(demo, chat):
    demo.DEMO_DELAY = 0.5  # the call's two argument fragments half a second apart
    chat.check("#demo-tool")
    send(chat, QUESTION)
    chat.wait_for_function(
        """() => {
            const card = document.querySelector("#messages .tool-card[data-state=calling]");
            return card && card.querySelector(".tool-args-preview").textContent.length > 0;
        }"""
    )
    chat.click("#stop")
    card = chat.locator(CARD)
    expect(card).to_have_attribute("data-state", "cut")
    wait_for_status(chat, "interrupted")
    partial = card.locator(".tool-args-preview").inner_text()
    assert ARGUMENTS.startswith(partial) and partial != ARGUMENTS
    assert card.locator(".tool-status").inner_text() == "cut off"
    stored = Message.objects.get(role="assistant")
    assert stored.status == "interrupted" and stored.parts[0]["incomplete"] is True
    time.sleep(0.3)
    assert not Message.objects.filter(role="tool").exists()  # a cut call is never run

    chat.reload()
    expect(chat.locator(CARD)).to_have_attribute("data-state", "cut")
    assert chat.locator(f"{CARD} .tool-args-preview").inner_text() == partial


def test_without_the_demo_tool_no_tool_is_offered(demo, chat):
    demo.DEMO_DELAY = 0
    send(chat, QUESTION)
    wait_for_status(chat, "complete")
    assert chat.locator(CARD).count() == 0
    assert Message.objects.get(role="assistant").finish_reason == "stop"


def test_a_call_of_another_clients_tool_shows_without_a_result_and_nothing_is_posted(demo, chat, user):
    """An agent's call in the open chat (here posted by a script with its own `weather` tool): the
    page shows the card live and answers nothing."""
    demo.DEMO_DELAY = 0
    chat.check("#demo-tool")  # the page's tool is on, but the call is not the page's
    send(chat, "First message")
    expect(chat.locator(f"{ANSWER}[data-status=complete]")).to_have_count(2)
    chat.wait_for_selector("#conn-state >> text=Live")
    key = Conversation.objects.get(owner=user).session_key
    reply = chat.evaluate(
        """async (key) => {
            const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).split("=")[1];
            const response = await fetch(`/api/sessions/${key}/messages`, {
                method: "POST",
                headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
                body: JSON.stringify({content: "Rome", tools: [{name: "weather",
                    parameters: {type: "object", properties: {city: {type: "string"}}}}]}),
            });
            return response.json();
        }""",
        key,
    )
    assert reply["tool_calls"][0]["name"] == "weather"
    card = chat.locator(f'{CARD}[data-name="weather"]')
    expect(card).to_have_attribute("data-state", "unanswered")
    assert card.locator(".tool-status").inner_text() == "no result from this page"
    assert card.locator(".tool-args-preview").inner_text() == '{"city": "Rome"}'
    time.sleep(0.5)
    assert (
        Message.objects.filter(role="tool", conversation__session_key=key).count() == 1
    )  # the page's own round only


@pytest.fixture
def agent_session(user):
    """A session an agent ran: a call answered in a later tool message (one result an error), a
    call left unanswered, a call cut mid-arguments; model and tool text that looks like HTML."""
    conversation = make_conversation(owner=user, session_key="agent", title="An agent's session")
    question = make_message(conversation, content="Weather and stocks?")
    calling = make_message(
        conversation,
        role="assistant",
        status="complete",
        finish_reason="tool_calls",
        parent=question,
        content="Let me check both.",
        parts=[
            {"type": "text", "text": "Let me check both."},
            {
                "type": "tool_call",
                "id": "call_w",
                "name": "weather",
                "arguments": '{"city": "<b>Rome</b>"}',
                "input": {"city": "<b>Rome</b>"},
            },
            {"type": "tool_call", "id": "call_s", "name": "stocks", "arguments": "{}", "input": {}},
        ],
    )
    results = make_message(
        conversation,
        role="tool",
        parent=calling,
        content="21 C\nupstream down",
        parts=[
            {
                "type": "tool_result",
                "call_id": "call_w",
                "name": "weather",
                "output": '21 C <img src=x onerror="window.__pwned=1">',
                "is_error": False,
            },
            {
                "type": "tool_result",
                "call_id": "call_s",
                "name": "stocks",
                "output": "upstream down",
                "is_error": True,
            },
        ],
    )
    make_message(conversation, role="assistant", status="complete", parent=results, content="It is **21 C**.")
    again = make_message(conversation, content="And Paris?")
    unanswered = make_message(
        conversation,
        role="assistant",
        status="complete",
        finish_reason="tool_calls",
        parent=again,
        parts=[
            {
                "type": "tool_call",
                "id": "call_p",
                "name": "weather",
                "arguments": '{"city": "Paris"}',
                "input": {"city": "Paris"},
            }
        ],
        content="",
    )
    cut = make_message(conversation, content="And Oslo?", parent=unanswered)
    make_message(
        conversation,
        role="assistant",
        status="interrupted",
        error_code="stopped",
        error_message="Stopped.",
        parent=cut,
        parts=[
            {
                "type": "tool_call",
                "id": "call_o",
                "name": "weather",
                "arguments": '{"city": "Os',
                "incomplete": True,
            }
        ],
        content="",
    )
    return conversation


def test_stored_calls_and_results_show_as_cards(agent_session, chat):
    chat.click("#session-list .session-title >> text=An agent's session")
    chat.wait_for_selector(f"{CARD}[data-call-id=call_o]")
    answers = chat.locator(ANSWER)
    expect(answers).to_have_count(4)
    assert chat.locator("#messages .msg-user").all_inner_texts() == [
        "Weather and stocks?",
        "And Paris?",
        "And Oslo?",
    ]
    first = answers.nth(0)
    assert first.locator(".msg-body").inner_text() == "Let me check both."  # the text before the calls
    weather, stocks = first.locator(".tool-card").all()
    # results from the tool message, on the cards of the calls they answer
    assert weather.get_attribute("data-state") == "done"
    assert (
        weather.locator(".tool-result-preview").inner_text()
        == '→ 21 C <img src=x onerror="window.__pwned=1">'
    )
    assert weather.locator(".tool-args-preview").inner_text() == '{"city": "<b>Rome</b>"}'  # text, not markup
    assert stocks.get_attribute("data-state") == "error"
    assert stocks.locator(".tool-status").inner_text() == "error"
    stocks.locator("summary").click()
    assert stocks.locator(".tool-result-label").inner_text().lower() == "error"
    assert stocks.locator(".tool-output").inner_text() == "upstream down"
    assert chat.locator("#messages img, #messages b").count() == 0
    assert chat.evaluate("() => window.__pwned") is None
    assert answers.nth(1).locator(".msg-body strong").inner_text() == "21 C"

    paris = answers.nth(2).locator(".tool-card")
    expect(paris).to_have_attribute("data-state", "unanswered")
    assert paris.locator(".tool-status").inner_text() == "no result from this page"
    assert answers.nth(2).locator(".msg-body").is_hidden()  # an answer that is only a call: just its card

    oslo = answers.nth(3).locator(".tool-card")
    expect(oslo).to_have_attribute("data-state", "cut")
    assert oslo.locator(".tool-status").inner_text() == "cut off"
    oslo.locator("summary").click()
    assert oslo.locator(".tool-args").inner_text() == '{"city": "Os'  # as far as it got, as text
    assert "never run" in oslo.locator(".tool-note").inner_text()
    assert "Stopped" in answers.nth(3).locator(".msg-error").inner_text()


def test_reloading_mid_call_follows_the_call_and_posts_no_result(demo, chat):
    """The page answers its tool only in the tab that sent the message, while it follows that turn: a
    reload mid-call picks the call up (replayed from its first event) and shows it without a result."""
    demo.DEMO_DELAY = 0.5
    chat.check("#demo-tool")
    send(chat, QUESTION)
    chat.wait_for_selector(f"{CARD}[data-state=calling]")
    chat.reload()
    chat.wait_for_selector("body[data-ready=true]")
    card = chat.locator(CARD)
    expect(card).to_have_attribute("data-state", "unanswered", timeout=15_000)
    assert card.locator(".tool-args-preview").inner_text() == ARGUMENTS
    assert card.locator(".tool-status").inner_text() == "no result from this page"
    wait_for_status(chat, "complete")
    time.sleep(0.3)
    assert not Message.objects.filter(role="tool").exists()


def test_a_result_whose_call_is_not_on_the_page_gets_a_card_of_its_own(user, chat):
    """Never dropped: a tool message answering a call the page does not show (a hand-made row here)."""
    conversation = make_conversation(owner=user, session_key="orphan", title="A lone result")
    question = make_message(conversation, content="Hi")
    answer = make_message(
        conversation, role="assistant", status="complete", parent=question, content="Hello."
    )
    part = {
        "type": "tool_result",
        "call_id": "call_gone",
        "name": "search",
        "output": "3 hits",
        "is_error": False,
    }
    make_message(conversation, role="tool", parent=answer, content="3 hits", parts=[part])
    chat.goto("/?session=orphan")  # made after the page opened
    card = chat.locator("#messages .msg-tool .tool-card")
    expect(card).to_have_attribute("data-state", "done")
    assert card.locator(".tool-name").inner_text() == "search"
    assert card.locator(".tool-result-preview").inner_text() == "→ 3 hits"
    card.locator("summary").click()
    assert card.locator(".tool-note").inner_text() == "Its call is not on this page."
    expect(card.locator(".tool-args")).to_be_hidden()
