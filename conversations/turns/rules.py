"""The rules of a turn's two writes, defined once.

The ORM reference (:mod:`conversations.session_writes`) and the native PostgreSQL path
(:mod:`conversations.turns.pg_writes`) both take from here what they store: the data
each write takes and returns, the new session's columns, the busy rule, the
history window, the closing write's columns and when a close chains the session.
Recovery (:mod:`conversations.turns.recovery`) closes orphans with the same closing
write. ``tests/test_turn_store.py`` checks that the two paths store the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from billing.budgets import HAS_ROOM, Claim, period_end, period_start, period_starts
from conversations.artifacts import CodeBlock
from conversations.errors import (
    BudgetExceeded,
    InvalidToolResults,
    PriceUnknown,
    ToolCallsAnswered,
    TurnInProgress,
    TurnRejected,
)
from conversations.models import Message
from conversations.turns.parts import Part, chat_message, named_results, stored_parts, tool_calls
from providers.base import ChatMessage

TITLE_LENGTH = 80

# How many of a session's newest messages a turn reads to find its branch's history.
TREE_WINDOW = 400

# How long the closing write of a turn waits for an unreachable database (a restart, a failover)
# before giving up; the client's stream waits for it, then gets its terminal event.
TURN_SAVE_RETRY_SECONDS = 20.0

BUSY_MESSAGE = (
    "Another answer in this session is still streaming: wait for it, stop it, or use another session."
)


@dataclass(frozen=True, slots=True)
class TurnOpening:
    """What a new turn needs to know; ``user_content`` is stored as the user's message.

    ``provider`` and ``model`` answer the turn, unless ``session_model``: then they are only the
    server's default, and a session that has a stored provider keeps answering with its own.
    """

    owner_id: int | None
    session_key: str
    user_content: str
    client_message_id: str | None
    provider: str
    model: str
    system: str | None
    history_limit: int
    session_model: bool = False  # the caller named no provider or model: the session's, if it has one
    edit_of: str | None = None  # a user message: the new one replaces it, as a new branch
    regenerate_of: str | None = None  # an answer (or its user message): answer the same message again
    reply_to: str | None = None  # an answer, maybe not the newest: the new user message follows it
    metadata: dict = field(default_factory=dict)
    stale_after: timedelta = timedelta(minutes=15)
    api_key_id: int | None = None  # the API key the turn is made with (usage per key)
    claims: tuple[Claim, ...] = ()  # the budgets it is charged to (billing.budgets.claims_for)
    reserve_input_tokens: int = 0  # the new message and system prompt, estimated; the history is added
    reserve_output_tokens: int = 0  # its max_tokens, or the default reservation
    user_role: str = Message.Role.USER  # or tool: the results of the calls of the answer it follows
    user_parts: tuple[Part, ...] = ()  # the new message's parts (its tool results), stored as given
    answers_calls: bool = False  # a tool message that must answer the stored calls it follows


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    conversation_id: str
    session_key: str
    user_message_id: str
    assistant_message_id: str
    system: str
    history: tuple[ChatMessage, ...]  # earlier messages, oldest first, without the new one
    previous_response_id: str | None  # the session's chain id, when this turn may continue from it
    user_content: str
    provider: str  # who was chosen to answer (see :func:`turn_model`)
    model: str
    max_tokens: int | None = None  # a budget applies: the provider may not answer longer than reserved
    user_role: str = Message.Role.USER
    user_parts: tuple[Part, ...] = ()

    @property
    def new_message(self) -> ChatMessage:
        """The turn's new message as the model is sent it (a user message, or a round's results,
        named after the calls of the answer they follow)."""
        message = chat_message(self.user_role, self.user_content, self.user_parts)
        calls = self.history[-1].tool_calls if self.history else ()
        return named_results(message, calls)


@dataclass(frozen=True, slots=True)
class ExistingAnswer:
    """The stored answer to a repeated ``client_message_id`` (or its user message when unanswered)."""

    message_id: str
    status: str


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """An answer's terminal state: what the closing write stores (see :data:`CLOSING_FIELDS`)."""

    status: str
    content: str
    provider: str
    model: str
    finish_reason: str = ""
    response_id: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    error_code: str = ""
    error_message: str = ""
    artifacts: tuple[CodeBlock, ...] = ()
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: Decimal | None = None  # None: the model's price is unknown
    parts: tuple[Part, ...] = ()  # its tool calls and the text before them; () when only text


