"""Which budgets a turn is charged to, their periods, and the reservation rule both write paths apply.

A turn is charged to every budget that applies to its caller: the user's (owner), the API key's,
the seed mount's (a ``<mount>:`` session) or the anonymous callers' (no owner, no mount). A budget
with no row yet starts from its scope's default: a ``"*"`` row (set by staff), else the setting
(``BUDGET_DEFAULT_USER``, ``BUDGET_DEFAULT_KEY``, ``BUDGET_ANONYMOUS``, ``BUDGET_MOUNTS``); no
default, no budget.

The rule, in the opening write: when every budget that applies has room (its period's ``spent``
plus ``reserved`` below its ``amount``), each reserves the turn's reservation (its input estimate
and its ``max_tokens`` at the model's price) and the turn starts with ``max_tokens`` no larger than
what was reserved; else nothing is stored and the turn is refused (``budget_exceeded``). The
closing write moves the reservation to ``spent`` as the answer's actual cost (nothing when it
failed before any token). So N turns in parallel overshoot a budget by at most one reservation.

The period, "spent now", the room check, the reservation and the two writes' changes to a budget
are stated once below (:data:`SPENT_NOW`, :data:`HAS_ROOM`, :data:`RESERVATION`, :data:`RESERVE`,
:data:`SETTLE`) as expressions both write paths take: the ORM path applies them in Python and
as Django expressions (:mod:`billing.reservations`), the native SQL is rendered from them
(:mod:`conversations.turns.pg_writes`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from billing.expressions import (
    Add,
    And,
    Coalesce,
    Col,
    Const,
    Greatest,
    If,
    IsNull,
    Lt,
    Mul,
    NotNull,
    Or,
    Param,
    Pick,
    Round,
    Sub,
)

PERIODS = ("day", "week", "month", "none")
# Output tokens reserved for a turn that names no max_tokens (and the cap it then gets).
DEFAULT_RESERVE_OUTPUT_TOKENS = 4096
CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    amount: Decimal
    period: str


@dataclass(frozen=True, slots=True)
class Claim:
    """One budget a turn is charged to; ``default`` when its row does not exist yet."""

    scope: str
    subject: str
    default: BudgetSpec | None


def parse_budget(value: str, name: str = "budget") -> BudgetSpec | None:
    """``"5/day"``, ``"100.50/month"``, ``"20"`` (no period: never resets), ``""`` (none)."""
    value = (value or "").strip()
    if not value:
        return None
    amount, _, period = value.partition("/")
    period = (period or "none").strip().lower()
    try:
        parsed = Decimal(amount.strip())
    except InvalidOperation:
        parsed = Decimal(-1)
    if parsed < 0 or period not in PERIODS:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a budget: write AMOUNT/PERIOD, e.g. 5/day, with PERIOD one of "
            f"{', '.join(PERIODS)} (or AMOUNT alone: no reset)."
        )
    return BudgetSpec(parsed, period)


def claims_for(owner_id: int | None, api_key_id: int | None, mount: str | None) -> tuple[Claim, ...]:
    """The budgets a turn of this caller is charged to, in a fixed order (rows lock in id order)."""
    claims = []
    if owner_id is not None:
        claims.append(
            Claim("user", str(owner_id), parse_budget(settings.BUDGET_DEFAULT_USER, "BUDGET_DEFAULT_USER"))
        )
    if api_key_id is not None:
        claims.append(
            Claim("key", str(api_key_id), parse_budget(settings.BUDGET_DEFAULT_KEY, "BUDGET_DEFAULT_KEY"))
        )
    if mount is not None:
        spec = settings.BUDGET_MOUNTS.get(mount, settings.BUDGET_MOUNT_DEFAULT)
        claims.append(Claim("mount", mount, parse_budget(spec, f"BUDGET_MOUNTS[{mount}]")))
    elif owner_id is None:
        claims.append(Claim("anonymous", "", parse_budget(settings.BUDGET_ANONYMOUS, "BUDGET_ANONYMOUS")))
    return tuple(claims)


def period_start(period: str, now: datetime.datetime) -> datetime.datetime | None:
    """When the period holding ``now`` began (UTC); None for a budget that never resets."""
    now = now.astimezone(datetime.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return None


def period_end(period: str, start: datetime.datetime | None) -> datetime.datetime | None:
    """When a period that began at ``start`` resets."""
    if start is None:
        return None
    if period == "day":
        return start + datetime.timedelta(days=1)
    if period == "week":
        return start + datetime.timedelta(weeks=1)
    if period == "month":
        return (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return None


# The rule on a budget's row, stated once (billing.expressions): the ORM path applies it in Python
# and through Django expressions, the native path's SQL (conversations.turns.pg_writes) is
# rendered from it. ``start_<period>`` are :func:`period_starts`.
RESETTING = ("day", "week", "month")
CURRENT_START = Pick(Col("period"), tuple((p, Param(f"start_{p}")) for p in RESETTING), "timestamptz")
# "spent now": the row's spending, or zero once its period has rolled over
SPENT_NOW = If(
    And(NotNull(CURRENT_START), Or(IsNull(Col("period_start")), Lt(Col("period_start"), CURRENT_START))),
    Const(Decimal(0)),
    Col("spent"),
)
USED = Add(SPENT_NOW, Col("reserved"))
HAS_ROOM = Lt(USED, Col("amount"))
# The reservation of a turn: its estimated input and its output tokens at a per-token rate, rounded
# as PostgreSQL's numeric rounds.
RESERVATION = Round(
    Coalesce(
        Add(Mul(Param("rate_in"), Param("tokens_in")), Mul(Param("rate_out"), Param("tokens_out"))), Const(0)
    ),
    8,
)
# The opening write's change to each budget that had room: the period rolled over, the reservation held.
RESERVE = {
    "spent": SPENT_NOW,
    "period_start": Coalesce(CURRENT_START, Col("period_start")),
    "reserved": Add(Col("reserved"), Param("reservation")),
    "reserved_for": Param("answer_id"),
}
# The closing write's: the reservation released, the actual cost (unknown: nothing) spent.
SETTLE = {
    "reserved": Greatest(Sub(Col("reserved"), Param("reserved_cost")), Const(Decimal(0))),
    "spent": Add(Col("spent"), Coalesce(Param("cost"), Const(Decimal(0)))),
}


def period_starts(now: datetime.datetime) -> dict[str, datetime.datetime | None]:
    """The ``start_<period>`` parameters of :data:`CURRENT_START` at ``now``."""
    return {f"start_{period}": period_start(period, now) for period in RESETTING}


def spent_now(
    spent: Decimal, period: str, started: datetime.datetime | None, now: datetime.datetime
) -> Decimal:
    """A budget's spending in the current period (zero once its period has rolled over): :data:`SPENT_NOW`."""
    return SPENT_NOW.value({"spent": spent, "period": period, "period_start": started}, period_starts(now))


def reservation(rate: tuple[Decimal, Decimal], input_tokens: int, output_tokens: int) -> Decimal:
    """What a turn reserves at a per-token ``(input, output)`` rate: :data:`RESERVATION`."""
    params = {"rate_in": rate[0], "tokens_in": input_tokens, "rate_out": rate[1], "tokens_out": output_tokens}
    return RESERVATION.value(None, params)


def output_reservation(max_tokens: int | None) -> int:
    return max_tokens or settings.BUDGET_RESERVE_OUTPUT_TOKENS


def input_estimate(*texts: str) -> int:
    return -(-sum(len(t) for t in texts) // CHARS_PER_TOKEN)


def history_tokens(recent_contents: list[str], limit: int) -> int:
    """The reservation's estimate of the history: the session's newest ``limit`` messages (newest first)."""
    return input_estimate(*recent_contents[:limit])
