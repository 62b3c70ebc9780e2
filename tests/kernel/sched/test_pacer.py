import pytest

from kernel.sched.pacer import Pacer

LIMIT = 6000   # per 60 s window: the bucket refills at 100 per second


def test_a_burst_goes_at_once_then_the_bucket_refills_at_the_limit_rate() -> None:
    p = Pacer(60.0, burst=0.25)
    assert p.ready_at("input_tokens", 0.0, LIMIT, 1500) == 0.0  # starts full: 1500
    p.debit("input_tokens", 0.0, LIMIT, 1500)
    assert p.ready_at("input_tokens", 0.0, LIMIT, 1000) == pytest.approx(10.0)
    assert p.level("input_tokens", 100.0, LIMIT) == 1500  # never above the burst


def test_a_call_larger_than_the_bucket_goes_when_full_and_leaves_debt() -> None:
    p = Pacer(60.0, burst=0.25)
    assert p.ready_at("input_tokens", 0.0, LIMIT, 5000) == 0.0
    p.debit("input_tokens", 0.0, LIMIT, 5000)
    assert p.level("input_tokens", 0.0, LIMIT) == -3500
    assert p.ready_at("input_tokens", 0.0, LIMIT, 100) == pytest.approx(36.0)


def test_sustained_demand_is_spread_evenly_at_the_rate_and_the_burst_never_rearms() -> None:
    p = Pacer(60.0, burst=0.25)
    t, stamps = 0.0, []
    while t < 200:
        t = p.ready_at("input_tokens", t, LIMIT, 500)
        p.debit("input_tokens", t, LIMIT, 500)
        stamps.append(t)
    gaps = [b - a for a, b in zip(stamps[3:], stamps[4:])]
    assert gaps == pytest.approx([5.0] * len(gaps))   # 500 at 100 per second, for ever


def test_credit_rate_limit_change_and_unlimited() -> None:
    p = Pacer(60.0, rate=1.5, burst=0.5)
    p.debit("requests", 0.0, 10, 5)
    assert p.level("requests", 0.0, 10) == 0
    p.credit("requests", 0.0, 10, 3)            # three calls never went out
    assert p.level("requests", 0.0, 10) == 3
    assert p.level("requests", 2.0, 10) == pytest.approx(3.5)   # 1.5 x 10 per 60 s
    p.debit("requests", 2.0, 20, 0)             # the limit doubled: the room grows at once
    assert p.level("requests", 2.0, 20) == pytest.approx(8.5)
    assert p.ready_at("requests", 2.0, None, 10**9) == 2.0     # no limit: no pacing
    with pytest.raises(ValueError):
        Pacer(60.0, burst=0)
    with pytest.raises(ValueError):
        Pacer(60.0, rate=0.5)