def session_title(content: str) -> str:
    """A new session's title: the first line of its first message."""
    lines = content.strip().splitlines()
    return lines[0][:TITLE_LENGTH] if lines else ""


# The columns of a session a turn creates, beside its owner and key; in this order.
NEW_SESSION_FIELDS = ("title", "provider", "model", "system_prompt", "metadata")


def new_session_values(opening: TurnOpening) -> dict[str, object]:
    """The :data:`NEW_SESSION_FIELDS` of the session a turn's first message creates."""
    return {
        "title": session_title(opening.user_content),
        "provider": opening.provider,
        "model": opening.model,
        "system_prompt": opening.system or "",
        "metadata": opening.metadata,
    }


def busy_cutoff(opening: TurnOpening, now: datetime) -> datetime:
    """An answer of the session streaming since this moment or later makes the session busy;
    an older one is stale (its process died unnoticed) and no longer blocks it."""
    return now - opening.stale_after


def turn_in_progress(streaming_message_id: str) -> TurnInProgress:
    """The rejection of a turn while another answer of its session is streaming."""
    return TurnInProgress(BUSY_MESSAGE, message_id=streaming_message_id)


def turn_model(opening: TurnOpening, stored_provider: str, stored_model: str) -> tuple[str, str]:
    """Who answers the turn: the session's stored provider and model when the caller named
    neither and the session has one, else the opening's. The opening stores it on the answer
    and the session; the native SQL's ``CASE`` (:mod:`conversations.turns.pg_writes`) says the same."""
    if opening.session_model and stored_provider:
        return stored_provider, stored_model
    return opening.provider, opening.model


def chain_from(
    opening: TurnOpening,
    stored: tuple[str, str],
    chosen: tuple[str, str],
    last_response_id: str,
    replied_response_id: str = "",
    skips_calls: bool = False,
) -> str | None:
    """The provider-side response id this turn may continue from: the session's, when the turn
    adds to the newest branch on the provider and model that gave it (a reply to an earlier
    answer only when that answer is the one the chain ends at: ``replied_response_id``, its
    provider-side id). Whether the provider chains at all is its capability, applied when it is
    called (:mod:`conversations.turns.retry`). ``skips_calls``: the turn leaves the calls of the
    answer it follows unanswered (:func:`skips_calls`); no provider chains past them (OpenAI: 400
    "No tool output found"), so the history is sent instead, without them."""
    if skips_calls:
        return None
    if opening.edit_of or opening.regenerate_of or not last_response_id or stored != chosen:
        return None
    if opening.reply_to and replied_response_id != last_response_id:
        return None
    return last_response_id


# The message columns a turn reads to build its history, in the order of the rows
# :func:`branch_history` takes; the newest :data:`TREE_WINDOW` messages, newest first.
RECENT_FIELDS = ("id", "parent_id", "role", "status", "content", "parts")  # parts: see stored_parts
HISTORY_ROLES = (Message.Role.USER, Message.Role.ASSISTANT, Message.Role.TOOL)


def branch_history(
    messages: dict[str, tuple], leaf_id: str | None, limit: int, next_role: str = Message.Role.USER
) -> tuple[ChatMessage, ...]:
    """The complete messages on the branch ending at ``leaf_id`` (itself included), oldest first, at most ``limit``.

    ``messages`` maps ids to rows of :data:`RECENT_FIELDS`; ``next_role`` is the role of the
    message that follows the leaf. An answer's tool calls are sent only when the message after it
    is their results (a user who wrote instead of answering them left them unanswered, which no
    provider takes).
    """
    chain: list[ChatMessage] = []
    seen: set[str] = set()
    current, after = leaf_id, next_role
    while current and current in messages and current not in seen and len(chain) < limit:
        seen.add(current)
        _, parent_id, role, status, content, parts = messages[current]
        if status == Message.Status.COMPLETE and role in HISTORY_ROLES:
            message = chat_message(role, content, stored_parts(parts))
            if message.tool_calls and after != Message.Role.TOOL:
                message = ChatMessage(role, content)
            if chain and chain[-1].tool_results:  # the results after it: name them after its calls
                chain[-1] = named_results(chain[-1], message.tool_calls)
            chain.append(message)
            after = role
        current = str(parent_id) if parent_id else None
    return tuple(reversed(chain))


