"""httpx event hooks for SDKs that hide their HTTP client (google-genai).

* :func:`timeout_hook` sets distinct connect/read timeouts on every request, where the SDK only
  knows one total timeout (and, left unset, sends none at all).
* :func:`note_response` + :func:`noting_responses` record the HTTP responses opened while a block
  runs, so a caller can close them itself when the SDK's own generators would leave them open.
  The hook runs in the task that sends the request, so a ``ContextVar`` ties responses to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .base import Timeouts

_opened: ContextVar[list[Any] | None] = ContextVar("providers_opened_responses", default=None)


def timeout_hook(timeouts: Timeouts) -> Callable[[Any], Awaitable[None]]:
    """An async request hook applying ``timeouts`` (connect also bounds waiting for a pooled connection)."""
    values = {
        "connect": timeouts.connect,
        "read": timeouts.read,
        "write": timeouts.read,
        "pool": timeouts.connect,
    }

    async def apply_timeouts(request: Any) -> None:
        request.extensions["timeout"] = values

    return apply_timeouts


async def note_response(response: Any) -> None:
    """An async response hook: remember ``response`` if a :func:`noting_responses` block is active."""
    opened = _opened.get()
    if opened is not None:
        opened.append(response)


@contextmanager
def noting_responses(opened: list[Any]) -> Iterator[None]:
    """Append to ``opened`` every response the hooked client opens in this task during the block."""
    token = _opened.set(opened)
    try:
        yield
    finally:
        _opened.reset(token)
