"""What a ``provider:model`` costs, and what an answer cost.

Prices are per million tokens (input, cached input, output), in USD, as :class:`~decimal.Decimal`.
Where one comes from, first found: a :class:`~billing.models.ModelPrice` row in effect (edited in
the admin, no deploy), the ``PRICES`` setting (JSON), the defaults shipped here for each provider's
default and alias models (list prices when written; check your provider's page). Each source may
also price every model of a provider (``"provider:*"``, e.g. a self-hosted server at 0) and every
model without a price of its own (``"*"``, the fallback price); an exact ``provider:model`` wins
over its provider's ``*``, which wins over ``*``. A model with no price has an unknown cost: stored
as empty, never as zero, and while a budget applies to its caller it is not served at all
(:func:`conversations.turns.rules.reservation_rate`): an unknown price would reserve and spend
nothing.

The rows are read at most every :data:`REFRESH_SECONDS` per process, off the turn's path (a turn
never waits for a price read: its two round trips stay two).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Price:
    input: Decimal
    cached_input: Decimal
    output: Decimal

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
        """What the tokens cost; cached input tokens are part of ``input_tokens``."""
        cached = min(max(cached_input_tokens, 0), input_tokens)
        total = (
            (input_tokens - cached) * self.input + cached * self.cached_input + output_tokens * self.output
        )
        return (total / MILLION).quantize(Decimal("0.00000001"))


def _price(input: str, cached: str | None, output: str) -> Price:
    return Price(Decimal(input), Decimal(cached if cached is not None else input), Decimal(output))


# List prices (USD per million tokens) of the models each provider uses by default and for the
# aliases: input, cached input, output. The Responses provider shares OpenAI's models.
# The offline demo ships a declared price of 0 for any model name it answers.
DEFAULT_PRICES: Mapping[str, Price] = {
    "demo:*": _price("0", "0", "0"),
    "openai:gpt-4o-mini": _price("0.15", "0.075", "0.60"),
    "openai:gpt-4o": _price("2.50", "1.25", "10.00"),
    "openai:gpt-4.1": _price("2.00", "0.50", "8.00"),
    "openai:gpt-4.1-mini": _price("0.40", "0.10", "1.60"),
    "gemini:gemini-2.5-flash": _price("0.30", "0.03", "2.50"),
    "gemini:gemini-2.5-pro": _price("1.25", "0.125", "10.00"),
    "gemini:gemini-2.5-flash-lite": _price("0.10", "0.01", "0.40"),
    "zai:glm-4.5": _price("0.60", "0.11", "2.20"),
    "zai:glm-4.5-air": _price("0.20", "0.03", "1.10"),
    "zai:glm-4.6": _price("0.60", "0.11", "2.20"),
    "zai:glm-4.5-flash": _price("0", "0", "0"),  # Z.AI's free model (the ``fast`` alias)
}
#: The key of the price every model without a price of its own takes (none unless declared).
FALLBACK = "*"
SHARED_MODELS = {"openai-responses": "openai"}


def price_key(provider: str, model: str) -> str:
    return f"{SHARED_MODELS.get(provider, provider)}:{model}"


def price_keys(provider: str, model: str) -> tuple[str, str, str]:
    """The keys a model's price is looked up under, the first found wins: its own, its provider's
    ``*``, the fallback. The opening SQL's ``coalesce`` (:mod:`conversations.turns.pg_writes`) says the same."""
    return price_key(provider, model), price_key(provider, "*"), FALLBACK


def _setting_prices() -> dict[str, Price]:
    """``PRICES``: ``{"provider:model": {"input": 1.0, "cached_input": 0.5, "output": 2.0}}``."""
    prices = {}
    for key, value in (getattr(settings, "PRICES", None) or {}).items():
        prices[key] = _price(str(value["input"]), _opt(value.get("cached_input")), str(value["output"]))
    return prices


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


class PriceBook:
    """This process's prices: defaults, then the setting, then the rows in effect."""

    def __init__(self) -> None:
        self._rows: dict[str, Price] = {}
        self._loaded_at = float("-inf")
        self._refreshing: asyncio.Task | None = None
        self._rates: tuple[tuple, dict[str, list[str]]] | None = None

    def price(self, provider: str, model: str) -> Price | None:
        setting = _setting_prices()
        for key in price_keys(provider, model):
            price = self._rows.get(key) or setting.get(key) or DEFAULT_PRICES.get(key)
            if price is not None:
                return price
        return None

    def cost(
        self,
        provider: str,
        model: str,
        input_tokens: int | None,
        output_tokens: int | None,
        cached: int | None,
    ) -> Decimal | None:
        price = self.price(provider, model)
        if price is None:
            return None
        return price.cost(input_tokens or 0, output_tokens or 0, cached or 0)

    def rate(self, provider: str, model: str) -> tuple[Decimal, Decimal] | None:
        """The per-token ``(input, output)`` price a reservation uses (None: unknown)."""
        price = self.price(provider, model)
        return None if price is None else (price.input / MILLION, price.output / MILLION)

    def reservation_rates(self) -> dict[str, list[str]]:
        """Every known price as ``{"provider:model": [input, output]}`` per token (for the opening SQL);
        built once per price refresh (and per change of the ``PRICES`` setting), not per turn."""
        key = (self._loaded_at, id(getattr(settings, "PRICES", None)))
        if self._rates is None or self._rates[0] != key:
            self._rates = (key, self._build_rates())
        return self._rates[1]

    def _build_rates(self) -> dict[str, list[str]]:
        setting = _setting_prices()
        keys = {**DEFAULT_PRICES, **setting, **self._rows}
        rates = {}
        for key in keys:
            price = self._rows.get(key) or setting.get(key) or DEFAULT_PRICES.get(key)
            rates[key] = [str(price.input / MILLION), str(price.output / MILLION)]
        for alias, provider in SHARED_MODELS.items():
            rates.update(
                {
                    f"{alias}:{k.partition(':')[2]}": v
                    for k, v in list(rates.items())
                    if k.startswith(provider + ":")
                }
            )
        return rates

    # --- the rows -------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the rows in effect now (synchronous: from a thread, or at start-up)."""
        from billing.models import ModelPrice

        today = datetime.datetime.now(datetime.UTC).date()
        rows: dict[str, Price] = {}
        for row in ModelPrice.objects.filter(effective_from__lte=today).order_by("effective_from"):
            rows[price_key(row.provider, row.model)] = Price(
                row.input_per_mtok,
                row.cached_input_per_mtok if row.cached_input_per_mtok is not None else row.input_per_mtok,
                row.output_per_mtok,
            )
        self._rows, self._loaded_at = rows, time.monotonic()

    def refresh_soon(self) -> None:
        """Re-read the rows in the background when they are older than :data:`REFRESH_SECONDS`."""
        if time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return
        if self._refreshing is not None and not self._refreshing.done():
            return
        self._loaded_at = time.monotonic()  # one refresh at a time, even if it fails
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(self.load, thread_sensitive=False)()
        except Exception as exc:  # the database is down: the prices already known still apply
            logger.warning("prices not refreshed (%s): the ones already read still apply", type(exc).__name__)

    def invalidate(self) -> None:
        """Re-read on next use (a row was saved in this process)."""
        self._loaded_at = float("-inf")


price_book = PriceBook()