def tool_results_refusal(
    messages: dict[str, tuple], parent_id: str | None, call_ids: list[str]
) -> TurnRejected | None:
    """Why a ``tool`` message with results for ``call_ids`` cannot follow the message ``parent_id``
    (rows of :data:`RECENT_FIELDS`), or None: it must answer every whole call of that answer, and
    only those. The native SQL's condition (:func:`answered_call_ids`) is the same rule."""
    parent = messages.get(parent_id) if parent_id else None
    expected = answered_call_ids(parent)
    if expected is not None and sorted(call_ids) == expected:
        return None
    if expected:
        unknown = sorted(set(call_ids) - set(expected))
        missing = sorted(set(expected) - set(call_ids))
        problem = (
            f"no call with id {', '.join(unknown)} was made by the answer it follows"
            if unknown
            else f"the calls {', '.join(missing)} have no result"
        )
        return InvalidToolResults(
            f"The tool results do not answer the answer's calls: {problem}. Send one result for each of "
            f"its calls ({', '.join(expected)}).",
            field="tool_results",
        )
    answered = {
        part.get("call_id")
        for _, _, role, _, _, parts in messages.values()
        if role == Message.Role.TOOL
        for part in stored_parts(parts)
    }
    if answered & set(call_ids):
        return ToolCallsAnswered(
            f"The calls {', '.join(sorted(answered & set(call_ids)))} were answered already: the "
            "conversation has moved on. Send a user message, or edit to branch.",
            field="tool_results",
        )
    return InvalidToolResults(
        "The session's last answer made no tool calls to answer: send tool results only after an "
        "answer that ended with finish_reason tool_calls.",
        field="tool_results",
    )


def skips_calls(messages: dict[str, tuple], parent_id: str | None, new_role: str) -> bool:
    """Whether a new message of ``new_role`` after ``parent_id`` leaves that answer's calls unanswered."""
    return new_role != Message.Role.TOOL and answered_call_ids(messages.get(parent_id or "")) is not None


def answered_call_ids(row: tuple | None) -> list[str] | None:
    """The sorted ids of the whole calls a complete answer (a row of :data:`RECENT_FIELDS`) made,
    which a tool message following it must answer; None when the row is no such answer."""
    if row is None:
        return None
    _, _, role, status, _, parts = row
    if role != Message.Role.ASSISTANT or status != Message.Status.COMPLETE:
        return None
    return sorted(call.id for call in tool_calls(stored_parts(parts))) or None


# The answer's columns the closing write sets: every field of TurnOutcome but its artifacts, then
# the completion time. The ORM updates them by name; the native SQL's SET list is made from them.
CLOSING_FIELDS = (
    "status",
    "content",
    "parts",
    "provider",
    "model",
    "finish_reason",
    "response_id",
    "input_tokens",
    "output_tokens",
    "usage_estimated",
    "cached_input_tokens",
    "reasoning_tokens",
    "cost",
    "error_code",
    "error_message",
    "completed_at",
)


def closing_values(outcome: TurnOutcome, completed_at: datetime) -> dict[str, object]:
    """The :data:`CLOSING_FIELDS` of an answer closed with ``outcome``."""
    values = {name: getattr(outcome, name) for name in CLOSING_FIELDS[:-1]}
    values["parts"] = list(outcome.parts)
    values["completed_at"] = completed_at
    return values


def chained(outcome: TurnOutcome) -> bool:
    """Whether the session continues from this answer next time (its ``last_response_id``)."""
    return outcome.status == Message.Status.COMPLETE and bool(outcome.response_id)


