"""What the tests do on the chat page, named for the user's actions."""

from __future__ import annotations

ANSWER = "#messages .msg-assistant"


def expect(target):
    """Playwright's auto-waiting assertions (imported late: the package skips without playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def send(page, text: str, *, json_mode: bool = False) -> None:
    if json_mode:
        page.check("#json-mode")
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def last_answer(page):
    return page.locator(ANSWER).last


def wait_for_status(page, status: str, timeout: float = 15_000):
    page.wait_for_selector(f"{ANSWER}[data-status={status}]", timeout=timeout)
    return last_answer(page)


def answer_text(page) -> str:
    return last_answer(page).locator(".msg-body").inner_text()


def wait_for_streamed_text(page, minimum: int = 20) -> str:
    """Waits until the answer still streaming shows at least ``minimum`` characters; returns them."""
    page.wait_for_function(
        """([selector, minimum]) => {
            const answer = [...document.querySelectorAll(selector)].pop();
            return answer && answer.dataset.status === "streaming"
                && answer.querySelector(".msg-body").innerText.length >= minimum;
        }""",
        arg=[ANSWER, minimum],
    )
    return answer_text(page)
