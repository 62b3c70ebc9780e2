"""The user's budget and price table on disk: config/budget.toml.

`deskpilot budget set` rewrites the file atomically and hands the new budget to the
scheduler, which applies it at once. A person may also edit the file (prices especially);
it is read when the kernel starts.
"""
from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from kernel.sched import Budget, BudgetError, PriceTable

log = logging.getLogger(__name__)

HEADER = """\
# DeskPilot budget: limits on the model calls of all agents together.
# Rates are per rolling minute; money per calendar day / month. Remove a key for no limit.
# `deskpilot budget set KEY VALUE` edits this file and applies the change at once.
# [prices."MODEL"] sets US dollars per million tokens (input, output, cache_write, cache_read).
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


def save(path: Path, budget: Budget) -> None:
    data: dict[str, Any] = {"budget": budget.model_dump(exclude_none=True)}
    if path.exists():
        try:
            existing = tomllib.loads(path.read_text(encoding="utf-8"))
            if "prices" in existing:
                data["prices"] = existing["prices"]  # the person's own edits, kept as written
        except tomllib.TOMLDecodeError:
            log.warning("%s was not valid TOML; rewriting it", path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(HEADER + "\n" + tomli_w.dumps(data), encoding="utf-8")
    os.replace(tmp, path)
