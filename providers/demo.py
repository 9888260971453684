"""The offline demo provider: deterministic, no network, no key.

Like Django's locmem e-mail backend, it is a plain implementation chosen by settings
(``LLM_PROVIDER=demo``, the default when no provider key is configured). The reply says plainly that
it comes from the demo provider and how to configure a real one, echoes the last user message, and
carries a fenced ``python`` block so artifacts can be seen end to end. It streams word-sized pieces
with a small delay (``DEMO_DELAY``, default 0.02 s), so cancellation and streaming UIs behave as
with a real model. Usage is an estimate (word counts) and says so (``Usage.estimated``).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

from .base import Provider, ProviderChunk, ProviderRequest, Timeouts, Usage

DEFAULT_DELAY = 0.02
DEMO_MODEL = "demo"
_PIECES = re.compile(r"\s*\S+\s*|\s+")

HOW_TO_CONFIGURE = (
    "To talk to a real model, set LLM_PROVIDER and its key, e.g. LLM_PROVIDER=gemini with GEMINI_API_KEY, "
    "LLM_PROVIDER=openai with OPENAI_API_KEY, LLM_PROVIDER=zai with ZAI_API_KEY, or "
    "LLM_PROVIDER=openai-compatible with OPENAI_COMPATIBLE_BASE_URL, then restart the server."
)

CODE_SAMPLE = '''```python
def greet(name: str) -> str:
    """Say hello: this block shows how code artifacts are rendered."""
    return f"Hello, {name}!"


print(greet("world"))
```'''


def _words(*texts: str | None) -> int:
    return sum(len(t.split()) for t in texts if t)


class DemoProvider(Provider):
    """Answers every request locally; see the module docstring for what the reply contains."""

    kind: ClassVar[str] = "demo"
    key_env_var: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str = DEMO_MODEL,
        timeouts: Timeouts | None = None,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        super().__init__(name=name or self.kind, default_model=default_model, timeouts=timeouts)
        self.delay = max(0.0, delay)

    @staticmethod
    def reply_for(request: ProviderRequest) -> str:
        """The whole reply the demo streams for ``request`` (deterministic)."""
        question = next((m.content.strip() for m in reversed(request.messages) if m.role == "user"), "")
        if request.json_output or request.json_schema is not None:
            note = "Offline demo provider: no language model was called. " + HOW_TO_CONFIGURE
            return json.dumps({"provider": "demo", "echo": question, "note": note})
        quoted = "\n".join(f"> {line}" for line in question.splitlines()) or "> (an empty message)"
        return (
            "This is the offline demo provider: no language model was called, so this answer is canned.\n\n"
            f"You asked:\n\n{quoted}\n\n"
            f"Here is a small code block, so you can see how artifacts are shown:\n\n{CODE_SAMPLE}\n\n"
            f"{HOW_TO_CONFIGURE}"
        )

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderChunk]:
        reply = self.reply_for(request)
        pieces = _PIECES.findall(reply)
        finish = "stop"
        is_json = request.json_output or request.json_schema is not None
        if request.max_tokens is not None and len(pieces) > request.max_tokens and not is_json:
            pieces, finish = pieces[: request.max_tokens], "length"
        for piece in pieces:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield ProviderChunk(text=piece)
        prompt = _words(request.system, *(m.content for m in request.messages))
        output = _words(*pieces)
        yield ProviderChunk(
            usage=Usage(prompt, output, prompt + output, estimated=True),
            finish_reason=finish,
            response_id=f"demo-{uuid.uuid4()}",
        )
