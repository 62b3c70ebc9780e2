"""The user's budget, the price table and token usage, with their validation.

``Budget`` is immutable: ``deskpilot budget set KEY VALUE`` builds a new one with
:func:`apply_setting` and hands it to ``Scheduler.update_budget``, which applies
it at once.  Every limit is optional; ``None`` means unlimited.

Money is counted the way Anthropic bills it: uncached input at the input
price, cache writes at 1.25x input, cache reads at 0.1x input, output at the
output price (per million tokens).  Input tokens are counted toward the
input-tokens-per-minute limit the way Anthropic counts them: uncached input
plus cache writes, cache reads not at all.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

Policy = Literal["fair", "deadline", "cheapest"]
POLICIES: tuple[str, ...] = ("fair", "deadline", "cheapest")


class BudgetError(ValueError):
    """A budget key or value the person gave is not valid; the message says why."""


class Budget(BaseModel):
    """Limits on the model calls of all agents together; ``None`` = unlimited.

    Rates are per rolling 60 s window; ``usd_per_day`` / ``usd_per_month`` are per
    calendar day / month of the wall clock.  A spend cap of 0 stops all spending.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens_per_minute: int | None = Field(default=None, ge=1)
    output_tokens_per_minute: int | None = Field(default=None, ge=1)
    requests_per_minute: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    usd_per_day: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    usd_per_month: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    policy: Policy = "fair"


INT_KEYS = ("input_tokens_per_minute", "output_tokens_per_minute", "requests_per_minute",
            "max_concurrent")
USD_KEYS = ("usd_per_day", "usd_per_month")
SETTING_KEYS: tuple[str, ...] = (*INT_KEYS, *USD_KEYS, "policy")
_UNLIMITED_WORDS = {"", "none", "null", "unlimited", "off", "no", "-"}
_SUFFIXES = {"k": 1_000, "m": 1_000_000}


def _parse_int(key: str, raw: str) -> int:
    text = raw.strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if text and text[-1] in _SUFFIXES:
        mult, text = _SUFFIXES[text[-1]], text[:-1]
    try:
        value = float(text) * mult
    except ValueError:
        raise BudgetError(f"{key} must be a whole number (e.g. 40000 or 40k) or 'none' "
                          f"for unlimited, not {raw!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise BudgetError(f"{key} must be a whole number, not {raw!r}")
    if value < 1:
        raise BudgetError(f"{key} must be at least 1 (or 'none' for unlimited), not {raw!r}")
    return int(value)


def _parse_usd(key: str, raw: str) -> float:
    text = raw.strip().lower().lstrip("$").replace("_", "").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        raise BudgetError(f"{key} must be an amount in US dollars (e.g. 5 or 2.50) or 'none' "
                          f"for no cap, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise BudgetError(f"{key} must be a finite amount >= 0, not {raw!r}")
    return value


def apply_setting(budget: Budget, key: str, raw_value: str) -> Budget:
    """``budget set KEY VALUE``: a new Budget with one setting changed.

    Raises :class:`BudgetError` with a message for the person on an unknown
    key or a bad value.  ``none`` / ``unlimited`` / ``off`` clear a limit.
    """
    key = key.strip().lower().replace("-", "_")
    raw = str(raw_value)
    if key not in SETTING_KEYS:
        raise BudgetError(f"unknown budget key {key!r}; valid keys: {', '.join(SETTING_KEYS)}")
    value: Any
    if key == "policy":
        value = raw.strip().lower()
        if value not in POLICIES:
            raise BudgetError(f"policy must be one of {', '.join(POLICIES)}, not {raw!r}")
    elif raw.strip().lower() in _UNLIMITED_WORDS:
        value = None
    elif key in INT_KEYS:
        value = _parse_int(key, raw)
    else:
        value = _parse_usd(key, raw)
    try:
        return Budget.model_validate({**budget.model_dump(), key: value})
    except ValidationError as exc:  # pragma: no cover - parsers above already check
        raise BudgetError(f"{key}: {exc.errors()[0]['msg']}") from None


# --------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class Usage:
    """Token usage of one call, as the Messages API reports it.

    ``input_tokens`` is the *uncached* input; cache writes and reads are separate.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                     "cache_read_input_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"Usage.{name} must be >= 0")

    @property
    def counted_input_tokens(self) -> int:
        """Input tokens as counted toward input-tokens-per-minute: uncached + cache writes."""
        return self.input_tokens + self.cache_creation_input_tokens

    @classmethod
    def from_api(cls, usage: Mapping[str, Any]) -> "Usage":
        """From the ``usage`` object of a Messages API response (missing/None fields = 0)."""
        def get(name: str) -> int:
            return int(usage.get(name) or 0)
        return cls(get("input_tokens"), get("output_tokens"),
                   get("cache_creation_input_tokens"), get("cache_read_input_tokens"))

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.cache_creation_input_tokens + other.cache_creation_input_tokens,
                     self.cache_read_input_tokens + other.cache_read_input_tokens)


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per million tokens.  Cache prices default to Anthropic's ratios."""

    input: float
    output: float
    cache_write: float = -1.0  # -1: 1.25 x input
    cache_read: float = -1.0   # -1: 0.1 x input

    @classmethod
    def of(cls, input: float, output: float, cache_write: float | None = None,
           cache_read: float | None = None) -> "ModelPrice":
        """From what a person gives; cache prices left out follow the input price.
        Raises :class:`ValueError` on a negative or non-finite price."""
        return cls(float(input), float(output),
                   -1.0 if cache_write is None else float(cache_write),
                   -1.0 if cache_read is None else float(cache_read))

    def __post_init__(self) -> None:
        if self.cache_write < 0:
            object.__setattr__(self, "cache_write", round(self.input * 1.25, 6))
        if self.cache_read < 0:
            object.__setattr__(self, "cache_read", round(self.input * 0.1, 6))
        for name in ("input", "output", "cache_write", "cache_read"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"price {name} must be a finite number >= 0, not {value!r}")


#: $/MTok for current Claude models (list prices).  Keys match by longest prefix,
#: so dated ids ("claude-sonnet-4-5-20250929") find their family.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-opus-4-1": ModelPrice(15.0, 75.0),
    "claude-opus-4": ModelPrice(15.0, 75.0),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0),
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-3-7-sonnet": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    "claude-3-5-haiku": ModelPrice(0.8, 4.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
    "claude-3-opus": ModelPrice(15.0, 75.0),
}
#: Unknown models are priced like the most expensive one, so that a spend cap
#: is never exceeded because a model was missing from the table.
DEFAULT_FALLBACK = ModelPrice(15.0, 75.0)


