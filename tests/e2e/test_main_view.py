"""The main view as a whole: sidebar, conversation and artifact panel side by side, nothing overflowing.

``UPDATE_SCREENSHOT=1`` saves it as ``docs/screenshot.png``.
"""

import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import Budget
from tests.e2e.pages import expect
from tests.factories import make_artifact, make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"

QUESTION = "How do I sum a column of a CSV file in Python?"
CODE = """import csv


def column_total(path: str, column: str) -> float:
    with open(path, newline="") as f:
        return sum(float(row[column]) for row in csv.DictReader(f))


print(column_total("sales.csv", "amount"))
"""
ANSWER = f"""Use the standard library's **`csv`** module: `csv.DictReader` gives each row as a dict keyed by
the header, so you can add up one column by name.

```python sum_column.py
{CODE}```

- Rows with an empty cell raise `ValueError`: skip them with `if row[column]`.
- For large files this streams row by row, so memory stays flat.
"""


@pytest.fixture
def conversations(user):
    for title, text in [
        ("Trip to Lisbon", "Three days: Alfama, Belém and a day in Sintra."),
        ("Weekly report draft", "Here is a tighter version of your summary…"),
        ("SQL: top customers", "SELECT customer_id, SUM(total) FROM orders …"),
    ]:
        conversation = make_conversation(owner=user, title=title)
        make_message(conversation, role="assistant", content=text, status="complete", cost=Decimal("0.0004"))
    conversation = make_conversation(
        owner=user, session_key="csv", title="Sum a CSV column", provider="openai", model="gpt-4o-mini"
    )
    question = make_message(conversation, content=QUESTION)
    answer = make_message(
        conversation,
        role="assistant",
        content=ANSWER,
        status="complete",
        parent=question,
        provider="openai",
        model="gpt-4o-mini",
        input_tokens=42,
        output_tokens=118,
        cost=Decimal("0.0000771"),
    )
    Budget.objects.create(
        scope="user",
        subject=str(user.pk),
        amount=Decimal("5"),
        spent=Decimal("1.2"),
        period="month",
        period_start=timezone.now(),
    )
    make_artifact(answer, language="python", filename="sum_column.py", content=CODE)
    return conversation


def test_the_main_view_shows_sidebar_conversation_and_artifact(conversations, chat):
    chat.click("#session-list .session-title >> text=Sum a CSV column")
    chat.wait_for_selector("#messages .msg-assistant .codeblock")
    chat.locator(".artifact-chip").click()
    expect(chat.locator("#artifact-code")).to_contain_text("def column_total")
    assert chat.locator("#session-list .session").count() == 4
    assert chat.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    boxes = [
        chat.locator(selector).bounding_box() for selector in ("#sidebar", "main.chat", "#artifact-panel")
    ]
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"] + 1 <= boxes[2]["x"] + 1
    expect(chat.locator("#usage-budget")).to_be_visible()  # the usage line and budget, under the chats
    chat.mouse.move(0, 0)
    if os.environ.get("UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        chat.screenshot(path=str(SCREENSHOT))
