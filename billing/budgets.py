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
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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


def spent_now(
    spent: Decimal, period: str, started: datetime.datetime | None, now: datetime.datetime
) -> Decimal:
    """A budget's spending in the current period (zero once its period has rolled over)."""
    current = period_start(period, now)
    return Decimal(0) if current is not None and (started is None or started < current) else spent


def output_reservation(max_tokens: int | None) -> int:
    return max_tokens or settings.BUDGET_RESERVE_OUTPUT_TOKENS


def input_estimate(*texts: str) -> int:
    return -(-sum(len(t) for t in texts) // CHARS_PER_TOKEN)
