from datetime import timezone

from kernel.sched.budget import Usage
from kernel.sched.ledger import Entry, Ledger, next_period_start, period_keys

from ._sim import utc

UTC = timezone.utc


def entry(i: int, stamp: float, agent: str = "a", inp: int = 100, out: int = 50,
          cost: float = 0.01) -> Entry:
    return Entry(i, i, agent, "m", stamp, "2026-01-15", "2026-01", inp, out, cost)


def test_periods_turn_at_midnight_and_month_start():
    wall = utc(2026, 12, 31, 23, 59, 59)
    assert period_keys(wall, UTC) == ("2026-12-31", "2026-12")
    assert next_period_start(wall, "day", UTC) == utc(2027, 1, 1)
    assert next_period_start(wall, "month", UTC) == utc(2027, 1, 1)
    assert next_period_start(utc(2026, 2, 10, 5), "month", UTC) == utc(2026, 3, 1)
    assert next_period_start(utc(2026, 2, 10, 5), "day", UTC) == utc(2026, 2, 11)
    # local time (tz=None) works too
    assert next_period_start(wall, "day") > wall


def test_window_sums_expiry_and_fit_time():
    led = Ledger(window=60.0)
    led.add(entry(1, 0.0, inp=100))
    led.add(entry(2, 10.0, inp=200))
    led.add(entry(3, 20.0, agent="b", inp=300))
    assert led.used("input_tokens") == 600 and led.used("input_tokens", "a") == 300
    assert led.used("tokens", "b") == 350 and led.used("requests") == 3
    # need 500 under 1000: fits now; need 600: after entry 1 leaves at t=60
    assert led.fit_time(30.0, "input_tokens", 400, 1000) == 30.0
    assert led.fit_time(30.0, "input_tokens", 500, 1000) == 60.0
    assert led.fit_time(30.0, "input_tokens", 700, 1000) == 70.0
    assert led.fit_time(30.0, "input_tokens", 800, 1000) == 80.0
    assert led.fit_time(30.0, "input_tokens", 1001, 1000) is None
    assert led.fit_time(30.0, "input_tokens", 900, 1000, extra=100, extra_until=75.0) == 80.0
    led.expire(60.0)  # stamp + window <= now: entry 1 leaves exactly at 60
    assert led.used("input_tokens") == 500


def test_settlement_replaces_in_place_and_counts_money():
    led = Ledger()
    e = entry(1, 0.0, inp=1000, out=500, cost=0.5)
    led.add(e)
    assert led.spent("day", "2026-01-15") == 0.5  # worst case while open
    led.close(e, requests=1, usage=Usage(input_tokens=100, output_tokens=20,
                                         cache_creation_input_tokens=50,
                                         cache_read_input_tokens=900), usd=0.1)
    assert led.used("input_tokens") == 150 and led.used("output_tokens") == 20
    assert led.spent("day", "2026-01-15") == 0.1 and led.spent("month", "2026-01") == 0.1
    assert led.spent("day", "2026-01-16") == 0.0
    rep = led.report("2026-01-15", "2026-01")
    a = rep["agents"]["a"]
    assert a["today"]["cached_tokens"] == 900 and a["month"]["usd"] == 0.1
    assert a["minute"]["input_tokens"] == 100 and rep["totals"]["today"]["requests"] == 1
    led.expire(120.0)  # money stays; the window empties
    assert led.used("input_tokens") == 0 and led.spent("month", "2026-01") == 0.1
    led.forget_periods_before("2026-02-01", "2026-02")
    assert led.spent("month", "2026-01") == 0.0
