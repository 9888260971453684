"""Deterministic replies, in-prompt directives and faults of the fake upstream.

Contract (tests rely on it):

* The reply to a request is ``"Echo: " + <last user message with directives stripped>``, split into
  exactly ``chunks`` non-empty pieces (default :data:`DEFAULT_CHUNKS`). If the text is shorter than
  ``chunks`` characters, filler words (``" lorem"``, ``" ipsum"``, ...) are appended until it is long
  enough. Cut points are pseudo-random but deterministic (seeded by the text), so chunks have uneven
  sizes and cut through words, fences and multi-line constructs.
* JSON mode: the reply is ``{"echo": "<stripped user text>"}`` (``json.dumps`` default separators), padded
  with trailing spaces (still valid JSON) when shorter than ``chunks``; ``json=invalid`` gives
  ``{"echo": `` instead.
* Usage: input tokens = whitespace-separated words of all input text as sent (system + every message,
  directives included), output tokens = number of chunks actually sent, total = sum.
* Usage breakdowns: only with ``cached=N`` and/or ``reasoning=M``. Without them no wire reports a
  cached or reasoning count (no ``prompt_tokens_details`` / ``completion_tokens_details`` /
  ``input_tokens_details`` / ``output_tokens_details``, no ``cachedContentTokenCount`` /
  ``thoughtsTokenCount``), as OpenAI-compatible servers and Gemini without a cache or thinking send it.
  With them each wire reports them where its provider does: ``N`` cached input tokens (capped at the
  input tokens, which still include them) and ``M`` reasoning tokens, which OpenAI and Z.AI count in
  their output tokens (``completion_tokens`` / ``output_tokens`` = chunks + M) and Gemini reports
  apart (``candidatesTokenCount`` = chunks, ``thoughtsTokenCount`` = M); totals include M. OpenAI
  (chat and Responses) then sends both breakdown objects, the one not asked for as 0, as it always
  does; ``[[cached=0 reasoning=0]]`` is exactly OpenAI's usage for a reply without either. Gemini
  leaves a count of 0 out, as its JSON does.
* Directives live in the last user message as ``[[key=value key=value]]``: ``chunks=N``,
  ``delay=SECONDS`` (between chunks), ``first_byte=SECONDS`` (before response headers), ``fault=KIND``,
  ``retry_after=SECONDS``, ``json=invalid``, ``cached=N``, ``reasoning=M`` (non-negative integers).
* Fault kinds: ``429 401 400 500 503`` (HTTP error with the provider's error body), ``drop:N`` (N content
  chunks, then the connection is cut mid-body), ``stall:N`` (N chunks, then silence until the client
  leaves), ``hang`` (no response headers until the client leaves).
* Tool calls (the OpenAI chat wire; :func:`plan_tool_calls`): a request that offers ``tools``, whose
  ``tool_choice`` is not ``"none"`` and whose last message is the user's, is answered with calls
  instead of the echo. Which: the ``tools=a,b`` directive's names in order (a name the request does
  not offer is a 400), else the function ``tool_choice`` names, else the first tool;
  ``parallel_tool_calls: false`` keeps only the first. ``text_first=1`` sends the echo reply before
  the calls. Each call's arguments (:func:`tool_arguments`) are a compact JSON object with one value
  per property of its ``parameters``: a string gets the stripped user text, an integer or number
  ``1``, a boolean ``true``, an array ``[]``, an object ``{}``, any other type ``null``. Its id is
  ``call_<i>_<crc32 of the raw user text, 8 hex>``; its arguments stream in three fragments
  (:func:`argument_fragments`, the string's thirds, so one may end mid-token or mid-escape). The
  usage's output tokens count one per content chunk: text pieces plus each call's header and
  fragments.
* A request whose last message is a tool result (role ``tool``) is answered with text,
  :func:`expected_tool_reply` of the trailing tool messages' contents, split like the echo.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CHUNKS = 5
DEFAULT_RETRY_AFTER = 1.0
STATUS_FAULTS = frozenset({400, 401, 429, 500, 503})
FILLER_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

_DIRECTIVE_RE = re.compile(r"\s*\[\[(.*?)\]\]", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Fault:
    """A parsed fault: ``kind`` is ``"status"``, ``"drop"``, ``"stall"`` or ``"hang"``.

    ``status`` is set for ``kind == "status"``; ``after`` is the number of content chunks sent before a
    drop/stall takes effect.
    """

    kind: str
    status: int = 0
    after: int = 0
    retry_after: float | None = None

    @property
    def is_status(self) -> bool:
        return self.kind == "status"


def parse_fault(spec: str, retry_after: float | None = None) -> Fault:
    """Parse ``"429"``, ``"drop:3"``, ``"stall:0"``, ``"hang"`` ...; raise ``ValueError`` on junk."""
    spec = spec.strip().lower()
    if spec.isdigit():
        status = int(spec)
        if status not in STATUS_FAULTS:
            raise ValueError(f"unsupported status fault {spec!r}")
        return Fault("status", status=status, retry_after=retry_after)
    if spec == "hang":
        return Fault("hang")
    kind, _, count = spec.partition(":")
    if kind in ("drop", "stall"):
        return Fault(kind, after=int(count or 0))
    raise ValueError(f"unknown fault {spec!r}")


@dataclass(slots=True)
class Directives:
    """Per-request steering parsed from ``[[...]]`` blocks; ``None`` means "use the default"."""

    chunks: int | None = None
    delay: float | None = None
    first_byte: float = 0.0
    fault: Fault | None = None
    retry_after: float | None = None
    json_invalid: bool = False
    cached: int | None = None
    reasoning: int | None = None
    tools: tuple[str, ...] | None = None
    text_first: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def strip_directives(text: str) -> str:
    """Return ``text`` without ``[[...]]`` blocks, surrounding whitespace trimmed."""
    return _DIRECTIVE_RE.sub("", text).strip()


def parse_directives(text: str) -> Directives:
    """Collect every ``key=value`` from all ``[[...]]`` blocks of ``text`` (later keys win)."""
    d = Directives()
    for block in _DIRECTIVE_RE.findall(text):
        for token in block.split():
            key, _, value = token.partition("=")
            key = key.strip().lower()
            if key == "chunks":
                d.chunks = max(1, int(value))
            elif key == "delay":
                d.delay = max(0.0, float(value))
            elif key == "first_byte":
                d.first_byte = max(0.0, float(value))
            elif key == "retry_after":
                d.retry_after = float(value)
            elif key == "fault":
                d.fault = parse_fault(value)
            elif key == "json":
                d.json_invalid = value.lower() == "invalid"
            elif key == "cached":
                d.cached = _count(key, value)
            elif key == "reasoning":
                d.reasoning = _count(key, value)
            elif key == "tools":
                d.tools = tuple(name for name in value.split(",") if name)
            elif key == "text_first":
                d.text_first = value.lower() not in ("", "0", "false", "no")
            else:
                d.extra[key] = value
    return d


def _count(key: str, value: str) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f"{key} must be >= 0, not {count}")
    return count


def split_reply(text: str, chunks: int) -> list[str]:
    """Split ``text`` into exactly ``chunks`` non-empty pieces at deterministic pseudo-random cuts.

    ``"".join(split_reply(t, n)) == t`` always; raises ``ValueError`` if ``len(text) < chunks``.
    """
    if chunks < 1:
        raise ValueError("chunks must be >= 1")
    if len(text) < chunks:
        raise ValueError(f"text of {len(text)} chars cannot make {chunks} chunks")
    if chunks == 1:
        return [text]
    if chunks == len(text):
        return list(text)
    rng = random.Random(zlib.crc32(text.encode("utf-8", "surrogatepass")) ^ chunks)
    cuts = sorted(rng.sample(range(1, len(text)), chunks - 1))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _pad_with_filler(text: str, chunks: int) -> str:
    i = 0
    while len(text) < chunks:
        text += ("" if text.endswith(" ") else " ") + FILLER_WORDS[i % len(FILLER_WORDS)]
        i += 1
    return text


def reply_text(user_text: str, chunks: int, *, json_mode: bool = False, json_invalid: bool = False) -> str:
    """The whole reply for ``user_text`` (raw, directives are stripped here), before splitting."""
    clean = strip_directives(user_text)
    if json_mode:
        text = '{"echo": ' if json_invalid else json.dumps({"echo": clean}, ensure_ascii=False)
        return text.ljust(chunks) if not json_invalid else _pad_with_filler(text, chunks)
    return _pad_with_filler("Echo: " + clean, chunks)


def expected_reply(
    user_text: str,
    chunks: int | None = None,
    *,
    json_mode: bool = False,
) -> str:
    """Exactly what a client reassembles for a last user message ``user_text`` (raw or stripped).

    ``chunks`` defaults to the ``chunks=`` directive inside ``user_text``, else :data:`DEFAULT_CHUNKS`
    (pass it explicitly when the server defaults were changed with ``set_defaults``).
    """
    d = parse_directives(user_text)
    n = chunks if chunks is not None else (d.chunks or DEFAULT_CHUNKS)
    return reply_text(user_text, n, json_mode=json_mode, json_invalid=d.json_invalid)


def count_words(*texts: str) -> int:
    """Whitespace-separated word count over ``texts`` (the fake's token counter)."""
    return sum(len(t.split()) for t in texts)


TOOL_REPLY_PREFIX = "Tool results: "
_SAMPLES: dict[str, Any] = {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A tool call the fake is about to make: ``arguments`` is the whole JSON text."""

    index: int
    id: str
    name: str
    arguments: str

    @property
    def fragments(self) -> list[str]:
        return argument_fragments(self.arguments)


def expected_tool_reply(outputs: Sequence[str], chunks: int = DEFAULT_CHUNKS) -> str:
    """Exactly what a client reassembles for a request ending in tool messages with these contents:
    ``"Tool results: " + " | ".join(outputs)``, padded with filler words like the echo only when
    shorter than ``chunks`` characters."""
    return _pad_with_filler(TOOL_REPLY_PREFIX + " | ".join(outputs), chunks)


def tool_arguments(parameters: Any, user_text: str) -> str:
    """The compact JSON arguments the fake calls a tool with (see the module docstring)."""
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    text = strip_directives(user_text)
    values = {}
    for name, schema in (properties if isinstance(properties, dict) else {}).items():
        kind = schema.get("type") if isinstance(schema, dict) else None
        values[name] = text if kind == "string" else _SAMPLES.get(kind) if isinstance(kind, str) else None
    return json.dumps(values, separators=(",", ":"))


def argument_fragments(arguments: str) -> list[str]:
    """``arguments`` in three pieces cut at its thirds (cut anywhere: mid-token, mid-escape)."""
    n = len(arguments)
    return [arguments[: n // 3], arguments[n // 3 : 2 * n // 3], arguments[2 * n // 3 :]]


def call_id(index: int, user_text: str) -> str:
    """``call_<index>_<8 hex>``: the same for the same raw user text, distinct per call."""
    return f"call_{index}_{zlib.crc32(user_text.encode('utf-8', 'surrogatepass')):08x}"


def plan_tool_calls(
    tools: Sequence[Any], tool_choice: Any, parallel: Any, user_text: str, d: Directives
) -> list[PlannedCall]:
    """The calls for a request offering ``tools`` whose last message is the user's (module docstring);
    raises ``ValueError`` for a ``tools=`` directive naming a tool the request does not offer."""
    functions = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            functions.setdefault(function["name"], function)
    if not functions or tool_choice == "none":
        return []
    if d.tools:
        unknown = [name for name in d.tools if name not in functions]
        if unknown:
            raise ValueError(f"tools={','.join(d.tools)} names {', '.join(unknown)}, not offered in tools")
        names = list(d.tools)
    else:
        chosen = tool_choice.get("function") if isinstance(tool_choice, dict) else None
        named = chosen.get("name") if isinstance(chosen, dict) else None
        names = [named if named in functions else next(iter(functions))]
    if parallel is False:
        names = names[:1]
    return [
        PlannedCall(
            i, call_id(i, user_text), name, tool_arguments(functions[name].get("parameters"), user_text)
        )
        for i, name in enumerate(names)
    ]