@dataclass
class PriceTable:
    """Per-model prices the person can edit (config ``[prices."MODEL"]``)."""

    prices: dict[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    fallback: ModelPrice = DEFAULT_FALLBACK

    def price(self, model: str) -> ModelPrice:
        """Exact match, else the longest key that ``model`` starts with, else the fallback."""
        if model in self.prices:
            return self.prices[model]
        best = max((k for k in self.prices if model.startswith(k)), key=len, default=None)
        return self.prices[best] if best is not None else self.fallback

    def put(self, model: str, price: ModelPrice) -> None:
        """Set one model's prices whole; ``"*"`` sets the fallback for every other model."""
        if model == "*":
            self.fallback = price
        else:
            self.prices[model] = price

    def set(self, model: str, **prices: float) -> None:
        """Edit one model's prices (``input=``, ``output=``, ``cache_write=``, ``cache_read=``)."""
        current = self.prices.get(model)
        if current is None:
            self.prices[model] = ModelPrice(**prices)
        else:
            self.prices[model] = replace(current, **prices)

    def cost(self, model: str, usage: Usage) -> float:
        p = self.price(model)
        return (usage.input_tokens * p.input + usage.output_tokens * p.output
                + usage.cache_creation_input_tokens * p.cache_write
                + usage.cache_read_input_tokens * p.cache_read) / 1e6

    def worst_case_cost(self, model: str, input_tokens: int, max_tokens: int) -> float:
        """Upper bound of a call's cost: every input token a cache write, ``max_tokens`` out."""
        p = self.price(model)
        return (input_tokens * max(p.input, p.cache_write) + max_tokens * p.output) / 1e6

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: vars(p).copy() for m, p in self.prices.items()}
        out["*"] = vars(self.fallback).copy()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, float]], *,
                  defaults: bool = True) -> "PriceTable":
        """Build from ``{model: {"input": .., "output": .., [cache_write, cache_read]}}``.

        The key ``"*"`` sets the fallback.  With ``defaults`` the entries are laid
        over :data:`DEFAULT_PRICES`.  Raises :class:`ValueError` on a bad entry.
        """
        table = cls() if defaults else cls(prices={})
        for model, entry in data.items():
            try:
                price = ModelPrice(**{k: float(v) for k, v in entry.items()})
            except TypeError as exc:
                raise ValueError(f"price for {model!r}: {exc}") from None
            table.put(model, price)
        return table
