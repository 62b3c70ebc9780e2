"""The user's budget and price table on disk: config/budget.toml.

`deskpilot budget set` and `deskpilot budget price` rewrite the file atomically and hand
the change to the scheduler, which applies it at once. A person may also edit the file;
it is read when the kernel starts.
"""
from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from kernel.sched import Budget, BudgetError, ModelPrice, PriceTable

log = logging.getLogger(__name__)

HEADER = """\
# DeskPilot budget: limits on the model calls of all agents together.
# Rates are per rolling minute; money per calendar day / month. Remove a key for no limit.
# `deskpilot budget set KEY VALUE` edits this file and applies the change at once.
# [prices."MODEL"] sets US dollars per million tokens (input, output, cache_write, cache_read);
# `deskpilot budget price MODEL INPUT OUTPUT` edits one and applies it at once.
"""


def load(path: Path) -> tuple[Budget, PriceTable]:
    if not path.exists():
        return Budget(), PriceTable()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML: {exc}") from None
    try:
        budget = Budget.model_validate(data.get("budget", {}))
    except ValueError as exc:
        raise BudgetError(f"{path}: [budget]: {exc}") from None
    try:
        prices = PriceTable.from_dict(data.get("prices", {}))
    except ValueError as exc:
        raise BudgetError(f"{path}: [prices]: {exc}") from None
    return budget, prices


def _existing(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        log.warning("%s was not valid TOML; rewriting it", path)
        return {}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(HEADER + "\n" + tomli_w.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def save(path: Path, budget: Budget) -> None:
    """Write the budget; the person's own [prices] are kept as written."""
    data: dict[str, Any] = {"budget": budget.model_dump(exclude_none=True)}
    existing = _existing(path)
    if "prices" in existing:
        data["prices"] = existing["prices"]
    _write(path, data)


def save_price(path: Path, model: str, price: ModelPrice) -> None:
    """Write one model's prices, keeping everything else in the file as it was."""
    data = _existing(path)
    data.setdefault("prices", {})[model] = vars(price).copy()
    _write(path, data)
