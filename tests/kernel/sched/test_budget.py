import pytest

from kernel.sched import Budget, BudgetError, ModelPrice, PriceTable, Usage, apply_setting


def test_apply_setting_parses_every_key():
    b = Budget()
    b = apply_setting(b, "input_tokens_per_minute", "40k")
    b = apply_setting(b, "output-tokens-per-minute", "8_000")
    b = apply_setting(b, "requests_per_minute", "50")
    b = apply_setting(b, "max_concurrent", "4")
    b = apply_setting(b, "usd_per_day", "$2.50")
    b = apply_setting(b, "usd_per_month", "40")
    b = apply_setting(b, "policy", "Deadline")
    assert b == Budget(input_tokens_per_minute=40000, output_tokens_per_minute=8000,
                       requests_per_minute=50, max_concurrent=4, usd_per_day=2.5,
                       usd_per_month=40.0, policy="deadline")
    assert apply_setting(b, "usd_per_day", "none").usd_per_day is None
    assert apply_setting(b, "max_concurrent", "unlimited").max_concurrent is None
    assert apply_setting(b, "usd_per_day", "0").usd_per_day == 0.0  # stop all spending
    assert b.policy == "deadline"  # the original is immutable


@pytest.mark.parametrize("key, value, message", [
    ("tokens", "5", "unknown budget key 'tokens'; valid keys: input_tokens_per_minute"),
    ("input_tokens_per_minute", "lots", "must be a whole number"),
    ("input_tokens_per_minute", "1.5", "must be a whole number"),
    ("requests_per_minute", "0", "at least 1"),
    ("max_concurrent", "-2", "at least 1"),
    ("usd_per_day", "-1", ">= 0"),
    ("usd_per_month", "nan", "finite"),
    ("usd_per_month", "five", "US dollars"),
    ("policy", "random", "policy must be one of fair, deadline, cheapest"),
])
def test_apply_setting_rejects_with_clear_errors(key, value, message):
    with pytest.raises(BudgetError, match=message.replace("(", r"\(")):
        apply_setting(Budget(), key, value)


def test_budget_model_validates_and_is_frozen():
    with pytest.raises(ValueError):
        Budget(max_concurrent=0)
    with pytest.raises(ValueError):
        Budget(policy="lifo")
    with pytest.raises(ValueError):
        Budget(bogus=1)
    with pytest.raises(ValueError):
        Budget().max_concurrent = 3  # type: ignore[misc]


def test_price_table_matches_longest_prefix_and_falls_back():
    table = PriceTable()
    assert table.price("claude-sonnet-4-5-20250929") == ModelPrice(3.0, 15.0)
    assert table.price("claude-opus-4-5-20251101").input == 5.0
    assert table.price("claude-opus-4-20250514").input == 15.0
    assert table.price("claude-haiku-4-5").output == 5.0
    assert table.price("some-new-model") is table.fallback
    p = table.price("claude-sonnet-4-5")
    assert p.cache_write == pytest.approx(3.75) and p.cache_read == pytest.approx(0.3)


def test_cost_counts_cache_writes_and_reads_like_anthropic():
    table = PriceTable()
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000,
              cache_creation_input_tokens=1_000_000, cache_read_input_tokens=1_000_000)
    assert table.cost("claude-sonnet-4-5", u) == pytest.approx(3 + 15 + 3.75 + 0.3)
    assert u.counted_input_tokens == 2_000_000  # cache reads do not count
    worst = table.worst_case_cost("claude-sonnet-4-5", 1_000_000, 1_000_000)
    assert worst == pytest.approx(3.75 + 15)


def test_price_table_is_editable():
    table = PriceTable.from_dict({"my-model": {"input": 2, "output": 8},
                                  "*": {"input": 1, "output": 1}})
    assert table.price("my-model-v2").cache_read == pytest.approx(0.2)
    assert table.price("unknown").input == 1
    table.set("my-model", output=10)
    assert table.price("my-model").output == 10 and table.price("my-model").input == 2
    assert "claude-sonnet-4-5" in table.to_dict() and table.to_dict()["*"]["input"] == 1
    with pytest.raises(ValueError):
        PriceTable.from_dict({"x": {"input": 1}})
    with pytest.raises(ValueError):
        ModelPrice(-1, 1)


def test_usage_from_api():
    u = Usage.from_api({"input_tokens": 10, "output_tokens": 5,
                        "cache_creation_input_tokens": None, "cache_read_input_tokens": 7})
    assert u == Usage(10, 5, 0, 7)
    assert u + u == Usage(20, 10, 0, 14)
    with pytest.raises(ValueError):
        Usage(input_tokens=-1)


def test_a_price_given_by_a_person_fills_in_cache_prices_and_star_is_the_fallback() -> None:
    from kernel.sched import ModelPrice, PriceTable
    table = PriceTable()
    table.put("my-model", ModelPrice.of(2, 10))
    table.put("*", ModelPrice.of(1, 4, cache_read=0))
    assert vars(table.price("my-model-2026")) == {"input": 2.0, "output": 10.0,
                                                   "cache_write": 2.5, "cache_read": 0.2}
    assert table.price("unknown").output == 4.0 and table.price("unknown").cache_read == 0.0
    with pytest.raises(ValueError, match="finite number >= 0"):
        ModelPrice.of(-1, 10)
