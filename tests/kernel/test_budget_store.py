"""config/budget.toml: the budget and the person's price table, written atomically."""
from __future__ import annotations

from pathlib import Path

import pytest

from kernel import budget_store
from kernel.sched import Budget, BudgetError, ModelPrice


def test_budget_and_prices_round_trip_and_keep_each_other(tmp_path: Path) -> None:
    path = tmp_path / "budget.toml"
    budget_store.save(path, Budget(input_tokens_per_minute=40_000, usd_per_day=5.0))
    budget_store.save_price(path, "claude-test", ModelPrice(input=2.0, output=10.0))
    budget_store.save_price(path, "*", ModelPrice(input=1.0, output=1.0, cache_read=0.0))
    budget_store.save(path, Budget(input_tokens_per_minute=50_000))   # prices stay
    budget, prices = budget_store.load(path)
    assert budget.input_tokens_per_minute == 50_000 and budget.usd_per_day is None
    assert vars(prices.price("claude-test-2026")) == {"input": 2.0, "output": 10.0,
                                                       "cache_write": 2.5, "cache_read": 0.2}
    assert prices.fallback.cache_read == 0.0
    assert prices.price("claude-sonnet-4-5").input == 3.0   # the defaults are still there
    text = path.read_text()
    assert text.startswith("# DeskPilot budget") and "budget price" in text
    assert not list(tmp_path.glob("*.tmp"))


def test_a_broken_file_is_reported_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "budget.toml"
    path.write_text('[prices."m"]\ninput = -3\noutput = 1\n')
    with pytest.raises(BudgetError, match=r"\[prices\].*finite number >= 0"):
        budget_store.load(path)
    path.write_text("[budget\n")
    with pytest.raises(BudgetError, match="not valid TOML"):
        budget_store.load(path)