def session_closing_values(outcome: TurnOutcome, completed_at: datetime) -> dict[str, object]:
    """The session's columns the closing write sets: when it changed, and its chain id if :func:`chained`."""
    values: dict[str, object] = {"updated_at": completed_at}
    if chained(outcome):
        values["last_response_id"] = outcome.response_id
    return values


# An artifact's columns taken from its code block (beside its message, session and creation time).
ARTIFACT_FIELDS = ("language", "filename", "content", "position")


def artifact_values(block: CodeBlock) -> dict[str, object]:
    """The :data:`ARTIFACT_FIELDS` of a stored code block."""
    return {name: getattr(block, name) for name in ARTIFACT_FIELDS}


def budget_error(rows: list[tuple], now: datetime) -> BudgetExceeded:
    """The refusal of a turn a budget had no room for: which budget, when it resets.

    ``rows``: ``(scope, subject, amount, spent, reserved, period, period_start)`` of the budgets
    the turn is charged to, as read under their locks; the first without room
    (:data:`billing.budgets.HAS_ROOM`) is named.
    """
    starts = period_starts(now)
    for scope, subject, amount, spent, reserved, period, started in rows:
        row = {
            "amount": amount,
            "spent": spent,
            "reserved": reserved,
            "period": period,
            "period_start": started,
        }
        if HAS_ROOM.value(row, starts) is not True:
            resets_at = period_end(period, period_start(period, now))
            who = {"user": "your", "key": "this API key's", "mount": f"the {subject} mount's"}.get(
                scope, "anonymous callers'"
            )
            when = f"it resets at {resets_at.isoformat()}" if resets_at else "it does not reset: ask for more"
            return BudgetExceeded(
                f"Over budget: {who} budget of {amount.normalize()} per {period} is used up; {when}.",
                resets_at=resets_at.isoformat() if resets_at else None,
                retry_after=max(1.0, (resets_at - now).total_seconds()) if resets_at else None,
                budget=scope,
            )
    return BudgetExceeded("Over budget: a budget this turn is charged to is used up.", budget="unknown")


def price_unknown(provider: str, model: str) -> PriceUnknown:
    """The refusal of a turn a budget applies to whose model has no price (see :func:`opening_refusal`)."""
    return PriceUnknown(
        f"The model {provider}:{model} has no price, and a budget applies to this turn: name a priced "
        f'model, or ask the operator to declare its price (a "{provider}:{model}" entry in PRICES, '
        f'"{provider}:*" for all of its models, "*" as the fallback price, or a Model price in the admin).',
        provider=provider,
        model=model,
    )


def opening_refusal(
    rows: list[tuple], now: datetime, rate: tuple[Decimal, Decimal] | None, provider: str, model: str
) -> PriceUnknown | BudgetExceeded:
    """Why an opening write with budgets stores nothing, the rule a budget cannot be bypassed by:
    a turn a budget applies to is reserved and charged at its model's price, so a model without one
    (:meth:`billing.prices.PriceBook.rate` is None: no price of its own, no ``provider:*`` price,
    no fallback ``*``; an explicit 0 is a price) is refused (``price_unknown``), never served for
    free; else a budget without room refuses it (:func:`budget_error`). The ORM path calls it when
    ``rate`` is None or a budget is full; the native SQL reserves only at a known rate and calls
    it when nothing was reserved."""
    return price_unknown(provider, model) if rate is None else budget_error(rows, now)


# The session's counters an opening write sets (conversations/counters.py): its new messages and,
# the answer being the session's newest message, the last message's role, preview and time.
OPENING_COUNTERS = ("message_count", "last_message_role", "last_message_preview", "last_message_at")


def session_closing_counters(outcome: TurnOutcome, *, first_close: bool) -> dict[str, object]:
    """What a closing write adds to its session's counters (nothing when the answer was closed before)."""
    if not first_close:
        return {"input_tokens": 0, "output_tokens": 0, "cost": None, "cost_unknown_answers": 0}
    return {
        "input_tokens": outcome.input_tokens or 0,
        "output_tokens": outcome.output_tokens or 0,
        "cost": outcome.cost,
        "cost_unknown_answers": 1 if outcome.cost is None else 0,
    }
