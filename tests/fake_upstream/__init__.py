"""Wire-faithful fake LLM upstream (OpenAI chat + Responses, Gemini, Z.AI) for tests and benchmarks.

Real SDKs talk to it over real HTTP; replies are deterministic (see :mod:`.scenario`).

In-process usage (a pytest fixture would wrap exactly this)::

    from tests.fake_upstream import FakeUpstream, expected_reply

    with FakeUpstream() as upstream:              # or upstream = FakeUpstream().start(); upstream.stop()
        client = AsyncOpenAI(api_key="sk-test", base_url=upstream.openai_base_url, max_retries=0)
        # gemini: genai.Client(api_key="k", http_options=types.HttpOptions(base_url=upstream.gemini_base_url))
        # zai:    ZaiClient(api_key="id.secret", base_url=upstream.zai_base_url, max_retries=0)
        stream = await client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi [[chunks=3 delay=0.01]]"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == expected_reply("hi [[chunks=3 delay=0.01]]")      # "Echo: hi" in 3 pieces
        upstream.push_fault("429", times=1, retry_after=2)   # next request -> 429 + Retry-After: 2
        upstream.requests[-1].json["messages"]              # recorded bodies / headers / query
        upstream.wait_for_disconnect(timeout=1.0)           # a client left mid-stream
        upstream.reset()

Steering: directives in the last user message (``[[chunks=N delay=S first_byte=S fault=KIND
retry_after=S json=invalid cached=N reasoning=M]]``), or ``push_fault(kind, times, model, retry_after)`` /
``set_defaults(chunks, delay)``. Fault kinds: ``429 401 400 500 503 drop:N stall:N hang``.
``cached``/``reasoning`` put cached-input and reasoning token counts into each wire's usage the way
its provider reports them (without them, no wire reports either; see :mod:`.scenario`).

Tool calls (OpenAI chat wire): a request with ``tools`` (``tool_choice`` not ``"none"``) whose last
message is the user's gets calls, not the echo — the tool ``tool_choice`` names, else the first; the
directive ``[[tools=a,b]]`` calls ``a`` then ``b`` (``parallel_tool_calls: false``: only the first),
``[[text_first=1]]`` streams the echo text before them. Arguments:
``expected_tool_arguments(parameters, user_text)``; ids ``call_<i>_<8 hex>``; the arguments arrive in
three fragments; ``fault=drop:N`` counts each call header and fragment as a chunk. A request ending
in ``tool`` messages gets the text ``expected_tool_reply([contents…])`` = ``"Tool results: a | b"``::

    tools = [{"type": "function", "function": {"name": "weather", "parameters": schema}}]
    stream = await client.chat.completions.create(model="m", messages=user("Paris [[tools=weather]]"),
                                                  tools=tools, stream=True)
    # -> one call: id "call_0_…", name "weather", arguments expected_tool_arguments(schema, "Paris …")

The Gemini and Z.AI wires call and answer the same way in their own shapes: Gemini's calls whole in
one chunk, the first signed (``gemini_wire.thought_signature``; a Gemini 3 request must send it back),
results as ``functionResponse`` parts; Z.AI's whole calls each marked ``tool_calls``, or fragments
with ``tool_stream`` (see :mod:`.gemini_wire`, :mod:`.zai_wire`). The Responses wire streams
``function_call`` output items (added, three argument deltas, done; ``[[reasoning_item=1]]`` puts a
``reasoning`` item first) and answers ``function_call_output`` items, refusing with OpenAI's 400 an
output no earlier call made or a call left without its output (see :class:`.openai_wire.OpenAIResponsesWire`).

Images and files (:mod:`.attachments`): each wire checks its parts' shapes strictly (a malformed
part is the provider's 400 naming it: :mod:`.openai_parts` for OpenAI and Z.AI, :mod:`.gemini_files`
for Gemini) and answers a request carrying any with one line per image or file before the echo,
``[attachment <n>: <media type> <byte count> sha256=<hex of the decoded bytes>]`` (or
``[attachment <n>: url <url>]``), numbered across all the request's messages::

    listing = attachment_line(1, "image/png", png_bytes)   # what the reply starts with

Gemini's Files API (resumable upload, ``GET /v1beta/files/{id}``) keeps the uploaded bytes for a
later ``fileData`` part: ``upstream.uploaded_files``, ``hold_files_processing(n)``, ``forget_files()``.

Out of process: ``python -m tests.fake_upstream --port 8765 [--chunks 20] [--delay 0]`` and the
``/_control/{reset,faults,defaults,requests,disconnects,health}`` endpoints (see :mod:`.app`).
"""

from .app import FakeUpstreamApp
from .attachments import ATTACHMENT_TOKENS, attachment_line
from .scenario import (
    DEFAULT_CHUNKS,
    count_words,
    expected_reply,
    expected_tool_reply,
    split_reply,
    strip_directives,
)
from .scenario import tool_arguments as expected_tool_arguments
from .server import FakeUpstream
from .state import RecordedRequest

__all__ = [
    "ATTACHMENT_TOKENS",
    "DEFAULT_CHUNKS",
    "FakeUpstream",
    "FakeUpstreamApp",
    "RecordedRequest",
    "attachment_line",
    "count_words",
    "expected_reply",
    "expected_tool_arguments",
    "expected_tool_reply",
    "split_reply",
    "strip_directives",
]
